using System.Diagnostics;
using System.Globalization;

namespace PgVectorModule.Lessons.Lesson09;

/// <param name="Id">The document.</param>
/// <param name="TenantId">Whose it is: always the tenant that searched.</param>
public sealed record TenantHit(long Id, int TenantId, string Title, double Distance);

public sealed partial class TenantsLesson
{
    /// <summary>
    /// The search as the application runs it: one transaction, the tenant set for it alone, then a nearest-neighbour
    /// query without any tenant condition of its own (the policy adds it). <paramref name="titleFilter"/> is text a
    /// user typed; it travels as a parameter.
    /// </summary>
    public const string TenantSearchSql = """
        SELECT id, tenant_id, title, embedding <=> @q AS distance
        FROM tenant_documents
        WHERE (@filter::text IS NULL OR title ILIKE '%' || @filter || '%')
        ORDER BY embedding <=> @q
        LIMIT 10
        """;

    public static async Task<IReadOnlyList<TenantHit>> SearchAsTenantAsync(NpgsqlDataSource app, int tenant, Vector question, string? titleFilter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(app);
        await using var connection = await app.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await SetTenantAsync(connection, tenant, cancellationToken);
        await using var command = new NpgsqlCommand(TenantSearchSql, connection, transaction);
        command.Parameters.AddWithValue("q", question);
        command.Parameters.Add(new NpgsqlParameter("filter", NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)titleFilter ?? DBNull.Value });
        var hits = new List<TenantHit>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                hits.Add(new TenantHit(reader.GetInt64(0), reader.GetInt32(1), reader.GetString(2), reader.GetDouble(3)));
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return hits;
    }

    private static async Task TenantSearchAsync(Lesson lesson, NpgsqlDataSource app, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("tenant-search", "A tenant's search, and hostile text",
            $"The application's search for tenant {CurrentTenant}: the tenant set for the transaction, no tenant condition in the query. Then the same search with a title filter a user typed, {HostileText}, " +
            "once as a parameter and once pasted into the SQL (which no application should do): the policy's condition is added either way.");
        lesson.Sql($"BEGIN;\nSELECT set_config('app.tenant_id', @tenant, true);\n{TenantSearchSql};\nCOMMIT;", [$"@tenant = '{CurrentTenant}'", "@q = the question's vector", "@filter = NULL"]);
        var hits = await SearchAsTenantAsync(app, CurrentTenant, question, null, cancellationToken);
        lesson.Table(hits.Take(5), ("id", h => h.Id), ("tenant_id", h => h.TenantId), ("title", h => h.Title), ("distance", h => h.Distance.ToString("0.000", CultureInfo.InvariantCulture)));

        var rows = new List<(string How, int Rows, string Tenants)>();
        var asParameter = await SearchAsTenantAsync(app, CurrentTenant, question, HostileText, cancellationToken);
        rows.Add(("as a parameter (@filter)", asParameter.Count, Tenants(asParameter.Select(h => h.TenantId))));

        var pasted = $"SELECT tenant_id FROM tenant_documents WHERE title ILIKE '%{HostileText}%'";
        lesson.Sql(pasted, ["pasted into the SQL: the quote ends the literal, and OR tenant_id <> 3 OR '1'='1 matches every row the query can see"]);
        await using (var connection = await app.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await SetTenantAsync(connection, CurrentTenant, cancellationToken);
            await using var command = new NpgsqlCommand(pasted, connection, transaction);
            var tenants = new List<int>();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                tenants.Add(reader.GetInt32(0));
            }

            rows.Add(("pasted into the SQL", tenants.Count, Tenants(tenants)));
        }

        lesson.Table(rows, ("the hostile filter", r => r.How), ("rows", r => r.Rows), ("tenants among them", r => r.Tenants));
        lesson.Say(rows.All(r => r.Tenants is "none" || r.Tenants == CurrentTenant.ToString(CultureInfo.InvariantCulture))
            ? ($"As a parameter the text matched no title. Pasted in, it matched every row the role may see, and those were tenant {CurrentTenant}'s only: the policy held. " +
              "It is not a reason to paste: injected SQL could call set_config itself. Parameters first, the policy behind them.", Tone.Plain)
            : ("Rows of another tenant came back.", Tone.Bad));
    }

    private static string Tenants(IEnumerable<int> tenants)
    {
        var distinct = tenants.Distinct().Order().ToList();
        return distinct.Count == 0 ? "none" : string.Join(", ", distinct);
    }

    // ---------------------------------------------------------------- fast under the filter

    /// <summary>Rounds of the measurement: each runs every way's 20 queries once, so a way's median is of 60 timings.</summary>
    public const int MeasuredRounds = 3;

    /// <summary>One way to search a tenant: what is set in the transaction, the query, and the index it is meant to use.</summary>
    private sealed record Way(string Name, string Settings, string Sql);

    private static async Task MeasureAsync(Lesson lesson, NpgsqlDataSource app, int dims, IReadOnlyList<Vector> probes, CancellationToken cancellationToken)
    {
        lesson.Step("four-designs", "Fast and complete under the tenant filter: four designs, measured",
            "An HNSW scan walks the graph of every tenant's rows and drops the other tenants' afterwards: for a small tenant most of the ef_search (40) candidates are dropped and fewer than 10 rows come back. " +
            "The lesson builds the alternatives (partial indexes per tenant, a partition per tenant), runs 20 queries per tenant each way as the application role (three rounds, the ways taking turns), and compares with the exact answer.");
        // The statements below are shown once, together, after they ran.
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("""
                CREATE TABLE tenant_documents_by_tenant (LIKE tenant_documents INCLUDING DEFAULTS) PARTITION BY LIST (tenant_id)
                """, cancellationToken);
            for (var tenant = 1; tenant <= TenantCount; tenant++)
            {
                await lesson.ExecuteAsync($"CREATE INDEX tenant_documents_tenant_{tenant}_hnsw ON tenant_documents USING hnsw (embedding vector_cosine_ops) WHERE tenant_id = {tenant}", cancellationToken);
                await lesson.ExecuteAsync($"CREATE TABLE tenant_documents_tenant_{tenant} PARTITION OF tenant_documents_by_tenant FOR VALUES IN ({tenant})", cancellationToken);
            }

            await lesson.ExecuteAsync("INSERT INTO tenant_documents_by_tenant SELECT * FROM tenant_documents", cancellationToken);
            await lesson.ExecuteAsync("CREATE INDEX ON tenant_documents_by_tenant USING hnsw (embedding vector_cosine_ops)", cancellationToken);
            await lesson.ExecuteAsync("ALTER TABLE tenant_documents_by_tenant ENABLE ROW LEVEL SECURITY", cancellationToken);
            await lesson.ExecuteAsync("ALTER TABLE tenant_documents_by_tenant FORCE ROW LEVEL SECURITY", cancellationToken);
            await lesson.ExecuteAsync($"CREATE POLICY tenant_isolation ON tenant_documents_by_tenant USING ({TenantCondition}) WITH CHECK ({TenantCondition})", cancellationToken);
            await lesson.ExecuteAsync($"GRANT SELECT ON tenant_documents_by_tenant TO {AppRole(lesson.Schema, (string)(await lesson.QueryAsync("SELECT current_database() AS db", cancellationToken))[0]["db"]!)}", cancellationToken);
            await lesson.ExecuteAsync("ANALYZE tenant_documents, tenant_documents_by_tenant", cancellationToken);
        }

        lesson.Sql($"""
            -- a partial HNSW index per tenant, on the same table
            CREATE INDEX tenant_documents_tenant_{CurrentTenant}_hnsw ON tenant_documents USING hnsw (embedding vector_cosine_ops) WHERE tenant_id = {CurrentTenant};  -- one per tenant
            -- or a partition per tenant, each with its own HNSW index
            CREATE TABLE tenant_documents_by_tenant (LIKE tenant_documents INCLUDING DEFAULTS) PARTITION BY LIST (tenant_id);
            CREATE TABLE tenant_documents_tenant_{CurrentTenant} PARTITION OF tenant_documents_by_tenant FOR VALUES IN ({CurrentTenant});  -- one per tenant
            CREATE INDEX ON tenant_documents_by_tenant USING hnsw (embedding vector_cosine_ops);  -- one index per partition
            -- the same policy on it, and ANALYZE
            """);

        // enable_sort = off takes the planner's other choice (read the tenant's rows, sort them) off the table, so each
        // way shows the index it is about; the exact way wraps the distance so no index can order by it.
        const string nearest = "ORDER BY embedding <=> @q LIMIT 10";
        const string noSort = "SET LOCAL enable_sort = off";
        var ways = new Way[]
        {
            new("exact: the tenant's rows by B-tree, sorted", "", "SELECT id FROM tenant_documents ORDER BY (embedding <=> @q) + 0 LIMIT 10"),
            new("one HNSW index, filtered after", noSort, $"SELECT id FROM tenant_documents {nearest}"),
            new("one HNSW index, iterative scan", $"{noSort}; SET LOCAL hnsw.iterative_scan = relaxed_order", $"SELECT id FROM tenant_documents {nearest}"),
            new("a partial HNSW index per tenant", noSort, $"SELECT id FROM tenant_documents WHERE tenant_id = @tenant {nearest}"),
            new("a partition per tenant", noSort, $"SELECT id FROM tenant_documents_by_tenant WHERE tenant_id = @tenant {nearest}"),
        };
        // Shown once for the four ways that set it, each way with its own settings.
        string OwnSettings(Way w) => w.Settings.Replace(noSort, "", StringComparison.Ordinal).Trim(';', ' ');
        lesson.Sql($"-- every way but the exact one: {noSort};\n" +
                   string.Join("\n", ways.Select(w => $"-- {w.Name}\n{(OwnSettings(w) is { Length: > 0 } own ? own + ";\n" : "")}{w.Sql};")),
            ["each in a transaction after set_config('app.tenant_id', @tenant, true): the policy adds the tenant condition to every one"]);

        // Three rounds, each running every way in turn, so that a moment of load on the machine falls on all of them.
        var runs = new Dictionary<(string Way, int Tenant), (List<List<long>> Found, List<double> Timings, string Plan)>();
        for (var round = 0; round < MeasuredRounds; round++)
        {
            foreach (var tenant in new[] { CurrentTenant, LargeTenant })
            {
                foreach (var way in ways)
                {
                    var (found, timings, plan) = await RunWayAsync(app, way, tenant, probes, cancellationToken);
                    if (runs.TryGetValue((way.Name, tenant), out var earlier))
                    {
                        earlier.Timings.AddRange(timings);
                    }
                    else
                    {
                        runs[(way.Name, tenant)] = (found, timings, plan);
                    }
                }
            }
        }

        var results = new List<(string Way, int Tenant, double Rows, double Recall, double MedianMs, string Plan)>();
        foreach (var tenant in new[] { CurrentTenant, LargeTenant })
        {
            var truth = runs[(ways[0].Name, tenant)].Found;
            foreach (var way in ways)
            {
                var (found, timings, plan) = runs[(way.Name, tenant)];
                timings.Sort();
                results.Add((way.Name, tenant, found.Average(f => f.Count), found.Select((f, i) => truth[i].Intersect(f).Count() / 10.0).Average(), timings[timings.Count / 2], plan));
            }
        }

        // Shown: a way per row, both tenants side by side; the full table (a row per way and tenant, with the index in
        // each plan) and the indexes the plans used are the detail.
        string Figures(string way, int tenant)
        {
            var r = results.Single(r => r.Way == way && r.Tenant == tenant);
            return string.Create(CultureInfo.InvariantCulture, $"{r.Rows,4:0.0} {r.Recall:0.00} {r.MedianMs,5:0.00}");
        }

        lesson.Table(ways,
            ("way (rows of 10, recall@10, median ms)", w => w.Name),
            ($"tenant {CurrentTenant} ({SmallTenantRows})", w => Figures(w.Name, CurrentTenant)),
            ($"tenant {LargeTenant} ({LargeTenantRows})", w => Figures(w.Name, LargeTenant)));
        using (lesson.Detail())
        {
            lesson.Table(results,
                ("way", r => r.Way), ("tenant (rows)", r => $"{r.Tenant} ({(r.Tenant == LargeTenant ? LargeTenantRows : SmallTenantRows)})"),
                ("rows returned (of 10)", r => r.Rows.ToString("0.0", CultureInfo.InvariantCulture)),
                ("recall@10 vs exact", r => r.Recall.ToString("0.00", CultureInfo.InvariantCulture)),
                ($"median ms ({MeasuredRounds} x 20)", r => r.MedianMs.ToString("0.00", CultureInfo.InvariantCulture)),
                ("index in the plan", r => r.Plan));
            lesson.Say($"Indexes in the plans for tenant {CurrentTenant}, way by way: {string.Join("; ", results.Where(r => r.Tenant == CurrentTenant).Select(r => r.Plan))}.", Tone.Aside);
        }

        var filtered = results.Single(r => r.Way.StartsWith("one HNSW index, filtered", StringComparison.Ordinal) && r.Tenant == CurrentTenant);
        var iterative = results.Single(r => r.Way.StartsWith("one HNSW index, iterative", StringComparison.Ordinal) && r.Tenant == CurrentTenant);
        lesson.Say($"For tenant {CurrentTenant} the shared index filtered after the scan returned {filtered.Rows.ToString("0.0", CultureInfo.InvariantCulture)} rows of 10 on average; " +
                   $"with iterative scan {iterative.Rows.ToString("0.0", CultureInfo.InvariantCulture)}. " +
                   "A partial index or a partition gives each tenant a graph of its own rows: full results at the speed of a small index, for the price of an index (or a table) per tenant. " +
                   "Many small tenants: one index with iterative scan, or plain exact search through the B-tree. A few large ones: partial indexes or partitions for them. " +
                   "The figures are this run's; run the lesson again to see how steady they are.");
    }

    private static async Task<(List<List<long>> Found, List<double> Timings, string Plan)> RunWayAsync(NpgsqlDataSource app, Way way, int tenant,
        IReadOnlyList<Vector> probes, CancellationToken cancellationToken)
    {
        await using var connection = await app.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await SetTenantAsync(connection, tenant, cancellationToken);
        foreach (var setting in way.Settings.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await using var set = new NpgsqlCommand(setting, connection, transaction);
            await set.ExecuteNonQueryAsync(cancellationToken);
        }

        NpgsqlCommand Command(string sql, Vector q)
        {
            var command = new NpgsqlCommand(sql, connection, transaction);
            command.Parameters.AddWithValue("q", q);
            command.Parameters.AddWithValue("tenant", tenant);
            return command;
        }

        var plan = new List<string>();
        await using (var explain = Command("EXPLAIN (COSTS OFF) " + way.Sql, probes[0]))
        await using (var reader = await explain.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                plan.Add(reader.GetString(0).Trim().TrimStart('-', '>', ' '));
            }
        }

        // Warm the index pages once, so the first timed query does not pay for reading them.
        await using (var warm = Command(way.Sql, probes[0]))
        {
            await warm.ExecuteNonQueryAsync(cancellationToken);
        }

        var found = new List<List<long>>();
        var timings = new List<double>();
        foreach (var probe in probes)
        {
            await using var command = Command(way.Sql, probe);
            var watch = Stopwatch.StartNew();
            var ids = new List<long>();
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    ids.Add(reader.GetInt64(0));
                }
            }

            timings.Add(watch.Elapsed.TotalMilliseconds);
            found.Add(ids);
        }

        await transaction.RollbackAsync(cancellationToken);
        return (found, timings, Summarize(plan));
    }

    /// <summary>The plan's access paths in a few words: the index each scan uses, or the table it reads whole.</summary>
    private static string Summarize(IReadOnlyList<string> plan)
    {
        var access = new List<string>();
        foreach (var line in plan)
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (line.StartsWith("Index Scan using", StringComparison.Ordinal) || line.StartsWith("Index Only Scan using", StringComparison.Ordinal))
            {
                access.Add(words[Array.IndexOf(words, "using") + 1]);
            }
            else if (line.StartsWith("Bitmap Index Scan on", StringComparison.Ordinal))
            {
                access.Add(words[4] + " (bitmap)");
            }
            else if (line.StartsWith("Seq Scan on", StringComparison.Ordinal))
            {
                access.Add("sequential scan of " + words[3]);
            }
        }

        return string.Join(", ", access);
    }
}
