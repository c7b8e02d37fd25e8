using PgVectorModule.Configuration;
using Spectre.Console;

namespace PgVectorModule.Lessons.Lesson09;

public sealed partial class TenantsLesson
{
    /// <summary>The Citus statements of the sharding step, run on CITUS_URL's coordinator or shown on paper.</summary>
    public static IReadOnlyList<string> CitusStatements(int dims) =>
    [
        "CREATE EXTENSION IF NOT EXISTS vector",
        "DROP TABLE IF EXISTS sharded_documents",
        $"CREATE TABLE sharded_documents (tenant_id int NOT NULL, id bigint NOT NULL, title text NOT NULL, embedding vector({dims}) NOT NULL, PRIMARY KEY (tenant_id, id))",
        // Rows are placed by a hash of tenant_id: one tenant's rows live together on one worker.
        "SELECT create_distributed_table('sharded_documents', 'tenant_id')",
        // Run on the coordinator, it is created on every shard: each worker holds HNSW graphs of its own shards.
        "CREATE INDEX sharded_documents_hnsw ON sharded_documents USING hnsw (embedding vector_cosine_ops)",
    ];

    /// <summary>Before any work: CITUS_URL, when set, must parse, answer and have the citus extension.</summary>
    private static async Task<NpgsqlConnectionStringBuilder?> CitusCoordinatorAsync(string? url, CancellationToken cancellationToken)
    {
        if (url is null)
        {
            return null;
        }

        NpgsqlConnectionStringBuilder citus;
        try
        {
            citus = DatabaseUrl.Parse(url);
        }
        catch (SetupException e)
        {
            throw new SetupException(e.Message.Replace("DATABASE_URL", "CITUS_URL", StringComparison.Ordinal), ExitCodes.InvalidInput);
        }

        var quick = new NpgsqlConnectionStringBuilder(citus.ConnectionString) { Timeout = Math.Min(citus.Timeout, 5), Pooling = false };
        long extensions;
        try
        {
            await using var connection = new NpgsqlConnection(quick.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var check = new NpgsqlCommand("SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'", connection);
            extensions = (long)(await check.ExecuteScalarAsync(cancellationToken))!;
        }
        catch (NpgsqlException e) when (e is not PostgresException)
        {
            throw new SetupException($"CITUS_URL ({citus.Host}:{citus.Port}) does not answer ({e.Message.Split('\n')[0].TrimEnd('.')}): start it with docker compose --profile citus up -d --wait, or unset CITUS_URL for the step on paper.", ExitCodes.DatabaseUnavailable, e);
        }

        return extensions > 0
            ? citus
            : throw new SetupException($"CITUS_URL ({citus.Host}:{citus.Port}) answers but is not a Citus server (no citus extension): point it at the coordinator docker compose --profile citus starts, or unset it.", ExitCodes.InvalidInput);
    }

    private static async Task ShardingAsync(Lesson lesson, int dims, NpgsqlConnectionStringBuilder? citus, CancellationToken cancellationToken)
    {
        lesson.Step("Beyond one machine: sharding with Citus",
            "Citus spreads a table over worker nodes by a distribution column. With tenant_id as that column a tenant's rows stay on one worker: " +
            "its search is routed there whole. A search over all tenants runs on every shard at once, each shard's HNSW index returning its own top k, and the coordinator merges them into the global top k.");
        var statements = CitusStatements(dims);
        const string allTenants = "SELECT id, tenant_id FROM sharded_documents ORDER BY embedding <=> @q LIMIT 10";
        const string oneTenant = "SELECT id FROM sharded_documents WHERE tenant_id = @tenant ORDER BY embedding <=> @q LIMIT 10";
        lesson.Sql(string.Join(";\n", statements) + ";\n-- then COPY the rows in, and search:\n" + allTenants + ";\n" + oneTenant + ";");

        if (citus is null)
        {
            lesson.Say("[yellow]On paper:[/] CITUS_URL is not set, so no Citus coordinator is at hand. With Docker: " +
                       "[bold]docker compose --profile citus up -d --wait[/] (a coordinator and two workers with pgvector), then " +
                       "[bold]CITUS_URL=postgresql://postgres:postgres@127.0.0.1:5440/agent_db scripts/lesson.sh 09[/]. Without Docker it stays on paper here: Citus is not in Debian's archive (Citus Data packages it in a repository of its own).");
            lesson.Table(new[]
                {
                    ("search over all tenants", "Custom Scan (Citus Adaptive), Task Count = the shard count: each task runs Limit -> Index Scan using sharded_documents_hnsw_<shard> on its shard; the coordinator sorts the shards' rows by distance and keeps 10"),
                    ("search of one tenant", "Task Count: 1, routed to the shard that holds the tenant: the plan of a single server"),
                    ("where the index lives", "one HNSW graph per shard, on the worker that holds it; every shard's graph is smaller than one graph of the whole table"),
                    ("recall", "each shard returns its own top k by the same index: the merged top k is as good as a single index's, and ef_search applies per shard"),
                },
                ("what", r => r.Item1), ("how Citus does it", r => r.Item2));
            return;
        }

        var builder = new NpgsqlDataSourceBuilder(citus.ConnectionString);
        builder.UseVector();
        await using var coordinator = builder.Build();
        try
        {
            await using (var extension = coordinator.CreateCommand("CREATE EXTENSION IF NOT EXISTS citus"))
            {
                await extension.ExecuteNonQueryAsync(cancellationToken);
            }

            foreach (var statement in statements)
            {
                await using var command = coordinator.CreateCommand(statement);
                await command.ExecuteNonQueryAsync(cancellationToken);
                if (statement.StartsWith("CREATE EXTENSION", StringComparison.Ordinal))
                {
                    await coordinator.ReloadTypesAsync(cancellationToken);
                }
            }

            var rows = await lesson.QueryAsync("SELECT tenant_id, id, title, embedding FROM tenant_documents ORDER BY id", cancellationToken);
            await using (var connection = await coordinator.OpenConnectionAsync(cancellationToken))
            await using (var writer = await connection.BeginBinaryImportAsync("COPY sharded_documents (tenant_id, id, title, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken))
            {
                foreach (var row in rows)
                {
                    await writer.WriteRowAsync(cancellationToken, (int)row["tenant_id"]!, (long)row["id"]!, (string)row["title"]!, (Vector)row["embedding"]!);
                }

                await writer.CompleteAsync(cancellationToken);
            }

            var question = (Vector)rows[0]["embedding"]!;
            foreach (var (sql, tenant) in new[] { (allTenants, (int?)null), (oneTenant, CurrentTenant) })
            {
                await using var explain = coordinator.CreateCommand("EXPLAIN (COSTS OFF) " + sql);
                explain.Parameters.AddWithValue("q", question);
                if (tenant is { } t)
                {
                    explain.Parameters.AddWithValue("tenant", t);
                }

                var plan = new List<string>();
                await using var reader = await explain.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    plan.Add(reader.GetString(0));
                }

                lesson.Sql("EXPLAIN " + sql);
                lesson.Say(Markup.Escape(string.Join('\n', plan.Take(20))));
            }

            lesson.Say($"[bold]{rows.Count:N0}[/] rows on Citus at {citus.Host}:{citus.Port}: the search over all tenants ran a task per shard and merged; tenant {CurrentTenant}'s ran one task.");
        }
        catch (NpgsqlException e) when (e is not PostgresException)
        {
            throw new SetupException($"CITUS_URL ({citus.Host}:{citus.Port}) does not answer ({e.Message.TrimEnd('.')}): start it with docker compose --profile citus up -d --wait, or unset CITUS_URL for the step on paper.", ExitCodes.DatabaseUnavailable, e);
        }
    }
}
