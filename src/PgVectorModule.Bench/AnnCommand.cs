using System.Diagnostics;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench;

/// <summary>
/// ann: approximate nearest neighbours against the exact answer, on reproducible clustered vectors in schema
/// bench_ann. Every query goes through <see cref="VectorSearch.Nearest"/>, the LINQ the lessons use.
/// </summary>
public static class AnnCommand
{
    public const string Schema = "bench_ann";
    private const int Dimensions = 384;
    private const int K = 10;
    private static readonly int[] EfSearch = [10, 20, 40, 80, 160, 320];
    private static readonly int[] Probes = [1, 2, 4, 8, 16, 32];

    public static async Task<int> RunAsync(BenchContext context, BenchArguments args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var rows = args.Int("rows", 100_000);
        var queryCount = args.Int("queries", 200);
        var seed = args.Int("seed", 42, min: 0);
        var clusters = args.Int("clusters", 100);
        var spread = double.Parse(args.Text("spread") ?? "2", System.Globalization.CultureInfo.InvariantCulture);
        var maintenanceWorkMem = args.Text("maintenance-work-mem") ?? "1GB";
        args.EnsureAllRead();
        var console = context.Console;

        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        var shape = new VectorStoreShape(Dimensions, IvfFlatLists: VectorStoreShape.ListsFor(rows));
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
        var machine = await BenchContext.MachineAsync(dataSource, cancellationToken);
        var generator = new SyntheticVectors(Dimensions, seed, clusters, spread);
        var marker = $"bench ann: {rows} rows, {Dimensions} dimensions, seed {seed}, {clusters} clusters, spread {spread.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        var queries = new List<Vector>();
        var points = new List<Vector>(rows);
        for (var i = 0; i < rows; i++)
        {
            points.Add(new Vector(generator.Next()));
        }

        for (var i = 0; i < queryCount; i++)
        {
            queries.Add(new Vector(generator.Next()));
        }

        console.MarkupLine($"{rows:N0} vectors x {Dimensions} (a mixture of {clusters} clusters, spread {spread}, seed {seed}), {queryCount} queries, top {K}.");
        var ddl = VectorStore.Ddl(db);
        IndexBuild? hnswBuild = null, ivfBuild = null;
        var exact = new List<int[]>();
        var exactLatency = new Latency();
        var results = new List<AnnResult>();

        await db.Database.OpenConnectionAsync(cancellationToken);
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

            var truth = progress.AddTask("exact top 10 (sequential scan)", maxValue: queryCount);
            await db.Database.ExecuteSqlRawAsync("SET enable_indexscan = off", cancellationToken);
            foreach (var query in queries)
            {
                var watch = Stopwatch.StartNew();
                var hits = await VectorSearch.Nearest(db, query, limit: K).ToListAsync(cancellationToken);
                exactLatency.Add(watch.Elapsed);
                exact.Add(hits.Select(h => h.Id).ToArray());
                truth.Increment(1);
            }

            await db.Database.ExecuteSqlRawAsync("RESET enable_indexscan", cancellationToken);

            var build = progress.AddTask("building HNSW (m 16, ef_construction 64)", maxValue: 1);
            hnswBuild = await IngestCommand.BuildIndexAsync(dataSource, VectorDocumentConfiguration.HnswIndex, "HNSW (m 16, ef_construction 64)",
                ddl.Indexes[VectorDocumentConfiguration.HnswIndex], maintenanceWorkMem, cancellationToken);
            build.Value = 1;
            foreach (var ef in EfSearch)
            {
                var task = progress.AddTask($"HNSW ef_search {ef}", maxValue: queryCount);
                results.Add(await SweepAsync(db, "HNSW", "ef_search", ef, $"SET hnsw.ef_search = {ef}", queries, exact, task, cancellationToken));
            }

            await db.Database.ExecuteSqlRawAsync($"DROP INDEX {VectorDocumentConfiguration.HnswIndex}", cancellationToken);
            build = progress.AddTask($"building IVFFlat (lists {shape.IvfFlatLists})", maxValue: 1);
            ivfBuild = await IngestCommand.BuildIndexAsync(dataSource, VectorDocumentConfiguration.IvfFlatIndex, $"IVFFlat (lists {shape.IvfFlatLists})",
                ddl.Indexes[VectorDocumentConfiguration.IvfFlatIndex], maintenanceWorkMem, cancellationToken);
            build.Value = 1;
            foreach (var probes in Probes)
            {
                var task = progress.AddTask($"IVFFlat probes {probes}", maxValue: queryCount);
                results.Add(await SweepAsync(db, "IVFFlat", "probes", probes, $"SET ivfflat.probes = {probes}", queries, exact, task, cancellationToken));
            }
        });

        // The cheapest HNSW setting that meets the target; IVFFlat's best trade: recall per millisecond.
        var cheapest = results.Where(r => r.Index == "HNSW" && r.RecallAt10 >= 0.95 && r.P50Ms <= 1.0).MinBy(r => r.Value);
        var bestIvf = results.Where(r => r.Index == "IVFFlat").MaxBy(r => r.RecallAt10 / r.P50Ms)!;
        var table = new Table().Title($"{rows:N0} x {Dimensions}, {queryCount} queries, recall@{K} against the exact top {K}")
            .AddColumns("index", "setting", "recall@10", "QPS", "p50 ms", "p95 ms");
        table.AddRow("exact scan", "enable_indexscan off", "1.000", exactLatency.Qps.ToString("N0"), exactLatency.P50.ToString("F2"), exactLatency.P95.ToString("F2"));
        foreach (var r in results)
        {
            var mark = r == cheapest || r == bestIvf ? "[green]*[/]" : "";
            table.AddRow(r.Index, $"{r.Setting} {r.Value}{mark}", r.RecallAt10.ToString("F3"), r.Qps.ToString("N0"), r.P50Ms.ToString("F2"), r.P95Ms.ToString("F2"));
        }

        console.Write(table);
        var cheapestRecall = results.Where(r => r.Index == "HNSW" && r.RecallAt10 >= 0.95).MinBy(r => r.Value);
        var verdict = cheapest is null
            ? "No HNSW setting reached recall@10 >= 0.95 at p50 <= 1 ms on this machine" + (cheapestRecall is null
                ? "; none reached recall@10 0.95 at all."
                : $"; the cheapest reaching recall@10 >= 0.95 is ef_search {cheapestRecall.Value} (recall {cheapestRecall.RecallAt10:F3}, p50 {cheapestRecall.P50Ms:F2} ms).")
            : $"Cheapest HNSW setting with recall@10 >= 0.95 at p50 <= 1 ms: ef_search {cheapest.Value} (recall {cheapest.RecallAt10:F3}, p50 {cheapest.P50Ms:F2} ms).";
        var ivfVerdict = $"IVFFlat's best recall per millisecond: probes {bestIvf.Value} (recall {bestIvf.RecallAt10:F3}, p50 {bestIvf.P50Ms:F2} ms).";
        console.MarkupLine(Markup.Escape(verdict));
        console.MarkupLine(Markup.Escape(ivfVerdict));

        var report = new AnnReport(rows, Dimensions, queryCount, seed, clusters, spread, K, maintenanceWorkMem, machine,
            new AnnExact(exactLatency.Qps, exactLatency.P50, exactLatency.P95), hnswBuild!, ivfBuild!, results,
            cheapest?.Value, bestIvf.Value, verdict, ivfVerdict);
        var svg = AnnChart.Render(results, $"recall@{K} vs p50 latency: {rows:N0} x {Dimensions}, {queryCount} queries", exactLatency.P50);
        Directory.CreateDirectory(context.OutputFolder);
        var chart = Path.Combine(context.OutputFolder, "ann.svg");
        await File.WriteAllTextAsync(chart, svg, cancellationToken);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "ann", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "ann", ["index", "setting", "value", "recall_at_10", "qps", "p50_ms", "p95_ms"],
                results.Select(r => (IReadOnlyList<object?>)[r.Index, r.Setting, r.Value, r.RecallAt10, r.Qps, r.P50Ms, r.P95Ms]), cancellationToken),
            chart);
        return 0;
    }

    private static async Task<AnnResult> SweepAsync(SearchDbContext db, string index, string setting, int value, string set,
        IReadOnlyList<Vector> queries, IReadOnlyList<int[]> exact, ProgressTask task, CancellationToken cancellationToken)
    {
        // A session setting on the context's one open connection: every query below runs with it.
        await db.Database.ExecuteSqlRawAsync(set, cancellationToken);
        foreach (var query in queries.Take(5))
        {
            await VectorSearch.Nearest(db, query, limit: K).ToListAsync(cancellationToken);
        }

        var latency = new Latency();
        double recall = 0;
        for (var i = 0; i < queries.Count; i++)
        {
            var watch = Stopwatch.StartNew();
            var hits = await VectorSearch.Nearest(db, queries[i], limit: K).ToListAsync(cancellationToken);
            latency.Add(watch.Elapsed);
            recall += RetrievalMetrics.Overlap(hits.Select(h => h.Id).ToArray(), exact[i]);
            task.Increment(1);
        }

        return new AnnResult(index, setting, value, recall / queries.Count, latency.Qps, latency.P50, latency.P95);
    }
}

public sealed record AnnResult(string Index, string Setting, int Value, double RecallAt10, double Qps, double P50Ms, double P95Ms);

public sealed record AnnExact(double Qps, double P50Ms, double P95Ms);

public sealed record AnnReport(int Rows, int Dimensions, int Queries, int Seed, int Clusters, double Spread, int K, string MaintenanceWorkMem, MachineInfo Machine,
    AnnExact Exact, IndexBuild Hnsw, IndexBuild IvfFlat, IReadOnlyList<AnnResult> Results, int? CheapestHnswEfSearch, int BestIvfFlatProbes,
    string HnswVerdict, string IvfFlatVerdict);
