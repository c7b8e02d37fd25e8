using System.CommandLine;
using System.Diagnostics;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Embeddings;
using PgVectorModule.Input;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench.Evaluation;

/// <summary>
/// eval: retrieval quality and latency of the lessons' search methods on a BEIR dataset, through the library's SQL.
/// The corpus goes into schema bench_eval with each document's BEIR id in the source column.
/// </summary>
public static class EvalCommand
{
    public const string Name = "eval";
    public const string Schema = "bench_eval";

    /// <summary>
    /// BM25's nDCG@10 as the BEIR paper publishes it (Thakur et al. 2021, Table 2, Elasticsearch BM25, test splits), by the
    /// dataset folder's name: printed beside a dataset's own figures only, since each is that dataset's alone.
    /// </summary>
    public static IReadOnlyDictionary<string, double> PublishedBm25 { get; } = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase)
    {
        ["scifact"] = 0.665,
        ["nfcorpus"] = 0.325,
        ["trec-covid"] = 0.656,
        ["fiqa"] = 0.236,
        ["arguana"] = 0.315,
        ["scidocs"] = 0.158,
        ["quora"] = 0.789,
        ["nq"] = 0.329,
        ["hotpotqa"] = 0.603,
        ["dbpedia-entity"] = 0.313,
        ["fever"] = 0.753,
        ["climate-fever"] = 0.213,
        ["webis-touche2020"] = 0.367,
    };

    /// <summary>Recall@100 needs 100 results, so every method returns 100 and each fusion takes 100 candidates a side.</summary>
    public const int Depth = 100;

    internal static Command Definition() => new(Name,
        "retrieval quality (nDCG@10, Recall@100, MRR@10) and latency of keyword, vector and hybrid search on a BEIR folder; " +
        "--sweep also scores BM25's k1 and b and both fusions' settings over a grid")
    {
        BenchOptions.Text("--dataset", "DIR", "a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv)"),
        BenchOptions.Text("--qrels", "FILE", "the judgments to score against (default: the folder's test split)"),
        BenchOptions.Count("--limit-queries", int.MaxValue, "score at most this many judged queries"),
        BenchOptions.Number("--vector-weight", HybridOptions.DefaultVectorWeight, "the weighted fusion's vector weight"),
        BenchOptions.Text("--cache", "DIR", EmbeddedTexts.CacheHelp),
        BenchOptions.Count("--throughput-sample", 256, "texts embedded again, uncached, to measure the model's throughput (0: none)", min: 0),
        BenchOptions.Flag("--sweep", "also score BM25's k1 and b and both fusions' settings over a grid"),
    };

    /// <summary>The part of the embedding cache a dataset's vectors go to: eval- and the dataset folder's name (eval-scifact).</summary>
    public static string CacheCollection(string datasetFolder) =>
        "eval-" + Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(datasetFolder)));

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var folder = args.GetValue<string?>("--dataset") ?? throw new Problems.SetupException(
            "eval needs --dataset DIR, a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv), for example --dataset ../shared/datasets/scifact.",
            Problems.ExitCodes.InvalidInput);
        var qrels = args.GetValue<string?>("--qrels");
        var limitQueries = args.GetValue<int>("--limit-queries");
        var cacheFolder = args.GetValue<string?>("--cache");
        var vectorWeight = args.GetValue<double>("--vector-weight");
        var throughputSample = args.GetValue<int>("--throughput-sample");
        var sweep = args.GetValue<bool>("--sweep");
        var console = context.Console;

        var dataset = BeirDataset.Read(folder, qrels);
        var queries = dataset.Queries.Where(q => dataset.Judgments.ContainsKey(q.Id)).Take(limitQueries).ToList();
        console.MarkupLine($"[bold]{Markup.Escape(folder)}[/]: {dataset.Corpus.Count:N0} documents, {queries.Count:N0} judged queries from {Markup.Escape(Path.GetFileName(dataset.QrelsFile))}.");

        // The document as the lessons store it: the BEIR id rides in the source column, so hits map back to judgments.
        // The title column is varchar(255), which counts code points: the title is cut there, between characters.
        var documents = dataset.Corpus
            .Select(d => new CorpusDocument(TextPrefix.Of(d.Title, 255, TextMeasure.CodePoints), d.Text, d.Id))
            .ToList();

        // The dataset's vectors in a part of the cache of their own: ann --vectors reads that folder, and a lesson never reads them.
        using var embedder = TextEmbedder.Create(EmbeddedTexts.WithCache(context.Settings.Embeddings, cacheFolder, CacheCollection(folder)));
        var cached = embedder.Cache?.Folder ?? "no cache: EMBEDDING_CACHE=off";
        EmbeddingRun corpusRun = default!;
        IReadOnlyList<float[]> corpusVectors = [];
        IReadOnlyList<float[]> queryVectors = [];
        await context.Progress().StartAsync(async progress =>
        {
            var corpusTask = progress.AddTask("embedding corpus", maxValue: documents.Count);
            (corpusVectors, corpusRun) = await CachedEmbedder.EmbedAsync(embedder, documents.Select(d => d.TextToEmbed).ToList(), asQueries: false, corpusTask, cancellationToken);
            // Queries as the lessons embed a question: after the model's query prefix (arctic-embed's instruction; none for
            // MiniLM). The cache is keyed by the text the model reads, so a prefixed query never meets a document's entry.
            var queryTask = progress.AddTask("embedding queries", maxValue: queries.Count);
            (queryVectors, _) = await CachedEmbedder.EmbedAsync(embedder, queries.Select(q => q.Text).ToList(), asQueries: true, queryTask, cancellationToken);
        });
        // Throughput measured on every run: the first documents embedded afresh (the cache is neither read nor written),
        // after one untimed call so loading the model is nobody's cost. The local model is timed both ways it can read
        // long texts, the configured one first.
        var throughput = new List<EmbeddingRun>();
        if (throughputSample > 0)
        {
            var sample = documents.Take(throughputSample).Select(d => d.TextToEmbed).ToList();
            var uncached = context.Settings.Embeddings with { Cache = null };
            using var configured = TextEmbedder.Create(uncached);
            using var other = embedder.Generator is LocalEmbeddingGenerator { Options.LongText: var longText }
                ? TextEmbedder.Create(uncached with
                {
                    LocalLongText = longText == LongTextHandling.Truncate ? LongTextHandling.ChunkAndAverage : LongTextHandling.Truncate,
                })
                : null;
            await context.Progress().StartAsync(async progress =>
            {
                foreach (var timed in other is null ? [configured] : new[] { configured, other })
                {
                    await timed.EmbedAsync("warm up", cancellationToken);
                    var task = progress.AddTask($"embedding throughput ({sample.Count} documents afresh)", maxValue: sample.Count);
                    throughput.Add((await CachedEmbedder.EmbedAsync(timed, sample, asQueries: false, task, cancellationToken)).Run);
                }
            });
            foreach (var run in throughput)
            {
                console.MarkupLine($"[grey]embedding throughput, {Markup.Escape(embedder.Identity.Model)}: {run.Embedded} documents in {run.Seconds:N1} s = {run.DocumentsPerSecond:N1} docs/s, {run.TokensPerSecond:N0} word pieces/s " +
                    $"(batch {run.BatchSize}, {run.MaxTokens} word pieces a sequence, longer texts {run.LongText}, {run.IntraOpThreads} intra-op threads)[/]");
            }
        }

        console.MarkupLine(corpusRun.Embedded == 0
            ? $"[grey]corpus embeddings: all {corpusRun.Texts:N0} from the cache {Markup.Escape(cached)}[/]"
            : $"[grey]corpus embeddings: {corpusRun.Embedded:N0} computed in {corpusRun.Seconds:N1} s ({corpusRun.DocumentsPerSecond:N1} docs/s, {corpusRun.TokensPerSecond:N0} tokens/s), {corpusRun.FromCache:N0} from the cache {Markup.Escape(cached)}[/]");

        // The fused searches raise hnsw.ef_search themselves; the LINQ vector rows run in sessions of their own, where an
        // HNSW scan must return Depth rows (ef_search bounds it: at the default 40, a LIMIT 100 gets 40) and where the
        // plan is the one the row's name promises.
        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        await using var hnswSource = await context.OpenSchemaAsync(Schema, cancellationToken, $"-c hnsw.ef_search={Depth} -c enable_seqscan=off");
        await using var exactSource = await context.OpenSchemaAsync(Schema, cancellationToken, "-c enable_indexscan=off -c enable_bitmapscan=off");
        var shape = new VectorStoreShape(embedder.Dimensions);
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        await using var hnswDb = BenchContext.NewDbContext(hnswSource, shape);
        await using var exactDb = BenchContext.NewDbContext(exactSource, shape);
        var machine = await BenchContext.MachineAsync(dataSource, cancellationToken);
        await context.Progress().StartAsync(async progress =>
        {
            var load = progress.AddTask("COPY into bench_eval.vector_documents", maxValue: 3);
            await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
            await VectorStore.RecreateTablesAsync(db, cancellationToken);
            await VectorStore.CopyAsync(dataSource, documents, corpusVectors.Select(v => new Vector(v)).ToList(), cancellationToken);
            await EmbeddingGuard.RecordAsync(db, embedder.Identity, cancellationToken: cancellationToken);
            load.Value = 1;
            load.Description = "building HNSW, GIN and BM25 indexes";
            // IVFFlat is left out: with two vector indexes the planner, not the benchmark, would pick which one "vector HNSW" uses.
            await VectorStore.BuildIndexesAsync(db, VectorStore.Ddl(db).Indexes.Keys.Where(name => name != VectorDocumentConfiguration.IvfFlatIndex), cancellationToken);
            load.Value = 3;
        });

        var options = HybridOptions.Default with { VectorWeight = vectorWeight };
        var methods = Methods(dataSource, exactDb, hnswDb, options);
        var results = new List<EvalMethodResult>();
        await context.Progress().StartAsync(async progress =>
        {
            foreach (var method in methods)
            {
                var task = progress.AddTask(method.Name, maxValue: queries.Count);
                results.Add(await ScoreAsync(method, queries, queryVectors, dataset.Judgments, task, cancellationToken));
            }
        });

        var table = new Table().Title($"{Markup.Escape(Path.GetFileName(Path.GetFullPath(folder)))}: {queries.Count:N0} queries, {dataset.Corpus.Count:N0} documents")
            .AddColumns("method", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms", "plan");
        foreach (var r in results)
        {
            table.AddRow(r.Method, r.NdcgAt10.ToString("F3"), r.RecallAt100.ToString("F3"), r.MrrAt10.ToString("F3"), r.P50Ms.ToString("F2"), r.P95Ms.ToString("F2"), Markup.Escape(r.Plan));
        }

        var datasetName = Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar));
        if (PublishedBm25.TryGetValue(datasetName, out var published))
        {
            table.AddRow($"[grey]BM25 as published for {Markup.Escape(datasetName)} (BEIR paper, test split)[/]", $"[grey]{published:F3}[/]", "", "", "", "", "");
        }

        console.Write(table);

        if (sweep)
        {
            await FusionSweep.RunAsync(context, dataSource, queries, queryVectors, dataset.Judgments, cancellationToken);
        }

        var report = new EvalReport(Path.GetFullPath(folder), Path.GetFullPath(dataset.QrelsFile), dataset.Corpus.Count, queries.Count,
            embedder.Identity.ToString(), new EvalSettings(Depth, options.Candidates, Depth, vectorWeight, options.RrfK),
            corpusRun, throughput, machine, results);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "eval", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "eval", ["method", "ndcg_at_10", "recall_at_100", "mrr_at_10", "p50_ms", "p95_ms", "queries", "plan"],
                results.Select(r => (IReadOnlyList<object?>)[r.Method, r.NdcgAt10, r.RecallAt100, r.MrrAt10, r.P50Ms, r.P95Ms, r.Queries, r.Plan]), cancellationToken));
        return 0;
    }

    /// <param name="Name">The row's name.</param>
    /// <param name="Search">One query: text and embedding in, ranked BEIR ids out.</param>
    /// <param name="Explain">The plan of one query, run the way <paramref name="Search"/> runs it.</param>
    /// <param name="Promise">What the name promises of the plan (an index name, or "Seq Scan"); null when it promises nothing.</param>
    internal sealed record Method(string Name, Func<string, Vector, CancellationToken, Task<IReadOnlyList<string>>> Search,
        Func<string, Vector, CancellationToken, Task<IReadOnlyList<string>>>? Explain = null, string? Promise = null);

    /// <summary>
    /// Each method is a call into the library, with the SQL the lessons send. The two vector rows each get a session of
    /// their own that makes their plan what their name says: on a small table the planner may well scan every row for
    /// "vector HNSW", and the row would then time an exact scan under the index's name.
    /// </summary>
    private static List<Method> Methods(NpgsqlDataSource dataSource, SearchDbContext exact, SearchDbContext hnsw, HybridOptions options) =>
    [
        new("keyword (BM25)",
            async (text, _, ct) => Ids(await HybridSearch.KeywordAsync(dataSource, text, Depth, bm25: options.Bm25, cancellationToken: ct)),
            (text, _, ct) => HybridSearch.ExplainAsync(dataSource, SearchMethod.Keyword, text, null, Depth, options: options, cancellationToken: ct)),
        new("vector exact",
            async (_, embedding, ct) => (await VectorSearch.Nearest(exact, embedding, limit: Depth).ToListAsync(ct)).Select(h => h.Source!).ToList(),
            (_, embedding, ct) => QueryPlan.ExplainLinqAsync(VectorSearch.Nearest(exact, embedding, limit: Depth), ct),
            "Seq Scan"),
        new("vector HNSW",
            async (_, embedding, ct) => (await VectorSearch.Nearest(hnsw, embedding, limit: Depth).ToListAsync(ct)).Select(h => h.Source!).ToList(),
            (_, embedding, ct) => QueryPlan.ExplainLinqAsync(VectorSearch.Nearest(hnsw, embedding, limit: Depth), ct),
            VectorDocumentConfiguration.HnswIndex),
        new($"hybrid weighted ({options.VectorWeight:0.0#} vector)",
            async (text, embedding, ct) => Ids(await HybridSearch.WeightedAsync(dataSource, text, embedding, Depth, options: options, cancellationToken: ct)),
            (text, embedding, ct) => HybridSearch.ExplainAsync(dataSource, SearchMethod.Weighted, text, embedding, Depth, options: options, cancellationToken: ct)),
        new($"hybrid RRF (k = {options.RrfK})",
            async (text, embedding, ct) => Ids(await HybridSearch.ReciprocalRankFusionAsync(dataSource, text, embedding, Depth, options: options, cancellationToken: ct)),
            (text, embedding, ct) => HybridSearch.ExplainAsync(dataSource, SearchMethod.ReciprocalRankFusion, text, embedding, Depth, options: options, cancellationToken: ct)),
    ];

    private static List<string> Ids(IReadOnlyList<SearchHit> hits) => hits.Select(h => h.Source!).ToList();

    internal static async Task<EvalMethodResult> ScoreAsync(Method method, IReadOnlyList<BeirQuery> queries, IReadOnlyList<float[]> vectors,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> judgments, ProgressTask task, CancellationToken cancellationToken)
    {
        // A few untimed queries first: the first calls pay for connection setup, EF's query compilation and cold pages.
        for (var i = 0; i < Math.Min(5, queries.Count); i++)
        {
            await method.Search(queries[i].Text, new Vector(vectors[i]), cancellationToken);
        }

        // The plan of the first query, as the method runs it: a row whose name promises an index must have used it.
        var plan = method.Explain is null ? [] : await method.Explain(queries[0].Text, new Vector(vectors[0]), cancellationToken);
        if (method.Promise is { } promise && !plan.Any(line => line.Contains(promise, StringComparison.Ordinal)))
        {
            throw new InvalidOperationException($"'{method.Name}' promises {promise} but its plan is:\n{string.Join('\n', plan)}");
        }

        var latency = new Latency();
        double ndcg = 0, recall = 0, mrr = 0;
        for (var i = 0; i < queries.Count; i++)
        {
            var embedding = new Vector(vectors[i]);
            var watch = Stopwatch.StartNew();
            var ranked = await method.Search(queries[i].Text, embedding, cancellationToken);
            latency.Add(watch.Elapsed);
            var judged = judgments[queries[i].Id];
            ndcg += RetrievalMetrics.NdcgAt(10, ranked, judged);
            recall += RetrievalMetrics.RecallAt(100, ranked, judged);
            mrr += RetrievalMetrics.ReciprocalRankAt(10, ranked, judged);
            task.Increment(1);
        }

        var n = Math.Max(queries.Count, 1);
        return new EvalMethodResult(method.Name, ndcg / n, recall / n, mrr / n, latency.P50, latency.P95, queries.Count, QueryPlan.Summary(plan));
    }
}

/// <param name="Plan">The scans of the first query's plan, in a few words (<see cref="QueryPlan.Summary"/>).</param>
public sealed record EvalMethodResult(string Method, double NdcgAt10, double RecallAt100, double MrrAt10, double P50Ms, double P95Ms, int Queries, string Plan);

public sealed record EvalSettings(int Limit, int Candidates, int HnswEfSearch, double VectorWeight, int RrfK);

public sealed record EvalReport(string Dataset, string Qrels, int Documents, int Queries, string Model, EvalSettings Settings,
    EmbeddingRun CorpusEmbedding, IReadOnlyList<EmbeddingRun> EmbeddingThroughput, MachineInfo Machine, IReadOnlyList<EvalMethodResult> Methods);
