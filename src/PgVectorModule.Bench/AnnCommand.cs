using System.CommandLine;
using System.Diagnostics;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench;

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
    private static readonly int[] EfSearch = [10, 20, 40, 80, 160, 320];
    private static readonly int[] Probes = [1, 2, 4, 8, 16, 32];

    internal static Command Definition() => new(Name,
        "recall@10, QPS, p50/p95 (LINQ, compiled and prepared, inside the server) of HNSW (ef_search) and IVFFlat (probes) against the exact top 10, " +
        "on a seeded mixture or on real embeddings: a file eval wrote (artifacts/cache/*.bin), texts one per line, or the installed .NET SDK's API " +
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
        BenchOptions.Text("--vectors", "FILE", "embeddings eval cached (artifacts/cache/*.bin)"),
        BenchOptions.Text("--texts", "FILE", "texts, one per line, embedded here"),
        BenchOptions.Flag("--sdk-docs", "the installed .NET SDK's API documentation, embedded here"),
        BenchOptions.Text("--cache", "DIR", "where embedded texts are kept", EmbeddedTexts.DefaultCacheFolder),
    };

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var vectorsFile = args.GetValue<string?>("--vectors");
        var textsFile = args.GetValue<string?>("--texts");
        var sdkDocs = args.GetValue<bool>("--sdk-docs");
        var cacheFolder = args.GetValue<string>("--cache")!;
        if ((vectorsFile is not null ? 1 : 0) + (textsFile is not null ? 1 : 0) + (sdkDocs ? 1 : 0) > 1)
        {
            throw new Configuration.SetupException("ann takes one source of vectors: --vectors FILE, --texts FILE or --sdk-docs (or none, for the seeded mixture).",
                Configuration.ExitCodes.InvalidInput);
        }

        var rows = args.GetValue<int>("--rows");
        var queryCount = args.GetValue<int>("--queries");
        var seed = args.GetValue<int>("--seed");
        var clusters = args.GetValue<int>("--clusters");
        var spread = args.GetValue<double>("--spread");
        var m = args.GetValue<int>("--m");
        var efConstruction = args.GetValue<int>("--ef-construction");
        var maintenanceWorkMem = args.GetValue<string>("--maintenance-work-mem")!;
        var console = context.Console;

        // Either a reproducible mixture, or real embeddings with queries held out of the table: from a file eval wrote,
        // or of texts (a file, one per line, or the SDK's own API documentation) embedded here, through the same cache.
        var (points, queries, source, marker) = vectorsFile is not null
            ? HoldOut(EmbeddingCache.ReadVectors(vectorsFile, Dimensions), $"embeddings from {Path.GetFileName(vectorsFile)}", rows, queryCount, seed)
            : textsFile is not null || sdkDocs
                ? HoldOut((await EmbeddedTexts.LoadAsync(context, textsFile, cacheFolder, Dimensions, "ann", cancellationToken)).Vectors,
                    textsFile is null ? "embeddings of the .NET SDK's API documentation" : $"embeddings of {Path.GetFileName(textsFile)}", rows, queryCount, seed)
                : Synthetic(rows, queryCount, seed, clusters, spread);
        rows = points.Count;

        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        var shape = new VectorStoreShape(Dimensions, IvfFlatLists: VectorStoreShape.ListsFor(rows), HnswM: m, HnswEfConstruction: efConstruction);
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
        var machine = await BenchContext.MachineAsync(dataSource, cancellationToken);
        // The hot path beside the lessons' LINQ: the compiled query on a connection that prepares its statements.
        await using var preparingSource = await context.OpenSchemaAsync(Schema, cancellationToken, maxAutoPrepare: 8);
        await using var hotDb = BenchContext.NewDbContext(preparingSource, shape);
        var hnswName = $"HNSW (m {m}, ef_construction {efConstruction})";

        console.MarkupLine(Markup.Escape($"{rows:N0} vectors x {Dimensions} ({source}), {queries.Count} queries, top {K}."));
        var ddl = VectorStore.Ddl(db);
        IndexBuild? hnswBuild = null, ivfBuild = null;
        var exact = new List<int[]>();
        var exactLatency = new Latency();
        var exactServer = new Latency();
        var results = new List<AnnResult>();

        await db.Database.OpenConnectionAsync(cancellationToken);
        await hotDb.Database.OpenConnectionAsync(cancellationToken);
        await context.Progress().StartAsync(async progress =>
        {
            // The same rows as last time (the table's comment says which) are not loaded again.
            var stored = await IngestCommand.ScalarAsync<string>(dataSource,
                $"SELECT coalesce(obj_description(to_regclass('{VectorDocumentConfiguration.TableName}'), 'pg_class'), '')", cancellationToken);
            var load = progress.AddTask(stored == marker ? "vectors already loaded" : "COPY vectors", maxValue: 1);
            if (stored != marker)
            {
                await VectorStore.RecreateTablesAsync(db, cancellationToken);
                var documents = Enumerable.Range(0, rows).Select(i => new CorpusDocument($"v{i}", "", "ann")).ToList();
                await VectorStore.CopyAsync(dataSource, documents, points, cancellationToken);
                // The marker is built from numbers only, so writing it into the statement is safe.
                var comment = $"COMMENT ON TABLE {VectorDocumentConfiguration.TableName} IS '{marker}'";
                await db.Database.ExecuteSqlRawAsync(comment, cancellationToken);
            }

            foreach (var index in new[] { VectorDocumentConfiguration.HnswIndex, VectorDocumentConfiguration.IvfFlatIndex })
            {
                var drop = "DROP INDEX IF EXISTS " + index;
                await db.Database.ExecuteSqlRawAsync(drop, cancellationToken);
            }

            await db.Database.ExecuteSqlRawAsync($"VACUUM ANALYZE {VectorDocumentConfiguration.TableName}", cancellationToken);
            load.Value = 1;

            var truth = progress.AddTask("exact top 10 (sequential scan)", maxValue: queries.Count * 2);
            await db.Database.ExecuteSqlRawAsync("SET enable_indexscan = off", cancellationToken);
            foreach (var query in queries)
            {
                var watch = Stopwatch.StartNew();
                var hits = await VectorSearch.Nearest(db, query, limit: K).ToListAsync(cancellationToken);
                exactLatency.Add(watch.Elapsed);
                exact.Add(hits.Select(h => h.Id).ToArray());
                truth.Increment(1);
            }

            foreach (var query in queries)
            {
                exactServer.Add(await ServerTimeAsync(db, query, cancellationToken));
                truth.Increment(1);
            }

            await db.Database.ExecuteSqlRawAsync("RESET enable_indexscan", cancellationToken);

            var build = progress.AddTask($"building {hnswName}", maxValue: 1);
            hnswBuild = await IngestCommand.BuildIndexAsync(dataSource, VectorDocumentConfiguration.HnswIndex, hnswName,
                ddl.Indexes[VectorDocumentConfiguration.HnswIndex], maintenanceWorkMem, cancellationToken);
            build.Value = 1;
            foreach (var ef in EfSearch)
            {
                var task = progress.AddTask($"HNSW ef_search {ef}", maxValue: queries.Count * 3);
                results.Add(await SweepAsync(db, hotDb, "HNSW", "ef_search", ef, $"SET hnsw.ef_search = {ef}", queries, exact, task, cancellationToken));
            }

            await db.Database.ExecuteSqlRawAsync($"DROP INDEX {VectorDocumentConfiguration.HnswIndex}", cancellationToken);
            build = progress.AddTask($"building IVFFlat (lists {shape.IvfFlatLists})", maxValue: 1);
            ivfBuild = await IngestCommand.BuildIndexAsync(dataSource, VectorDocumentConfiguration.IvfFlatIndex, $"IVFFlat (lists {shape.IvfFlatLists})",
                ddl.Indexes[VectorDocumentConfiguration.IvfFlatIndex], maintenanceWorkMem, cancellationToken);
            build.Value = 1;
            foreach (var probes in Probes)
            {
                var task = progress.AddTask($"IVFFlat probes {probes}", maxValue: queries.Count * 3);
                results.Add(await SweepAsync(db, hotDb, "IVFFlat", "probes", probes, $"SET ivfflat.probes = {probes}", queries, exact, task, cancellationToken));
            }
        });

        // The cheapest HNSW setting that meets the target; IVFFlat's best trade: recall per millisecond.
        var hnsw = results.Where(r => r.Index == "HNSW").ToList();
        var cheapest = CheapestMeetingTarget(hnsw);
        var bestIvf = results.Where(r => r.Index == "IVFFlat").MaxBy(r => r.RecallAt10 / r.P50Ms)!;
        var table = new Table().Title(Markup.Escape($"{rows:N0} x {Dimensions} ({source}), {queries.Count} queries, recall@{K} against the exact top {K}"))
            .AddColumns("index", "setting", "recall@10", "QPS", "LINQ p50", "LINQ p95", "compiled p50", "compiled p95", "server p50", "server p95");
        table.AddRow("exact scan", "enable_indexscan off", "1.000", exactLatency.Qps.ToString("N0"), exactLatency.P50.ToString("F2"), exactLatency.P95.ToString("F2"),
            "", "", exactServer.P50.ToString("F2"), exactServer.P95.ToString("F2"));
        foreach (var r in results)
        {
            var mark = r == cheapest || r == bestIvf ? "[green]*[/]" : "";
            // The two paths send the same SQL; a recall that differed would mean a different plan, so it is shown.
            var recall = Math.Abs(r.RecallAt10 - r.HotRecallAt10) < 1e-9 ? r.RecallAt10.ToString("F3") : $"{r.RecallAt10:F3} / {r.HotRecallAt10:F3}";
            table.AddRow(r.Index, $"{r.Setting} {r.Value}{mark}", recall, r.Qps.ToString("N0"), r.P50Ms.ToString("F2"), r.P95Ms.ToString("F2"),
                r.HotP50Ms.ToString("F2"), r.HotP95Ms.ToString("F2"), r.ServerP50Ms.ToString("F2"), r.ServerP95Ms.ToString("F2"));
        }

        console.Write(table);
        console.MarkupLine("[grey]Milliseconds. LINQ: the lessons' VectorSearch.Nearest, timed in .NET, round trip included. compiled: VectorSearch.NearestCosineCompiled on a connection " +
            "with prepared statements (Max Auto Prepare), the same SQL. server: the LINQ's command under EXPLAIN (ANALYZE, TIMING OFF), planning plus execution inside PostgreSQL.[/]");
        var verdicts = Verdicts(hnsw, bestIvf);
        foreach (var line in verdicts)
        {
            console.MarkupLine(Markup.Escape(line));
        }

        var report = new AnnReport(rows, Dimensions, queries.Count, seed, source, K, m, efConstruction, maintenanceWorkMem, machine,
            new AnnExact(exactLatency.Qps, exactLatency.P50, exactLatency.P95, exactServer.P50, exactServer.P95), hnswBuild!, ivfBuild!, results,
            cheapest?.Value, bestIvf.Value, verdicts);
        var svg = AnnChart.Render(results, $"recall@{K} vs p50 latency: {rows:N0} x {Dimensions}, {queries.Count} queries", exactLatency.P50,
            $"{source}; {hnswName}, IVFFlat lists {shape.IvfFlatLists}");
        Directory.CreateDirectory(context.OutputFolder);
        var chart = Path.Combine(context.OutputFolder, "ann.svg");
        await File.WriteAllTextAsync(chart, svg, cancellationToken);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "ann", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "ann",
                ["index", "setting", "value", "recall_at_10", "qps", "p50_ms", "p95_ms", "compiled_recall_at_10", "compiled_p50_ms", "compiled_p95_ms", "server_p50_ms", "server_p95_ms"],
                results.Select(r => (IReadOnlyList<object?>)[r.Index, r.Setting, r.Value, r.RecallAt10, r.Qps, r.P50Ms, r.P95Ms, r.HotRecallAt10, r.HotP50Ms, r.HotP95Ms, r.ServerP50Ms, r.ServerP95Ms]), cancellationToken),
            chart);
        return 0;
    }

    /// <summary>The target: recall@10 of at least this at a p50 of at most <see cref="TargetP50Ms"/>, on either .NET path.</summary>
    internal const double TargetRecall = 0.95;
    internal const double TargetP50Ms = 1.0;

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
        var lines = new List<string>
        {
            cheapest is not null
                ? $"Cheapest HNSW setting with recall@10 >= 0.95 at p50 <= 1 ms: ef_search {cheapest.Value} ({Figures(cheapest)})."
                : "No HNSW setting reached recall@10 >= 0.95 at p50 <= 1 ms" + (reaching.Count == 0
                    ? "; none reached recall@10 0.95 at all."
                    : $"; the cheapest reaching recall@10 >= 0.95 is ef_search {reaching[0].Value} ({Figures(reaching[0])})."),
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

    private static (List<Vector> Points, List<Vector> Queries, string Source, string Marker) Synthetic(int rows, int queryCount, int seed, int clusters, double spread)
    {
        var generator = new SyntheticVectors(Dimensions, seed, clusters, spread);
        var points = Enumerable.Range(0, rows).Select(_ => new Vector(generator.Next())).ToList();
        var queries = Enumerable.Range(0, queryCount).Select(_ => new Vector(generator.Next())).ToList();
        var spreadText = spread.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return (points, queries, $"a mixture of {clusters} clusters, spread {spreadText}, seed {seed}",
            $"bench ann: {rows} rows, {Dimensions} dimensions, seed {seed}, {clusters} clusters, spread {spreadText}");
    }

    /// <summary>
    /// Real embeddings shuffled by the seed; the first Q become queries and are kept out of the table, as ANN
    /// benchmarks hold out theirs; the next N (at most) are the table.
    /// </summary>
    private static (List<Vector> Points, List<Vector> Queries, string Source, string Marker) HoldOut(IReadOnlyList<float[]> vectors, string source,
        int rows, int queryCount, int seed)
    {
        if (vectors.Count <= queryCount)
        {
            throw new Configuration.SetupException($"There are {vectors.Count} vectors from {source}; ann needs more than --queries {queryCount}. Give it more, or pass fewer --queries.",
                Configuration.ExitCodes.InvalidInput);
        }

        var random = new Random(seed);
        var order = Enumerable.Range(0, vectors.Count).ToArray();
        random.Shuffle(order);
        var queries = order.Take(queryCount).Select(i => new Vector(vectors[i])).ToList();
        var points = order.Skip(queryCount).Take(rows).Select(i => new Vector(vectors[i])).ToList();
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var vector in vectors)
        {
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan()));
        }

        var digest = Convert.ToHexString(hash.GetHashAndReset())[..16];
        return (points, queries, $"{source}, {queryCount} held out as queries, seed {seed}",
            $"bench ann: {points.Count} rows, {Dimensions} dimensions, seed {seed}, vectors sha256 {digest}");
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

/// <param name="P50Ms">The lessons' LINQ (<see cref="VectorSearch.Nearest"/>), timed in .NET, round trip included.</param>
/// <param name="HotP50Ms">The compiled query (<see cref="VectorSearch.NearestCosineCompiled"/>) on a connection with prepared statements.</param>
/// <param name="ServerP50Ms">Planning plus execution inside PostgreSQL (EXPLAIN ANALYZE of the LINQ's command).</param>
public sealed record AnnResult(string Index, string Setting, int Value, double RecallAt10, double Qps, double P50Ms, double P95Ms,
    double HotRecallAt10, double HotP50Ms, double HotP95Ms, double ServerP50Ms, double ServerP95Ms)
{
    /// <summary>The faster of the two .NET paths.</summary>
    public double BestP50Ms => Math.Min(P50Ms, HotP50Ms);

    /// <summary>The lower of the two paths' recall (they send the same SQL, so they should agree).</summary>
    public double WorstRecallAt10 => Math.Min(RecallAt10, HotRecallAt10);
}

public sealed record AnnExact(double Qps, double P50Ms, double P95Ms, double ServerP50Ms, double ServerP95Ms);

public sealed record AnnReport(int Rows, int Dimensions, int Queries, int Seed, string Vectors, int K, int HnswM, int HnswEfConstruction, string MaintenanceWorkMem,
    MachineInfo Machine, AnnExact Exact, IndexBuild Hnsw, IndexBuild IvfFlat, IReadOnlyList<AnnResult> Results, int? CheapestHnswEfSearch, int BestIvfFlatProbes,
    IReadOnlyList<string> Verdicts);
