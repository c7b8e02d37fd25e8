using System.CommandLine;
using System.Diagnostics;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench.Ann;

/// <summary>
/// ann: approximate nearest neighbours against the exact answer, on reproducible clustered vectors in schema
/// bench_ann. Every query goes through <see cref="VectorSearch.Nearest"/>, the LINQ the lessons use.
/// </summary>
public static class AnnCommand
{
    public const string Name = "ann";
    public const string Schema = "bench_ann";
    private const int Dimensions = 384;
    private const int K = 10;

    /// <summary>The target: recall@10 of at least this at a p50 of at most <see cref="TargetP50Ms"/>, on either .NET path.</summary>
    internal const double TargetRecall = 0.95;
    internal const double TargetP50Ms = 1.0;
    private static readonly int[] EfSearch = [10, 20, 40, 80, 160, 320];
    private static readonly int[] Probes = [1, 2, 4, 8, 16, 32];

    internal static Command Definition() => new(Name,
        "recall@10, QPS, p50/p95 (LINQ, compiled and prepared, inside the server) of HNSW (ef_search) and IVFFlat (probes) against the exact top 10, " +
        "on a seeded mixture or on real embeddings: eval's cached vectors (a folder of the embedding cache), texts one per line, or the installed .NET SDK's API " +
        "documentation, embedded once and cached")
    {
        BenchOptions.Count("--rows", 100_000, "rows in the table"),
        BenchOptions.Count("--queries", 200, "queries, held out of the table when the vectors are real"),
        BenchOptions.Count("--seed", 42, "seed of the mixture and of the hold-out", min: 0),
        BenchOptions.Count("--clusters", 100, "clusters in the seeded mixture"),
        BenchOptions.Number("--spread", 2, "how far the mixture's points lie from their cluster's centre"),
        BenchOptions.Count("--m", 16, "HNSW's m", min: 2),
        BenchOptions.Count("--ef-construction", 64, "HNSW's ef_construction", min: 4),
        BenchOptions.Text("--maintenance-work-mem", "SIZE", "maintenance_work_mem for the index builds", "1GB"),
        BenchOptions.Text("--vectors", "PATH", "embeddings eval cached: the model's folder eval names (or one of its .vectors files, or a file of 32-byte keys and floats)"),
        BenchOptions.Text("--texts", "FILE", "texts, one per line, embedded here"),
        BenchOptions.Flag("--sdk-docs", "the installed .NET SDK's API documentation, embedded here"),
        BenchOptions.Text("--cache", "DIR", EmbeddedTexts.CacheHelp),
    };

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var seed = args.GetValue<int>("--seed");
        var m = args.GetValue<int>("--m");
        var efConstruction = args.GetValue<int>("--ef-construction");
        var maintenanceWorkMem = args.GetValue<string>("--maintenance-work-mem")!;
        var vectors = await AnnVectors.LoadAsync(context, args.GetValue<string?>("--vectors"), args.GetValue<string?>("--texts"), args.GetValue<bool>("--sdk-docs"),
            args.GetValue<string?>("--cache"), Dimensions, args.GetValue<int>("--rows"), args.GetValue<int>("--queries"), seed,
            args.GetValue<int>("--clusters"), args.GetValue<double>("--spread"), cancellationToken);
        var (rows, queries, source) = (vectors.Points.Count, vectors.Queries, vectors.Source);
        var console = context.Console;

        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        var shape = new VectorStoreShape(Dimensions, IvfFlatLists: VectorStoreShape.ListsFor(rows), HnswM: m, HnswEfConstruction: efConstruction);
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
        var machine = await BenchContext.MachineAsync(dataSource, cancellationToken);
        // The hot path beside the lessons' LINQ: the compiled query on a connection that prepares its statements.
        await using var preparingSource = await context.OpenSchemaAsync(Schema, cancellationToken, maxAutoPrepare: 8);
        await using var hotDb = BenchContext.NewDbContext(preparingSource, shape);
        var hnswName = $"HNSW (m {m}, ef_construction {efConstruction})";
        var ivfName = $"IVFFlat (lists {shape.IvfFlatLists})";

        console.MarkupLine(Markup.Escape($"{rows:N0} vectors x {Dimensions} ({source}), {queries.Count} queries, top {K}."));
        var ddl = VectorStore.Ddl(db);
        IndexBuild? hnswBuild = null, ivfBuild = null;
        (List<int[]> Ids, Latency Client, Latency Server) exact = ([], new Latency(), new Latency());
        var results = new List<AnnResult>();

        await db.Database.OpenConnectionAsync(cancellationToken);
        await hotDb.Database.OpenConnectionAsync(cancellationToken);
        await context.Progress().StartAsync(async progress =>
        {
            await LoadTableAsync(dataSource, db, vectors, progress, cancellationToken);
            exact = await ExactAsync(db, queries, progress.AddTask($"exact top {K} (sequential scan)", maxValue: queries.Count * 2), cancellationToken);

            var build = progress.AddTask($"building {hnswName}", maxValue: 1);
            hnswBuild = await IndexBuild.MeasureAsync(dataSource, VectorDocumentConfiguration.HnswIndex, hnswName,
                ddl.Indexes[VectorDocumentConfiguration.HnswIndex], maintenanceWorkMem, cancellationToken);
            build.Value = 1;
            foreach (var ef in EfSearch)
            {
                var task = progress.AddTask($"HNSW ef_search {ef}", maxValue: queries.Count * 3);
                results.Add(await SweepAsync(db, hotDb, "HNSW", "ef_search", ef, $"SET hnsw.ef_search = {ef}", queries, exact.Ids, task, cancellationToken));
            }

            await db.Database.ExecuteSqlRawAsync($"DROP INDEX {VectorDocumentConfiguration.HnswIndex}", cancellationToken);
            build = progress.AddTask($"building {ivfName}", maxValue: 1);
            ivfBuild = await IndexBuild.MeasureAsync(dataSource, VectorDocumentConfiguration.IvfFlatIndex, ivfName,
                ddl.Indexes[VectorDocumentConfiguration.IvfFlatIndex], maintenanceWorkMem, cancellationToken);
            build.Value = 1;
            foreach (var probes in Probes)
            {
                var task = progress.AddTask($"IVFFlat probes {probes}", maxValue: queries.Count * 3);
                results.Add(await SweepAsync(db, hotDb, "IVFFlat", "probes", probes, $"SET ivfflat.probes = {probes}", queries, exact.Ids, task, cancellationToken));
            }
        });

        // The cheapest HNSW setting that meets the target; IVFFlat's best trade: recall per millisecond.
        var hnsw = results.Where(r => r.Index == "HNSW").ToList();
        var cheapest = CheapestMeetingTarget(hnsw);
        var bestIvf = results.Where(r => r.Index == "IVFFlat").MaxBy(r => r.RecallAt10 / r.P50Ms)!;
        var title = $"{rows:N0} x {Dimensions} ({source}), {queries.Count} queries, recall@{K} against the exact top {K}";
        console.Write(Table(title, exact.Client, exact.Server, results, marked: [cheapest, bestIvf]));
        console.MarkupLine("[grey]Milliseconds. LINQ: the lessons' VectorSearch.Nearest, timed in .NET, round trip included. compiled: VectorSearch.NearestCosineCompiled on a connection " +
            "with prepared statements (Max Auto Prepare), the same SQL. server: the LINQ's command under EXPLAIN (ANALYZE, TIMING OFF), planning plus execution inside PostgreSQL.[/]");
        var verdicts = Verdicts(hnsw, bestIvf);
        foreach (var line in verdicts)
        {
            console.MarkupLine(Markup.Escape(line));
        }

        var report = new AnnReport(rows, Dimensions, queries.Count, seed, source, K, m, efConstruction, maintenanceWorkMem, machine,
            new AnnExact(exact.Client.Qps, exact.Client.P50, exact.Client.P95, exact.Server.P50, exact.Server.P95), hnswBuild!, ivfBuild!, results,
            cheapest?.Value, bestIvf.Value, verdicts);
        var svg = AnnChart.Render(results, $"recall@{K} vs p50 latency: {rows:N0} x {Dimensions}, {queries.Count} queries", exact.Client.P50,
            $"{source}; {hnswName}, IVFFlat lists {shape.IvfFlatLists}");
        await SaveAsync(context, report, svg, cancellationToken);
        return ExitCodes.Success;
    }

    /// <summary>Loads the vectors unless the table already holds these (its comment says which), and drops the indexes a last run left.</summary>
    private static async Task LoadTableAsync(NpgsqlDataSource dataSource, SearchDbContext db, AnnVectors vectors, ProgressContext progress, CancellationToken cancellationToken)
    {
        var stored = await BenchContext.ScalarAsync<string>(dataSource,
            $"SELECT coalesce(obj_description(to_regclass('{VectorDocumentConfiguration.TableName}'), 'pg_class'), '')", cancellationToken);
        var load = progress.AddTask(stored == vectors.Marker ? "vectors already loaded" : "COPY vectors", maxValue: 1);
        if (stored != vectors.Marker)
        {
            await VectorStore.RecreateTablesAsync(db, cancellationToken);
            var documents = Enumerable.Range(0, vectors.Points.Count).Select(i => new CorpusDocument($"v{i}", "", Name)).ToList();
            await VectorStore.CopyAsync(dataSource, documents, vectors.Points, cancellationToken);
            // The marker is built from numbers only, so writing it into the statement is safe.
            var comment = $"COMMENT ON TABLE {VectorDocumentConfiguration.TableName} IS '{vectors.Marker}'";
            await db.Database.ExecuteSqlRawAsync(comment, cancellationToken);
        }

        foreach (var index in new[] { VectorDocumentConfiguration.HnswIndex, VectorDocumentConfiguration.IvfFlatIndex })
        {
            var drop = "DROP INDEX IF EXISTS " + index;
            await db.Database.ExecuteSqlRawAsync(drop, cancellationToken);
        }

        await db.Database.ExecuteSqlRawAsync($"VACUUM ANALYZE {VectorDocumentConfiguration.TableName}", cancellationToken);
        load.Value = 1;
    }

    /// <summary>The exact top <see cref="K"/> of each query with index scans off: the ids, the round trip and the time inside the server.</summary>
    private static async Task<(List<int[]> Ids, Latency Client, Latency Server)> ExactAsync(SearchDbContext db, IReadOnlyList<Vector> queries, ProgressTask task,
        CancellationToken cancellationToken)
    {
        var ids = new List<int[]>();
        var client = new Latency();
        var server = new Latency();
        await db.Database.ExecuteSqlRawAsync("SET enable_indexscan = off", cancellationToken);
        foreach (var query in queries)
        {
            var watch = Stopwatch.StartNew();
            var hits = await VectorSearch.Nearest(db, query, limit: K).ToListAsync(cancellationToken);
            client.Add(watch.Elapsed);
            ids.Add(hits.Select(h => h.Id).ToArray());
            task.Increment(1);
        }

        foreach (var query in queries)
        {
            server.Add(await ServerTimeAsync(db, query, cancellationToken));
            task.Increment(1);
        }

        await db.Database.ExecuteSqlRawAsync("RESET enable_indexscan", cancellationToken);
        return (ids, client, server);
    }

    private static Table Table(string title, Latency exact, Latency exactServer, IReadOnlyList<AnnResult> results, AnnResult?[] marked)
    {
        var table = new Table().Title(Markup.Escape(title))
            .AddColumns("index", "setting", $"recall@{K}", "QPS", "LINQ p50", "LINQ p95", "compiled p50", "compiled p95", "server p50", "server p95");
        table.AddRow("exact scan", "enable_indexscan off", "1.000", exact.Qps.ToString("N0"), exact.P50.ToString("F2"), exact.P95.ToString("F2"),
            "", "", exactServer.P50.ToString("F2"), exactServer.P95.ToString("F2"));
        foreach (var r in results)
        {
            var mark = marked.Contains(r) ? "[green]*[/]" : "";
            // The two paths send the same SQL; a recall that differed would mean a different plan, so it is shown.
            var recall = Math.Abs(r.RecallAt10 - r.HotRecallAt10) < 1e-9 ? r.RecallAt10.ToString("F3") : $"{r.RecallAt10:F3} / {r.HotRecallAt10:F3}";
            table.AddRow(r.Index, $"{r.Setting} {r.Value}{mark}", recall, r.Qps.ToString("N0"), r.P50Ms.ToString("F2"), r.P95Ms.ToString("F2"),
                r.HotP50Ms.ToString("F2"), r.HotP95Ms.ToString("F2"), r.ServerP50Ms.ToString("F2"), r.ServerP95Ms.ToString("F2"));
        }

        return table;
    }

    private static async Task SaveAsync(BenchContext context, AnnReport report, string svg, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(context.OutputFolder);
        var chart = Path.Combine(context.OutputFolder, "ann.svg");
        await File.WriteAllTextAsync(chart, svg, cancellationToken);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, Name, report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, Name,
                ["index", "setting", "value", "recall_at_10", "qps", "p50_ms", "p95_ms", "compiled_recall_at_10", "compiled_p50_ms", "compiled_p95_ms", "server_p50_ms", "server_p95_ms"],
                report.Results.Select(r => (IReadOnlyList<object?>)[r.Index, r.Setting, r.Value, r.RecallAt10, r.Qps, r.P50Ms, r.P95Ms, r.HotRecallAt10, r.HotP50Ms, r.HotP95Ms, r.ServerP50Ms, r.ServerP95Ms]), cancellationToken),
            chart);
    }

    /// <summary>HNSW settings reaching the target recall, cheapest (smallest ef_search) first.</summary>
    private static List<AnnResult> ReachingTargetRecall(IEnumerable<AnnResult> hnsw) =>
        hnsw.Where(r => r.WorstRecallAt10 >= TargetRecall).OrderBy(r => r.Value).ToList();

    private static AnnResult? CheapestMeetingTarget(IEnumerable<AnnResult> hnsw) =>
        ReachingTargetRecall(hnsw).FirstOrDefault(r => r.BestP50Ms <= TargetP50Ms);

    /// <summary>The target judged on the round trip and, apart, on the time inside the server.</summary>
    internal static IReadOnlyList<string> Verdicts(IReadOnlyList<AnnResult> hnsw, AnnResult bestIvf)
    {
        static string Figures(AnnResult r) =>
            $"recall {r.WorstRecallAt10:F3}; p50 {r.P50Ms:F2} ms LINQ, {r.HotP50Ms:F2} ms compiled and prepared, {r.ServerP50Ms:F2} ms inside the server";
        var reaching = ReachingTargetRecall(hnsw);
        var cheapest = CheapestMeetingTarget(hnsw);
        var recall = $"recall@{K} >= {TargetRecall:0.###}";
        var target = $"{recall} at p50 <= {TargetP50Ms:0.###} ms";
        var lines = new List<string>
        {
            cheapest is not null
                ? $"Cheapest HNSW setting with {target}: ef_search {cheapest.Value} ({Figures(cheapest)})."
                : $"No HNSW setting reached {target}" + (reaching.Count == 0
                    ? $"; none reached recall@{K} {TargetRecall:0.###} at all."
                    : $"; the cheapest reaching {recall} is ef_search {reaching[0].Value} ({Figures(reaching[0])})."),
        };
        if (hnsw.Count > 0)
        {
            var least = hnsw.MinBy(r => r.Value)!;
            lines.Add($"The least HNSW work, ef_search {least.Value}, takes {least.ServerP50Ms:F2} ms inside the server (p50) for recall {least.RecallAt10:F3}.");
        }

        lines.Add($"IVFFlat's best recall per millisecond: probes {bestIvf.Value} (recall {bestIvf.RecallAt10:F3}, p50 {bestIvf.P50Ms:F2} ms).");
        return lines;
    }

    /// <summary>Planning plus execution time inside the server for the lessons' query, from EXPLAIN ANALYZE of the very command EF Core sends.</summary>
    private static async Task<TimeSpan> ServerTimeAsync(SearchDbContext db, Vector query, CancellationToken cancellationToken)
    {
        await using var command = VectorSearch.Nearest(db, query, limit: K).CreateDbCommand();
        // TIMING OFF: no clock reads per row, so the figure is the query's, not the instrumentation's.
        command.CommandText = "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + command.CommandText;
        var json = (string)(await command.ExecuteScalarAsync(cancellationToken))!;
        using var plan = System.Text.Json.JsonDocument.Parse(json);
        var root = plan.RootElement[0];
        return TimeSpan.FromMilliseconds(root.GetProperty("Planning Time").GetDouble() + root.GetProperty("Execution Time").GetDouble());
    }

    private static async Task<AnnResult> SweepAsync(SearchDbContext db, SearchDbContext hotDb, string index, string setting, int value, string set,
        IReadOnlyList<Vector> queries, IReadOnlyList<int[]> exact, ProgressTask task, CancellationToken cancellationToken)
    {
        // A session setting on each context's one open connection: every query below runs with it.
        await db.Database.ExecuteSqlRawAsync(set, cancellationToken);
        await hotDb.Database.ExecuteSqlRawAsync(set, cancellationToken);
        foreach (var query in queries.Take(5))
        {
            await VectorSearch.Nearest(db, query, limit: K).ToListAsync(cancellationToken);
        }

        // Npgsql prepares a statement once it has run five times (AutoPrepareMinUsages): warm up past that.
        foreach (var query in queries.Take(10))
        {
            await VectorSearch.NearestCosineCompiled(hotDb, query, K).ToListAsync(cancellationToken);
        }

        // Both .NET paths in one loop, taking turns at going first, so a busy moment on the machine falls on both alike.
        // Path 0 is the lessons' LINQ, path 1 the compiled query on the preparing connection.
        Latency[] latency = [new(), new()];
        var recall = new double[2];
        for (var i = 0; i < queries.Count; i++)
        {
            for (var turn = 0; turn < 2; turn++)
            {
                var path = (turn + i) % 2;
                var watch = Stopwatch.StartNew();
                var hits = path == 1
                    ? await VectorSearch.NearestCosineCompiled(hotDb, queries[i], K).ToListAsync(cancellationToken)
                    : await VectorSearch.Nearest(db, queries[i], limit: K).ToListAsync(cancellationToken);
                latency[path].Add(watch.Elapsed);
                recall[path] += RetrievalMetrics.Overlap(hits.Select(h => h.Id).ToArray(), exact[i]);
                task.Increment(1);
            }
        }

        // A third pass, apart from the timed ones: the LINQ's command under EXPLAIN ANALYZE, for the time inside the server.
        var server = new Latency();
        foreach (var query in queries)
        {
            server.Add(await ServerTimeAsync(db, query, cancellationToken));
            task.Increment(1);
        }

        return new AnnResult(index, setting, value, recall[0] / queries.Count, latency[0].Qps, latency[0].P50, latency[0].P95,
            recall[1] / queries.Count, latency[1].P50, latency[1].P95, server.P50, server.P95);
    }
}
