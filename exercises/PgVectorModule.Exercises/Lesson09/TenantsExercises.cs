namespace PgVectorModule.Exercises.Lesson09;

/// <summary>
/// Lesson 09's exercises: row-level security that holds for the table's owner too, and a search under it.
/// Over <c>tenant_docs(id bigint, tenant_id int, body text, embedding vector(8))</c>. Check: <c>scripts/check.sh 09</c>.
/// </summary>
public static class TenantsExercises
{
    /// <summary>
    /// 09.1: run by the application role, which owns <c>tenant_docs</c>: makes every query on it see, and every write
    /// to it touch, only the rows of the tenant in the setting <c>app.tenant_id</c> (set with
    /// <c>set_config('app.tenant_id', '3', true)</c>); with no tenant set, no rows and no error. The owner included.
    /// </summary>
    public const string TenantPolicySql = """
        -- TODO: ALTER TABLE tenant_docs ...; CREATE POLICY ...
        """;

    /// <summary>
    /// 09.2: the ids of tenant <paramref name="tenantId"/>'s <paramref name="k"/> docs nearest to <paramref name="query"/>
    /// (cosine distance), nearest first, as the application role under 09.1's policy. The tenant is set for this
    /// search alone: the pooled connection goes back with no tenant on it.
    /// </summary>
    public static Task<List<long>> TenantNearestAsync(NpgsqlDataSource dataSource, int tenantId, Vector query, int k)
    {
        // TODO: a transaction, set_config('app.tenant_id', ..., true), the search, commit.
        throw new NotImplementedException("TODO: write TenantNearestAsync");
    }
}
