using System.Globalization;
using System.Security.Cryptography;
using PgVectorModule.Data;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson09;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Lesson09Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // The class runs the lesson twice on one database: in-process here, as a process below.
    [Fact]
    public async Task Runs_end_to_end_and_a_tenant_never_reads_another_tenants_rows_even_with_hostile_text()
    {
        var result = await LessonRunner.RunAsync<TenantsLesson>(database.Settings);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        var run = result.Transcript;
        Assert.True(run.Completed);
        Assert.Equal(5, run.Steps.Count);
        var current = TenantsLesson.CurrentTenant.ToString(CultureInfo.InvariantCulture);

        // Row-level security: nothing without a tenant, the tenant's rows within its transaction, nothing after; writes checked.
        var rls = run.Step("row-level-security");
        Assert.Equal("0", rls.Table.Row("tenant", "no tenant set")["rows it sees"]);
        Assert.Equal(TenantsLesson.SmallTenantRows.ToString(CultureInfo.InvariantCulture), rls.Table.Row("tenant", $"BEGIN; set_config('app.tenant_id', '{current}', true)")["rows it sees"]);
        Assert.Equal("0", rls.Table.Row("tenant", "the next transaction (the setting ended with COMMIT)")["rows it sees"]);
        Assert.Equal("Refused: 42501 new row violates row-level security policy for table \"tenant_documents\"", rls.Note("Refused"));
        // The role's password is set, but never recorded.
        Assert.DoesNotContain(run.SqlSent, s => s.Text.Contains("PASSWORD '", StringComparison.Ordinal) && !s.Text.Contains("'****'", StringComparison.Ordinal));

        // Hostile text: as a parameter it matches nothing; pasted in, it matches only the current tenant's rows.
        var searchStep = run.Step("tenant-search");
        Assert.All(searchStep.Tables[0].Column("tenant_id"), t => Assert.Equal(current, t));
        Assert.Equal("none", searchStep.Tables[1].Row("the hostile filter", "as a parameter (@filter)")["tenants among them"]);
        Assert.Equal(current, searchStep.Tables[1].Row("the hostile filter", "pasted into the SQL")["tenants among them"]);
        Assert.Contains($"those were tenant {current}'s only: the policy held", searchStep.Note("As a parameter"), StringComparison.Ordinal);

        // The measurement: the shared index filtered after the scan comes back short for a small tenant; iterative scan does not.
        // The full table (a row per way and tenant); the one shown by default puts both tenants on a way's row.
        var measured = run.Step("four-designs").Tables.Single(t => t.Columns.Contains("index in the plan"));
        string Cell(string wayPrefix, string column) =>
            measured.Rows.Single(r => r["way"].StartsWith(wayPrefix, StringComparison.Ordinal) && r["tenant (rows)"].StartsWith(current + " ", StringComparison.Ordinal))[column];
        Assert.True(double.Parse(Cell("one HNSW index, filtered", "rows returned (of 10)"), CultureInfo.InvariantCulture) < 10, Cell("one HNSW index, filtered", "rows returned (of 10)"));
        Assert.Equal("10.0", Cell("one HNSW index, iterative", "rows returned (of 10)"));
        // Each way used the index it is about.
        Assert.Equal(["tenant_documents_tenant_id", "tenant_documents_hnsw", "tenant_documents_hnsw", $"tenant_documents_tenant_{current}_hnsw", $"tenant_documents_tenant_{current}_embedding_idx"],
            measured.Rows.Where(r => r["tenant (rows)"].StartsWith(current + " ", StringComparison.Ordinal)).Select(r => r["index in the plan"]));

        Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname = '{TenantsLesson.AppRole("lesson09", database.Name)}'"));

        Assert.Equal(2L, await database.ScalarAsync<long>("SELECT count(*) FROM pg_policies WHERE schemaname = 'lesson09' AND policyname = 'tenant_isolation'"));
        Assert.True(await database.ScalarAsync<bool>("SELECT relforcerowsecurity FROM pg_class WHERE oid = 'lesson09.tenant_documents'::regclass"));

        // Isolation, outside the lesson's narration: a login role of the test's own, the lesson's search and policy.
        var role = "lesson09_test_" + Guid.NewGuid().ToString("N")[..12];
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        await ExecuteAsync($"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{ScramVerifier.Create(password)}'; GRANT USAGE ON SCHEMA lesson09 TO {role}; GRANT SELECT, INSERT ON lesson09.tenant_documents TO {role}");
        try
        {
            var cs = database.ConnectionString;
            cs.Username = role;
            cs.Password = password;
            await using var app = ModuleDataSource.Create(cs, "lesson09");
            var question = await VectorAsync();
            string?[] hostile =
            [
                null, TenantsLesson.HostileText, "'; SELECT set_config('app.tenant_id', '2', false); --", "%", "_", "\\", "') OR tenant_id IN (1,2,4,5) --",
                "tenant 2", "(tenant 1)", "' UNION SELECT id, 2, title, 0 FROM tenant_documents --",
            ];
            for (var tenant = 1; tenant <= TenantsLesson.TenantCount; tenant++)
            {
                foreach (var text in hostile)
                {
                    var hits = await TenantsLesson.SearchAsTenantAsync(app, tenant, question, text, Ct);
                    Assert.All(hits, h => Assert.Equal(tenant, h.TenantId));
                    Assert.All(hits, h => Assert.EndsWith($"(tenant {tenant})", h.Title, StringComparison.Ordinal));
                    if (text is null)
                    {
                        Assert.Equal(10, hits.Count);
                    }
                }

                // Asking for another tenant's rows outright, within this tenant's transaction, finds none.
                await using var connection = await app.OpenConnectionAsync(Ct);
                await using var transaction = await connection.BeginTransactionAsync(Ct);
                await TenantsLesson.SetTenantAsync(connection, tenant, Ct);
                await using var other = new NpgsqlCommand("SELECT count(*) FROM tenant_documents WHERE tenant_id <> @tenant", connection, transaction);
                other.Parameters.AddWithValue("tenant", tenant);
                Assert.Equal(0L, await other.ExecuteScalarAsync(Ct));
            }

            // And the setting does not outlive its transaction on a pooled connection.
            await using var after = await app.OpenConnectionAsync(Ct);
            await using var count = new NpgsqlCommand("SELECT count(*) FROM tenant_documents", after);
            Assert.Equal(0L, await count.ExecuteScalarAsync(Ct));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync($"DROP OWNED BY {role}; DROP ROLE {role}");
        }
    }

    [Fact]
    public async Task Runs_as_a_process_again_on_the_same_database()
    {
        var result = await LessonProcess.RunAsync(TenantsLesson.Info, database.ConnectionString.ConnectionString, []);

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        var run = Assert.IsType<LessonTranscript>(result.Transcript);
        Assert.True(run.Completed);
        Assert.Equal(5, run.Steps.Count);
        Assert.Contains($"those were tenant {TenantsLesson.CurrentTenant}'s only: the policy held",
            run.Step("tenant-search").Note("As a parameter"), StringComparison.Ordinal);
        Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname = '{TenantsLesson.AppRole("lesson09", database.Name)}'"));
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    /// <summary>A corpus document's embedding, as the lesson stored it: a question the search can answer.</summary>
    private async Task<Vector> VectorAsync()
    {
        var builder = new NpgsqlDataSourceBuilder(database.ConnectionString.ConnectionString);
        builder.UseVector();
        await using var source = builder.Build();
        await using var command = source.CreateCommand("SELECT embedding FROM lesson09.vector_documents ORDER BY id LIMIT 1");
        return (Vector)(await command.ExecuteScalarAsync(Ct))!;
    }
}
