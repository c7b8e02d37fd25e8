using System.Globalization;

namespace PgVectorModule.Lessons.Lesson11;

public sealed partial class ScaleOutLesson
{
    /// <summary>One tenant's search: the filter on the distribution column lets the coordinator send it to one shard.
    /// tenants is a reference table, so the join runs on that shard's worker too.</summary>
    public const string TenantSearch = """
        SELECT d.id, d.title, t.name AS tenant, d.embedding <=> @q AS distance
        FROM documents d JOIN tenants t ON t.tenant_id = d.tenant_id
        WHERE d.tenant_id = @tenant
        ORDER BY d.embedding <=> @q
        LIMIT 10
        """;

    /// <summary>The search over every tenant: each shard returns its own 10 nearest by its HNSW index, the coordinator keeps the best 10.</summary>
    public const string AllTenantsSearch = """
        SELECT id, tenant_id, title, embedding <=> @q AS distance
        FROM documents
        ORDER BY embedding <=> @q
        LIMIT 10
        """;

    /// <summary>The exact answer: "+ 0" makes the ORDER BY an expression no index can return, so every shard sorts every row.</summary>
    public const string AllTenantsExact = """
        SELECT id, tenant_id, title, embedding <=> @q AS distance
        FROM documents
        ORDER BY (embedding <=> @q) + 0, id
        LIMIT 10
        """;

    /// <summary>In a transaction, with citus.propagate_set_commands = local: the shards' plans too avoid reading every row.</summary>
    public const string DiscourageSequentialScans = "SET LOCAL enable_seqscan = off";

    /// <summary>Where a tenant's rows live: its shard of a table, and the worker that holds it.</summary>
    public const string TenantPlacement = """
        SELECT s.shardid, s.nodename || ':' || s.nodeport AS node
        FROM citus_shards s
        WHERE s.table_name = 'documents'::regclass AND s.shardid = get_shard_id_for_distribution_column('documents', @tenant)
        """;

    private static async Task RoutedSearchAsync(Lesson lesson, NpgsqlDataSource citus, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("one-shard", "A tenant's search goes to one shard",
            $"With tenant_id = {LargeTenant} in the WHERE clause the coordinator knows the one shard that can hold the rows: it sends the whole query there (Task Count: 1) and passes the rows back. " +
            "On that worker it is a single server's plan, with lesson 09's choices (the HNSW index, or the tenant's rows through the primary key and a sort).");
        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        var plan = await lesson.ExplainAsync(TenantSearch, connection, Parameters(question, LargeTenant), cancellationToken);
        // The statement run as explained above, its rows in full and the look-up of the tenant's shard are the detail;
        // the rows are shown with their titles shortened.
        IReadOnlyList<IReadOnlyDictionary<string, object?>> rows;
        IReadOnlyDictionary<string, object?> placement;
        using (lesson.Detail())
        {
            rows = await lesson.QueryAsync(TenantSearch, connection, Parameters(question, LargeTenant), cancellationToken);
            lesson.Table(rows.Take(5), ("id", r => r["id"]), ("title", r => r["title"]), ("tenant", r => r["tenant"]),
                ("distance", r => ((double)r["distance"]!).ToString("0.000", CultureInfo.InvariantCulture)));
            placement = (await lesson.QueryAsync(TenantPlacement, connection, [new NpgsqlParameter("tenant", LargeTenant)], cancellationToken))[0];
        }

        lesson.Table(rows.Take(5), ("id", r => r["id"]), ("title", r => Lesson.Excerpt((string)r["title"]!, head: 20, tail: 12)), ("tenant", r => r["tenant"]),
            ("distance", r => ((double)r["distance"]!).ToString("0.000", CultureInfo.InvariantCulture)));
        lesson.Say(TaskCount(plan) == 1
            ? ($"Task Count: 1: routed to shard {placement["shardid"]} on {placement["node"]}, the worker that holds tenant {LargeTenant}'s rows; no other worker did any work.", Tone.Good)
            : ($"The tenant's search ran {TaskCount(plan)} tasks.", Tone.Bad));
    }

    private static async Task FannedOutSearchAsync(Lesson lesson, NpgsqlDataSource citus, IReadOnlyList<Vector> probes, CancellationToken cancellationToken)
    {
        lesson.Step("all-shards", "A search over all tenants: every shard searched, the coordinator merges",
            "Without a tenant the coordinator sends the query to every shard at once (Task Count: the shard count). Each task is LIMIT 10 over its shard's HNSW index; " +
            "the coordinator sorts the shards' rows by distance and keeps 10. Each shard returns its own best 10, so the merged 10 are as good as one index's: the recall against the exact answer says how good.");
        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        string plan;
        IReadOnlyList<(string Access, int Tasks, string Nodes)> tasks;
        var recalls = new List<double>();
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            // A shard of a few hundred rows is cheaper to read whole than to search by its graph, and the planner knows it:
            // from about 2,000 rows a shard it picks the index by itself (the bench's 100,000 rows). Discouraged here, in
            // this transaction only and carried to every shard's connection, each shard does what it would do at scale.
            await lesson.ExecuteAsync(DiscourageSequentialScans, connection, cancellationToken);
            plan = await lesson.ExplainAsync(AllTenantsSearch, connection, Parameters(probes[0], null), cancellationToken);

            // Every task's plan, not the one EXPLAIN shows by default: counted here, shown as a table.
            tasks = await AllTasksAsync(connection, AllTenantsSearch, probes[0], cancellationToken);
            // How the tasks and the exact answer are found is the detail; what they found is shown.
            using (lesson.Detail())
            {
                lesson.Sql("SET citus.explain_all_tasks = on;\nEXPLAIN (COSTS OFF) " + AllTenantsSearch, ["@q = the first probe's vector"]);
                lesson.Sql(AllTenantsExact, ["the exact answer: every row of every shard sorted"]);
            }

            using (lesson.QuietSql())
            {
                foreach (var probe in probes)
                {
                    var approximate = await IdsAsync(connection, AllTenantsSearch, probe, cancellationToken);
                    var exact = await IdsAsync(connection, AllTenantsExact, probe, cancellationToken);
                    recalls.Add(exact.Intersect(approximate).Count() / (double)exact.Count);
                }
            }

            await transaction.CommitAsync(cancellationToken);
        }

        lesson.Table(tasks, ("what the shards ran", t => t.Access), ("tasks", t => t.Tasks), ("on workers", t => t.Nodes));
        lesson.Table([(probes.Count, recalls.Average(), recalls.Min())],
            ("questions", r => r.Item1), ("recall@10, mean", r => r.Item2.ToString("0.000", CultureInfo.InvariantCulture)), ("recall@10, lowest", r => r.Item3.ToString("0.000", CultureInfo.InvariantCulture)));
        var shards = TaskCount(plan);
        lesson.Say($"Fanned out to {shards} shards and merged: the merged top 10 holds {recalls.Average():P1} of the exact top 10 on average " +
                   "(each shard's graph is small, so at the default ef_search of 40 it misses little; the cost is one task per shard on every query).");
    }

    /// <summary>The access path of every task's plan (citus.explain_all_tasks), grouped: what ran, on how many shards, on which workers.</summary>
    public static async Task<IReadOnlyList<(string Access, int Tasks, string Nodes)>> AllTasksAsync(NpgsqlConnection connection, string sql, Vector question, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        // A coordinator setting, for this session: SET, not SET LOCAL, which would be carried to the workers too.
        await using (var set = new NpgsqlCommand("SET citus.explain_all_tasks = on", connection))
        {
            await set.ExecuteNonQueryAsync(cancellationToken);
        }

        var lines = new List<string>();
        try
        {
            // The vector written into the statement: Citus 14 fails an EXPLAIN of every task when the query has parameters.
            var literal = "'[" + string.Join(',', question.ToArray().Select(f => f.ToString("R", CultureInfo.InvariantCulture))) + "]'::vector";
            await using var explain = new NpgsqlCommand("EXPLAIN (COSTS OFF) " + sql.Replace("@q", literal, StringComparison.Ordinal), connection);
            await using var reader = await explain.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                lines.Add(reader.GetString(0).Trim());
            }
        }
        finally
        {
            await using var reset = new NpgsqlCommand("RESET citus.explain_all_tasks", connection);
            await reset.ExecuteNonQueryAsync(CancellationToken.None);
        }
        var tasks = new List<(string Node, string Access)>();
        for (var i = 0; i < lines.Count; i++)
        {
            if (lines[i] != "->  Task")
            {
                continue;
            }

            var node = lines[i + 1].Replace("Node: ", "", StringComparison.Ordinal);
            var scan = lines.Skip(i + 2).TakeWhile(l => l != "->  Task").FirstOrDefault(l => l.Contains("Scan", StringComparison.Ordinal)) ?? "";
            tasks.Add((node, Access(scan)));
        }

        return tasks.GroupBy(t => t.Access)
            .Select(g => (g.Key, g.Count(), string.Join(", ", g.Select(t => t.Node.Split(' ').First(p => p.StartsWith("port=", StringComparison.Ordinal))[5..]).Distinct().Order(StringComparer.Ordinal))))
            .OrderByDescending(g => g.Item2).ToList();
    }

    /// <summary>"->  Index Scan using documents_hnsw_102008 on documents_102008 documents" as "Index Scan using documents_hnsw_&lt;shard&gt;".</summary>
    private static string Access(string scan)
    {
        var words = scan.Replace("->", "", StringComparison.Ordinal).Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var using_ = Array.IndexOf(words, "using");
        var on = Array.IndexOf(words, "on");
        var target = using_ >= 0 ? words[using_ + 1] : on >= 0 ? words[on + 1] : "";
        var kind = string.Join(' ', words.TakeWhile(w => w is not ("using" or "on")));
        var generic = System.Text.RegularExpressions.Regex.Replace(target, @"_\d+$", "_<shard>");
        return $"{kind} {(using_ >= 0 ? "using" : "on")} {generic}".Trim();
    }

    /// <summary>The task count a Citus plan reports (0 when the plan has none).</summary>
    public static int TaskCount(string plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var line = plan.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Task Count:", StringComparison.Ordinal));
        return line is null ? 0 : int.Parse(line["Task Count:".Length..].Trim(), CultureInfo.InvariantCulture);
    }

    private static NpgsqlParameter[] Parameters(Vector question, int? tenant) => tenant is { } t
        ? [new NpgsqlParameter("q", question), new NpgsqlParameter("tenant", t)]
        : [new NpgsqlParameter("q", question)];

    public static async Task<IReadOnlyList<long>> IdsAsync(NpgsqlConnection connection, string sql, Vector question, CancellationToken cancellationToken, int? tenant = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddRange(Parameters(question, tenant));
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }
}
