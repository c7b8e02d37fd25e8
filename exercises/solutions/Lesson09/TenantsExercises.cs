namespace PgVectorModule.Exercises.Lesson09;

/// <summary>Spoiler: reference solutions to lesson 09's exercises.</summary>
public static class TenantsExercises
{
    public const string TenantPolicySql = """
        ALTER TABLE tenant_docs ENABLE ROW LEVEL SECURITY;
        ALTER TABLE tenant_docs FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON tenant_docs
            USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::int)
            WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::int);
        """;

    public static async Task<List<long>> TenantNearestAsync(NpgsqlDataSource dataSource, int tenantId, Vector query, int k)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var set = new NpgsqlCommand("SELECT set_config('app.tenant_id', $1, true)", connection, transaction))
        {
            set.Parameters.Add(new NpgsqlParameter { Value = tenantId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            await set.ExecuteNonQueryAsync();
        }

        var ids = new List<long>();
        await using (var search = new NpgsqlCommand("SELECT id FROM tenant_docs ORDER BY embedding <=> $1 LIMIT $2", connection, transaction))
        {
            search.Parameters.Add(new NpgsqlParameter { Value = query });
            search.Parameters.Add(new NpgsqlParameter { Value = k });
            await using var reader = await search.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetInt64(0));
            }
        }

        await transaction.CommitAsync();
        return ids;
    }
}
