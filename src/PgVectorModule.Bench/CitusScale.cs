using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Citus;
using PgVectorModule.Configuration;
using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench;

/// <summary>
/// scale --citus: the same passages on one server and on a Citus cluster (a coordinator and two workers on this
/// machine, or CITUS_URL's), distributed by tenant: p50/p95 of vector and hybrid (RRF, global BM25 statistics) search,
/// routed to one tenant and fanned out over all, at two sizes so the growth shows. Both run on the coordinator's
/// PostgreSQL: the single server is a plain table there. With --dataset, also nDCG@10 of BM25 and RRF with per-tenant
/// and with global statistics on a BEIR dataset, against the single server's.
/// </summary>
public static partial class CitusScale
{
    public const string Schema = "bench_citus";
    public const string SingleSchema = "bench_citus_single";
    private const int Limit = 10;

    internal static IEnumerable<Option> Options() =>
    [
        BenchOptions.Flag("--citus", "the same searches on a Citus cluster too, routed to one tenant and fanned out over all (CITUS_URL, or a cluster the bench starts)"),
        BenchOptions.Count("--from-rows", 10_000, "with --citus: the smaller of the two sizes measured (the larger is --rows)"),
        BenchOptions.Count("--tenants", 100, "with --citus: tenants the passages are spread over (passage i belongs to tenant 1 + i mod N)"),
        BenchOptions.Text("--dataset", "DIR", "with --citus: a BEIR folder to score per-tenant against global BM25 statistics on (nDCG@10)"),
        BenchOptions.Text("--qrels", "FILE", "with --dataset: the judgments (default: the folder's test split)"),
    ];

    /// <param name="given">CITUS_URL's coordinator, checked by <see cref="GivenCoordinatorAsync"/>; null: the bench starts a cluster.</param>
    /// <param name="dataset">--dataset's folder, read by <see cref="ReadDataset"/> before any work; null: no quality table.</param>
    public static async Task<int> RunAsync(BenchContext context, ParseResult args, NpgsqlConnectionStringBuilder? given, BeirDataset? dataset, IReadOnlyList<string> allTexts,
        IReadOnlyList<float[]> allVectors, int rows, int queryCount, int seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(allTexts);
        ArgumentNullException.ThrowIfNull(allVectors);
        var tenants = args.GetValue<int>("--tenants");
        var fromRows = args.GetValue<int>("--from-rows");
        var console = context.Console;

        // Without CITUS_URL's cluster the bench starts its own, and stops it whatever ends the run.
        await using var cluster = given is null ? await StartClusterAsync(context, cancellationToken) : null;
        var coordinator = given ?? cluster!.ConnectionString();
        coordinator.CommandTimeout = 0;
        await using var citus = DistributedSearch.CoordinatorSource(coordinator, Schema);
        await using var single = ModuleDataSource.Create(new NpgsqlConnectionStringBuilder(coordinator.ConnectionString) { CommandTimeout = 0 }, SingleSchema);
        await ExecuteAsync(single, $"CREATE SCHEMA IF NOT EXISTS {SingleSchema}; CREATE SCHEMA IF NOT EXISTS {Schema}; CREATE EXTENSION IF NOT EXISTS vector", cancellationToken);
        await citus.ReloadTypesAsync(cancellationToken);
        await single.ReloadTypesAsync(cancellationToken);
        var machine = await BenchContext.MachineAsync(single, cancellationToken);
        var workers = await BenchContext.ScalarAsync<long>(citus, "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0", cancellationToken);

        var total = Math.Min(rows, allTexts.Count);
        var sizes = new[] { Math.Min(fromRows, total), total }.Distinct().ToList();
        var random = new Random(seed);
        var drawn = Enumerable.Range(0, queryCount).Select(_ => random.Next(sizes[0])).ToList();
        var queryTexts = drawn.Select(i => string.Join(' ', allTexts[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(6))).ToList();
        var queryTenants = drawn.Select(i => TenantOf(i, tenants)).ToList();
        using var embedder = TextEmbedder.Create(context.Settings.Embeddings);
        var queryVectors = await embedder.EmbedManyAsync(queryTexts.Select(embedder.QueryText).ToList(), progress: null, cancellationToken);

        var results = new List<CitusScaleResult>();
        foreach (var size in sizes)
        {
            var documents = allTexts.Take(size).Select((t, i) => new CorpusDocument($"passage {i}", t, $"tenant-{TenantOf(i, tenants)}")).ToList();
            var vectors = allVectors.Take(size).Select(v => new Vector(v)).ToList();
            var load = Stopwatch.StartNew();
            await context.Progress().StartAsync(async progress =>
            {
                var task = progress.AddTask($"{size:N0} passages into one server's tables and the Citus tables", maxValue: 2);
                await LoadSingleAsync(single, documents, vectors, embedder.Dimensions, cancellationToken);
                task.Value = 1;
                await LoadDistributedAsync(citus, documents, vectors, tenants, embedder.Dimensions, shardCount: null, cancellationToken);
                task.Value = 2;
            });
            console.MarkupLine(Markup.Escape($"{size:N0} passages of {tenants} tenants loaded and indexed twice in {load.Elapsed.TotalSeconds:N0} s ({workers} workers)."));

            var options = HybridOptions.Default;
            var methods = new List<(string Name, string Where, Func<int, Task<int>> Run, Func<Task<string>> Plan)>
            {
                ("vector, all tenants", "one server", async i => await CountAsync(single, SingleVector(false), null, queryVectors[i], null, cancellationToken),
                    () => PlanAsync(single, SingleVector(false), queryVectors[0], null, cancellationToken)),
                ("vector, one tenant", "one server", async i => await CountAsync(single, SingleVector(true), null, queryVectors[i], $"tenant-{queryTenants[i]}", cancellationToken),
                    () => PlanAsync(single, SingleVector(true), queryVectors[0], $"tenant-{queryTenants[0]}", cancellationToken)),
                ("hybrid RRF, all tenants", "one server", async i => (await HybridSearch.ReciprocalRankFusionAsync(single, queryTexts[i], queryVectors[i], Limit, options: options, cancellationToken: cancellationToken)).Count,
                    async () => QueryPlan.Summary(await HybridSearch.ExplainAsync(single, SearchMethod.ReciprocalRankFusion, queryTexts[0], queryVectors[0], Limit, options: options, cancellationToken: cancellationToken))),
                ("hybrid RRF, one tenant", "one server", async i => (await HybridSearch.ReciprocalRankFusionAsync(single, queryTexts[i], queryVectors[i], Limit, $"tenant-{queryTenants[i]}", options, cancellationToken)).Count,
                    async () => QueryPlan.Summary(await HybridSearch.ExplainAsync(single, SearchMethod.ReciprocalRankFusion, queryTexts[0], queryVectors[0], Limit, $"tenant-{queryTenants[0]}", options, cancellationToken: cancellationToken))),
                ("vector, all tenants", "Citus", async i => (await DistributedSearch.SearchAsync(citus, DistributedSearch.Vector(false), null, queryVectors[i], null, Limit, options, cancellationToken)).Count,
                    () => TasksAsync(citus, DistributedSearch.Vector(false), null, queryVectors[0], null, options, cancellationToken)),
                ("vector, one tenant", "Citus", async i => (await DistributedSearch.SearchAsync(citus, DistributedSearch.Vector(true), null, queryVectors[i], queryTenants[i], Limit, options, cancellationToken)).Count,
                    () => TasksAsync(citus, DistributedSearch.Vector(true), null, queryVectors[0], queryTenants[0], options, cancellationToken)),
                ("hybrid RRF, all tenants", "Citus", async i => (await DistributedSearch.SearchAsync(citus, DistributedSearch.ReciprocalRankFusion(Bm25Statistics.Global, false), queryTexts[i], queryVectors[i], null, Limit, options, cancellationToken)).Count,
                    () => TasksAsync(citus, DistributedSearch.ReciprocalRankFusion(Bm25Statistics.Global, false), queryTexts[0], queryVectors[0], null, options, cancellationToken)),
                ("hybrid RRF, one tenant", "Citus", async i => (await DistributedSearch.SearchAsync(citus, DistributedSearch.ReciprocalRankFusion(Bm25Statistics.Global, true), queryTexts[i], queryVectors[i], queryTenants[i], Limit, options, cancellationToken)).Count,
                    () => TasksAsync(citus, DistributedSearch.ReciprocalRankFusion(Bm25Statistics.Global, true), queryTexts[0], queryVectors[0], queryTenants[0], options, cancellationToken)),
            };

            await context.Progress().StartAsync(async progress =>
            {
                foreach (var (name, where, run, plan) in methods)
                {
                    var task = progress.AddTask($"{where}: {name} ({size:N0})", maxValue: queryCount);
                    var summary = await plan();
                    var (latency, returned) = await Latency.TimeAsync(queryCount, run, () => task.Increment(1));

                    results.Add(new CitusScaleResult(size, where, name, latency.P50, latency.P95, (double)returned / queryCount, summary));
                }
            });
        }

        var table = new Table().Title(Markup.Escape($"p50/p95 over {queryCount} queries, top {Limit}, {tenants} tenants, {workers} Citus workers"))
            .AddColumns("passages", "where", "method", "p50 ms", "p95 ms", "rows", "plan");
        foreach (var r in results)
        {
            table.AddRow(r.Passages.ToString("N0", CultureInfo.InvariantCulture), r.Where, Markup.Escape(r.Method), r.P50Ms.ToString("F2", CultureInfo.InvariantCulture),
                r.P95Ms.ToString("F2", CultureInfo.InvariantCulture), r.RowsReturned.ToString("F1", CultureInfo.InvariantCulture), Markup.Escape(r.Plan));
        }

        console.Write(table);
        if (sizes.Count == 2)
        {
            var growth = new Table().Title(Markup.Escape($"p50 growth from {sizes[0]:N0} to {sizes[1]:N0} passages")).AddColumns("where", "method", $"p50 at {sizes[0]:N0}", $"p50 at {sizes[1]:N0}", "times");
            foreach (var small in results.Where(r => r.Passages == sizes[0]))
            {
                var large = results.Single(r => r.Passages == sizes[1] && r.Where == small.Where && r.Method == small.Method);
                growth.AddRow(small.Where, Markup.Escape(small.Method), small.P50Ms.ToString("F2", CultureInfo.InvariantCulture), large.P50Ms.ToString("F2", CultureInfo.InvariantCulture),
                    (large.P50Ms / small.P50Ms).ToString("F1", CultureInfo.InvariantCulture));
            }

            console.Write(growth);
        }

        IReadOnlyList<CitusQualityResult> quality = [];
        if (dataset is not null)
        {
            quality = await QualityAsync(context, citus, single, embedder, dataset, tenants, cancellationToken);
        }

        var report = new CitusScaleReport(sizes, tenants, queryCount, (int)workers, machine, results, quality);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "scale-citus", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "scale-citus", ["passages", "where", "method", "p50_ms", "p95_ms", "rows_returned", "plan"],
                results.Select(r => (IReadOnlyList<object?>)[r.Passages, r.Where, r.Method, r.P50Ms, r.P95Ms, r.RowsReturned, r.Plan]), cancellationToken));
        return 0;
    }

    /// <summary>--dataset (and --qrels), read whole before any work: a missing file stops the run at once, in one sentence.</summary>
    public static BeirDataset? ReadDataset(ParseResult args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.GetValue<string?>("--dataset") is { } folder ? BeirDataset.Read(folder, args.GetValue<string?>("--qrels")) : null;
    }

    public static int TenantOf(int index, int tenants) => 1 + (index % tenants);

    /// <summary>A coordinator and two workers the bench starts (and stops when it ends, however it ends).</summary>
    private static async Task<CitusCluster> StartClusterAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var installation = await CitusInstallation.FindAsync(context.Settings.Operations, cancellationToken)
            ?? throw new SetupException(CitusInstallation.HowToGetIt + " scale --citus needs it (or CITUS_URL).", ExitCodes.ToolMissing);
        context.Console.MarkupLine(Markup.Escape($"starting a Citus coordinator and two workers with {installation.Version} ({installation.BinDirectory})"));
        return await CitusCluster.StartAsync(installation, "bench", 2, cancellationToken);
    }

    /// <summary>CITUS_URL, when set: it must parse, answer, and be a Citus coordinator with an active worker. Checked before any work.</summary>
    public static async Task<NpgsqlConnectionStringBuilder?> GivenCoordinatorAsync(string? url, CancellationToken cancellationToken)
    {
        if (url is null)
        {
            return null;
        }

        NpgsqlConnectionStringBuilder citus;
        try
        {
            citus = Configuration.DatabaseUrl.Parse(url);
        }
        catch (SetupException e)
        {
            throw new SetupException(e.Message.Replace("DATABASE_URL", "CITUS_URL", StringComparison.Ordinal), ExitCodes.InvalidInput);
        }

        var where = $"CITUS_URL ({citus.Host}:{citus.Port})";
        var quick = new NpgsqlConnectionStringBuilder(citus.ConnectionString) { Timeout = Math.Min(citus.Timeout, 5), Pooling = false };
        long workers;
        try
        {
            await using var connection = new NpgsqlConnection(quick.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand(
                "SELECT CASE WHEN EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN (SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive) ELSE -1 END",
                connection);
            workers = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        }
        catch (NpgsqlException e) when (e is not PostgresException)
        {
            throw new SetupException($"{where} does not answer ({e.Message.Split('\n')[0].TrimEnd('.')}): start it with scripts/db.sh citus up, or unset CITUS_URL and the bench starts a cluster of its own.", ExitCodes.DatabaseUnavailable, e);
        }

        return workers switch
        {
            < 0 => throw new SetupException($"{where} answers but is not a Citus coordinator (no citus extension in database {citus.Database}): point it at the coordinator scripts/db.sh citus up prints, or unset it.", ExitCodes.InvalidInput),
            0 => throw new SetupException($"{where} is a Citus coordinator without an active worker: add one with citus_add_node, or unset CITUS_URL.", ExitCodes.InvalidInput),
            _ => citus,
        };
    }

    private static string SingleVector(bool oneTenant) => $"""
        SELECT id FROM vector_documents
        WHERE {(oneTenant ? "source = @source" : "true")}
        ORDER BY embedding <=> @embedding
        LIMIT {Limit}
        """;

    private static async Task LoadSingleAsync(NpgsqlDataSource single, IReadOnlyList<CorpusDocument> documents, IReadOnlyList<Vector> vectors, int dimensions, CancellationToken cancellationToken)
    {
        await using var db = BenchContext.NewDbContext(single, new VectorStoreShape(dimensions));
        await VectorStore.RecreateTablesAsync(db, cancellationToken);
        await VectorStore.CopyAsync(single, documents, vectors, cancellationToken);
        await db.Database.ExecuteSqlRawAsync("SET maintenance_work_mem = '1GB'", cancellationToken);
        await VectorStore.BuildIndexesAsync(db, VectorStore.Ddl(db).Indexes.Keys.Where(n => n != VectorDocumentConfiguration.IvfFlatIndex), cancellationToken);
    }

    /// <summary>The passages distributed by tenant (passage i is tenant 1 + i mod N), their postings, the indexes and the global counts.</summary>
    public static async Task LoadDistributedAsync(NpgsqlDataSource citus, IReadOnlyList<CorpusDocument> documents, IReadOnlyList<Vector> vectors, int tenants,
        int dimensions, int? shardCount, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(vectors);
        foreach (var statement in DistributedSearch.CreateStatements(dimensions, shardCount))
        {
            await ExecuteAsync(citus, statement, cancellationToken);
        }

        await using (var connection = await citus.OpenConnectionAsync(cancellationToken))
        await using (var writer = await connection.BeginBinaryImportAsync(DistributedSearch.CopyCommand, cancellationToken))
        {
            for (var i = 0; i < documents.Count; i++)
            {
                await writer.WriteRowAsync(cancellationToken, TenantOf(i, tenants), (long)i, documents[i].Title, documents[i].Content, vectors[i]);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        foreach (var statement in DistributedSearch.IndexStatements)
        {
            await ExecuteAsync(citus, statement, cancellationToken);
        }
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<int> CountAsync(NpgsqlDataSource single, string sql, string? query, Vector embedding, string? source, CancellationToken cancellationToken)
    {
        await using var connection = await single.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        // Under a filter the HNSW scan goes on past the rows it drops (an iterative scan), as the library's filtered legs do.
        foreach (var setting in HybridSearch.VectorLegSettings(Limit, filtered: source is not null))
        {
            batch.BatchCommands.Add(setting);
        }

        var search = new NpgsqlBatchCommand(sql);
        search.Parameters.AddWithValue("embedding", embedding);
        search.Parameters.AddWithValue("source", (object?)source ?? DBNull.Value);
        search.Parameters.AddWithValue("query", query ?? "");
        batch.BatchCommands.Add(search);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        // The settings' results first, the search's last: its rows are the ones counted.
        var count = 0;
        do
        {
            count = 0;
            while (await reader.ReadAsync(cancellationToken))
            {
                count++;
            }
        }
        while (await reader.NextResultAsync(cancellationToken));

        return count;
    }

    private static async Task<string> PlanAsync(NpgsqlDataSource single, string sql, Vector embedding, string? source, CancellationToken cancellationToken)
    {
        await using var connection = await single.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (source is not null)
        {
            await using var set = new NpgsqlCommand("SET LOCAL hnsw.iterative_scan = relaxed_order", connection, transaction);
            await set.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var explain = new NpgsqlCommand("EXPLAIN (COSTS OFF) " + sql, connection, transaction);
        explain.Parameters.AddWithValue("embedding", embedding);
        explain.Parameters.AddWithValue("source", (object?)source ?? DBNull.Value);
        var lines = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                lines.Add(reader.GetString(0));
            }
        }

        return QueryPlan.Summary(lines);
    }

    /// <summary>
    /// The tasks the coordinator sends and their access paths (citus.explain_all_tasks), counted: "32 tasks: 32 HNSW
    /// index scans". Hybrid search runs each leg as a subplan of its own, so its tasks are those of both legs.
    /// </summary>
    private static async Task<string> TasksAsync(NpgsqlDataSource citus, string sql, string? query, Vector embedding, int? tenant, HybridOptions options,
        CancellationToken cancellationToken)
    {
        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        await using (var set = new NpgsqlCommand("SET citus.explain_all_tasks = on", connection))
        {
            await set.ExecuteNonQueryAsync(cancellationToken);
        }

        // Literals, not parameters: Citus 14 fails an EXPLAIN of every task when the query has parameters.
        var literal = "'[" + string.Join(',', embedding.ToArray().Select(f => f.ToString("R", CultureInfo.InvariantCulture))) + "]'::vector";
        string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
        var text = sql.Replace("@embedding", literal, StringComparison.Ordinal).Replace("@limit", Limit.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@tenant", (tenant ?? 0).ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@query", "'" + (query ?? "").Replace("'", "''", StringComparison.Ordinal) + "'", StringComparison.Ordinal)
            .Replace("@candidates", options.Candidates.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@k1", Number(options.Bm25.K1), StringComparison.Ordinal).Replace("@b", Number(options.Bm25.B), StringComparison.Ordinal)
            .Replace("@k", Number(options.RrfK), StringComparison.Ordinal);
        var lines = new List<string>();
        await using (var explain = new NpgsqlCommand("EXPLAIN (COSTS OFF) " + text, connection))
        await using (var reader = await explain.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                lines.Add(reader.GetString(0).Trim());
            }
        }

        var tasks = lines.Count(l => l == "->  Task");
        var hnsw = lines.Count(l => l.Contains("Index Scan using passages_hnsw_", StringComparison.Ordinal));
        var other = lines.Where(l => l.Contains("Scan", StringComparison.Ordinal) && !l.Contains("Custom Scan", StringComparison.Ordinal) && !l.Contains("passages_hnsw_", StringComparison.Ordinal))
            .Select(l => ShardSuffix().Replace(l.Replace("->", "", StringComparison.Ordinal).Trim().Split(" on ")[0], "")).Distinct().ToList();
        return $"{tasks} task{(tasks == 1 ? "" : "s")}: {hnsw} HNSW index scan{(hnsw == 1 ? "" : "s")}{(other.Count > 0 ? "; also " + string.Join(", ", other) : "")}";
    }

    /// <summary>nDCG@10 of BM25 and RRF on a BEIR dataset: one server, Citus with per-tenant statistics, Citus with global ones.</summary>
    private static async Task<IReadOnlyList<CitusQualityResult>> QualityAsync(BenchContext context, NpgsqlDataSource citus, NpgsqlDataSource single, TextEmbedder embedder,
        BeirDataset dataset, int tenants, CancellationToken cancellationToken)
    {
        var console = context.Console;
        var queries = dataset.Queries.Where(q => dataset.Judgments.ContainsKey(q.Id)).ToList();
        var documents = dataset.Corpus.Select(d => new CorpusDocument(d.Title.Length > 255 ? d.Title[..255] : d.Title, d.Text, d.Id)).ToList();
        IReadOnlyList<float[]> corpusVectors = [];
        IReadOnlyList<float[]> queryVectors = [];
        await context.Progress().StartAsync(async progress =>
        {
            (corpusVectors, _) = await CachedEmbedder.EmbedAsync(embedder, documents.Select(d => d.TextToEmbed).ToList(), asQueries: false, progress.AddTask("embedding corpus", maxValue: documents.Count), cancellationToken);
            (queryVectors, _) = await CachedEmbedder.EmbedAsync(embedder, queries.Select(q => q.Text).ToList(), asQueries: true, progress.AddTask("embedding queries", maxValue: queries.Count), cancellationToken);
        });
        var vectors = corpusVectors.Select(v => new Vector(v)).ToList();
        await LoadSingleAsync(single, documents, vectors, embedder.Dimensions, cancellationToken);
        await LoadDistributedAsync(citus, documents, vectors, tenants, embedder.Dimensions, shardCount: null, cancellationToken);
        // The single server's ids are its own (identity, in load order); Citus's are the load order: both map to BEIR ids.
        var singleIds = new Dictionary<long, string>();
        await using (var command = single.CreateCommand("SELECT id, source FROM vector_documents"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                singleIds[reader.GetInt32(0)] = reader.GetString(1);
            }
        }

        var options = HybridOptions.Default;
        var methods = new List<(string Name, Func<int, Task<IReadOnlyList<string>>> Run)>
        {
            ("BM25, one server", async i => (await HybridSearch.KeywordAsync(single, queries[i].Text, Limit, cancellationToken: cancellationToken)).Select(h => singleIds[h.Id]).ToList()),
            ("BM25, Citus, per-tenant statistics", async i => Beir(await DistributedSearch.SearchAsync(citus, DistributedSearch.Bm25(Bm25Statistics.PerTenant, false, "@limit"), queries[i].Text, null, null, Limit, options, cancellationToken), documents)),
            ("BM25, Citus, global statistics", async i => Beir(await DistributedSearch.SearchAsync(citus, DistributedSearch.Bm25(Bm25Statistics.Global, false, "@limit"), queries[i].Text, null, null, Limit, options, cancellationToken), documents)),
            ("RRF hybrid, one server", async i => (await HybridSearch.ReciprocalRankFusionAsync(single, queries[i].Text, new Vector(queryVectors[i]), Limit, options: options, cancellationToken: cancellationToken)).Select(h => singleIds[h.Id]).ToList()),
            ("RRF hybrid, Citus, per-tenant statistics", async i => Beir(await DistributedSearch.SearchAsync(citus, DistributedSearch.ReciprocalRankFusion(Bm25Statistics.PerTenant, false), queries[i].Text, new Vector(queryVectors[i]), null, Limit, options, cancellationToken), documents)),
            ("RRF hybrid, Citus, global statistics", async i => Beir(await DistributedSearch.SearchAsync(citus, DistributedSearch.ReciprocalRankFusion(Bm25Statistics.Global, false), queries[i].Text, new Vector(queryVectors[i]), null, Limit, options, cancellationToken), documents)),
        };

        var results = new List<CitusQualityResult>();
        var rankings = new Dictionary<string, List<IReadOnlyList<string>>>();
        await context.Progress().StartAsync(async progress =>
        {
            foreach (var (name, run) in methods)
            {
                var task = progress.AddTask(name, maxValue: queries.Count);
                var ranked = new List<IReadOnlyList<string>>();
                for (var i = 0; i < queries.Count; i++)
                {
                    ranked.Add(await run(i));
                    task.Increment(1);
                }

                rankings[name] = ranked;
            }
        });

        foreach (var (name, ranked) in rankings)
        {
            var reference = rankings[name.StartsWith("BM25", StringComparison.Ordinal) ? "BM25, one server" : "RRF hybrid, one server"];
            var ndcg = queries.Select((q, i) => RetrievalMetrics.NdcgAt(Limit, ranked[i], dataset.Judgments[q.Id])).Average();
            var same = ranked.Where((r, i) => r.SequenceEqual(reference[i])).Count();
            results.Add(new CitusQualityResult(name, ndcg, same, queries.Count));
        }

        var table = new Table().Title(Markup.Escape($"{Path.GetFileName(Path.GetFullPath(dataset.Folder).TrimEnd(Path.DirectorySeparatorChar))}: {queries.Count} queries ({Path.GetFileName(dataset.QrelsFile)}), {documents.Count:N0} documents over {tenants} tenants"))
            .AddColumns("method", "nDCG@10", "top 10 as one server's");
        foreach (var r in results)
        {
            table.AddRow(Markup.Escape(r.Method), r.NdcgAt10.ToString("F3", CultureInfo.InvariantCulture), $"{r.SameAsOneServer} of {r.Queries}");
        }

        console.Write(table);
        return results;
    }

    /// <summary>A shard's number at the end of an index's name (term_statistics_pkey_102104): one name for every shard.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"_[0-9]+$")]
    private static partial System.Text.RegularExpressions.Regex ShardSuffix();

    private static List<string> Beir(IReadOnlyList<DistributedHit> hits, IReadOnlyList<CorpusDocument> documents) =>
        hits.Select(h => documents[(int)h.Id].Source).ToList();
}

public sealed record CitusScaleResult(int Passages, string Where, string Method, double P50Ms, double P95Ms, double RowsReturned, string Plan);

public sealed record CitusQualityResult(string Method, double NdcgAt10, int SameAsOneServer, int Queries);

public sealed record CitusScaleReport(IReadOnlyList<int> Sizes, int Tenants, int Queries, int Workers, MachineInfo Machine,
    IReadOnlyList<CitusScaleResult> Methods, IReadOnlyList<CitusQualityResult> Quality);
