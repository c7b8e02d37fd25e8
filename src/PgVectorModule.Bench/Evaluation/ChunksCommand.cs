using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Chunking;
using PgVectorModule.Embeddings;
using PgVectorModule.Input;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench.Evaluation;

/// <summary>
/// chunks: lesson 10's choices measured on a BEIR dataset. One averaged vector per document against chunk-level retrieval
/// (a document scored by its best chunk, or by its best two) for several chunkings; then BM25 fused in, a second stage
/// over the best 50, and the citations of the extractive answer. Settings are chosen on one half of the judged queries
/// (even ids) and reported on both; the other half (odd ids) is the held-out figure.
/// </summary>
public static class ChunksCommand
{
    public const string Name = "chunks";
    public const string Schema = "bench_chunks";
    public const int Depth = 100;
    public const int SecondStageDepth = 50;

    /// <summary>The chunkings measured: fixed windows of about 64, 128 and 256 word pieces with and without a quarter's overlap, and sentence packing.</summary>
    public static IReadOnlyList<ChunkSettings> Chunkings { get; } =
    [
        new(ChunkStrategy.Sentences, 128),
        new(ChunkStrategy.Windows, 64, 16),
        new(ChunkStrategy.Windows, 256, 64),
        new(ChunkStrategy.Windows, 128, 32),
        new(ChunkStrategy.Windows, 128),
        new(ChunkStrategy.Windows, 256),
        new(ChunkStrategy.Windows, 64),
    ];

    internal static Command Definition() => new(Name,
        "document-level averaged vectors against chunk-level retrieval (best chunk, best two) for several chunkings, BM25 fused in, " +
        "a second stage over the best 50, and the extractive answer's citations; settings chosen on the even query ids, reported on both halves")
    {
        BenchOptions.Text("--dataset", "DIR", "a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv)"),
        BenchOptions.Text("--qrels", "FILE", "the judgments to score against (default: the folder's test split)"),
        BenchOptions.Text("--cache", "DIR", EmbeddedTexts.CacheHelp),
        BenchOptions.Count("--chunkings", int.MaxValue, min: 0, description: "measure only the first N chunkings of the list (sentences up to 128; windows of 64, 256 and 128 with a quarter's overlap; windows of 128, 256 and 64)"),
        BenchOptions.Flag("--no-second-stage", "skip the second stage (it embeds every document with snowflake-arctic-embed-xs once)"),
        BenchOptions.Flag("--index-sizes", "also load each chunking into PostgreSQL and build its HNSW index, for rows and index size"),
    };

    private sealed record Ranking(IReadOnlyList<string> Ids, IReadOnlyList<double> Scores);

    private sealed record Chunked(ChunkSettings Settings, IReadOnlyList<int> DocumentOf, IReadOnlyList<string> Texts, IReadOnlyList<float[]> Vectors,
        long WordPieces, EmbeddingRun Run);

    public sealed record Row(string Method, double TuneNdcg, double TuneRecall, double HeldOutNdcg, double HeldOutRecall);

    public sealed record ChunkingCost(string Chunking, int Rows, long WordPieces, int Embedded, double EmbeddingSeconds, long? IndexBytes);

    public sealed record Report(string Dataset, string Qrels, int Documents, int TuneQueries, int HeldOutQueries, IReadOnlyList<ChunkingCost> Costs,
        IReadOnlyList<Row> Rows, IReadOnlyDictionary<string, string> Chosen);

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var folder = args.GetValue<string?>("--dataset") ?? throw new Problems.SetupException(
            "chunks needs --dataset DIR, a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv), for example --dataset ../shared/datasets/scifact.",
            Problems.ExitCodes.InvalidInput);
        var cacheFolder = args.GetValue<string?>("--cache");
        var indexSizes = args.GetValue<bool>("--index-sizes");
        var chunkings = Chunkings.Take(args.GetValue<int>("--chunkings")).ToList();
        var secondStage = !args.GetValue<bool>("--no-second-stage");
        var console = context.Console;
        var dataset = BeirDataset.Read(folder, args.GetValue<string?>("--qrels"));
        var queries = dataset.Queries.Where(q => dataset.Judgments.ContainsKey(q.Id)).ToList();
        var tune = queries.Where(q => Half(q.Id) == 0).ToList();
        var heldOut = queries.Where(q => Half(q.Id) == 1).ToList();
        console.MarkupLine($"[bold]{Markup.Escape(folder)}[/]: {dataset.Corpus.Count:N0} documents; {queries.Count} judged queries from {Markup.Escape(Path.GetFileName(dataset.QrelsFile))}: " +
                           $"{tune.Count} to choose settings on (even ids), {heldOut.Count} held out (odd ids).");

        // The documents exactly as eval stores and embeds them, so their vectors come from eval's cache.
        var documents = dataset.Corpus.Select(d => new CorpusDocument(TextPrefix.Of(d.Title, 255, TextMeasure.CodePoints), d.Text, d.Id)).ToList();
        var ids = documents.Select(d => d.Source).ToList();
        var minilmSettings = context.Settings.Embeddings with { Provider = EmbeddingProviderKind.Local, LocalModel = LocalEmbeddingModel.MiniLML6V2, BatchSize = 1 };
        using var documentEmbedder = TextEmbedder.Create(EmbeddedTexts.WithCache(minilmSettings, cacheFolder, EvalCommand.CacheCollection(folder)));
        using var chunkEmbedder = TextEmbedder.Create(EmbeddedTexts.WithCache(minilmSettings, cacheFolder, "chunks-" + Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)))));
        using var arctic = TextEmbedder.Create(EmbeddedTexts.WithCache(minilmSettings with { LocalModel = LocalEmbeddingModel.ArcticEmbedXs }, cacheFolder, EvalCommand.CacheCollection(folder)));
        var tokenizer = ((LocalEmbeddingGenerator)chunkEmbedder.Generator).Tokenizer;
        var wordPieces = new Dictionary<string, int>(StringComparer.Ordinal);
        int Pieces(string text)
        {
            if (!wordPieces.TryGetValue(text, out var n))
            {
                n = tokenizer.Encode(text).Length;
                if (text.IndexOf(' ', StringComparison.Ordinal) < 0)
                {
                    wordPieces[text] = n;
                }
            }

            return n;
        }

        IReadOnlyList<float[]> documentVectors = [], queryVectors = [], arcticQueries = [], arcticDocuments = [];
        EmbeddingRun documentRun = default!;
        var chunked = new List<Chunked>();
        await context.Progress().StartAsync(async progress =>
        {
            (documentVectors, documentRun) = await CachedEmbedder.EmbedAsync(documentEmbedder, documents.Select(d => d.TextToEmbed).ToList(), asQueries: false,
                progress.AddTask("documents, one averaged vector each", maxValue: documents.Count), cancellationToken);
            (queryVectors, _) = await CachedEmbedder.EmbedAsync(documentEmbedder, queries.Select(q => q.Text).ToList(), asQueries: true,
                progress.AddTask("queries", maxValue: queries.Count), cancellationToken);
            foreach (var settings in chunkings)
            {
                var documentOf = new List<int>();
                var texts = new List<string>();
                long pieces = 0;
                for (var d = 0; d < documents.Count; d++)
                {
                    foreach (var chunk in TextChunker.Cut(documents[d].Content, Pieces, settings))
                    {
                        documentOf.Add(d);
                        texts.Add($"{documents[d].Title}. {chunk.Text}");
                        pieces += chunk.Tokens;
                    }
                }

                var (vectors, run) = await CachedEmbedder.EmbedAsync(chunkEmbedder, texts, asQueries: false,
                    progress.AddTask($"chunks: {settings} ({texts.Count:N0})", maxValue: texts.Count), cancellationToken);
                chunked.Add(new Chunked(settings, documentOf, texts, vectors, pieces, run));
                if (chunked.Count == 1 && secondStage)
                {
                    // The second stage's documents early: a run stopped part-way keeps them in the cache.
                    (arcticDocuments, _) = await CachedEmbedder.EmbedAsync(arctic, documents.Select(d => d.TextToEmbed).ToList(), asQueries: false,
                        progress.AddTask("documents, second stage (arctic-embed-xs)", maxValue: documents.Count), cancellationToken);
                }
            }

            if (secondStage)
            {
                if (chunked.Count == 0)
                {
                    (arcticDocuments, _) = await CachedEmbedder.EmbedAsync(arctic, documents.Select(d => d.TextToEmbed).ToList(), asQueries: false,
                        progress.AddTask("documents, second stage (arctic-embed-xs)", maxValue: documents.Count), cancellationToken);
                }

                (arcticQueries, _) = await CachedEmbedder.EmbedAsync(arctic, queries.Select(q => q.Text).ToList(), asQueries: true,
                    progress.AddTask("queries, second stage (arctic-embed-xs)", maxValue: queries.Count), cancellationToken);
            }
        });

        // BM25 from the library's keyword search over the documents, in PostgreSQL.
        var keyword = await KeywordAsync(context, documents, documentVectors, queries, cancellationToken);

        var rows = new List<Row>();
        var chosen = new Dictionary<string, string>(StringComparer.Ordinal);
        var indexOf = queries.Select((q, i) => (q.Id, i)).ToDictionary(p => p.Id, p => p.i, StringComparer.Ordinal);
        Row Score(string method, Func<int, Ranking> rank)
        {
            (double, double) Mean(IReadOnlyList<BeirQuery> half)
            {
                double ndcg = 0, recall = 0;
                foreach (var q in half)
                {
                    var ranked = rank(indexOf[q.Id]).Ids;
                    ndcg += RetrievalMetrics.NdcgAt(10, ranked, dataset.Judgments[q.Id]);
                    recall += RetrievalMetrics.RecallAt(100, ranked, dataset.Judgments[q.Id]);
                }

                return (ndcg / Math.Max(1, half.Count), recall / Math.Max(1, half.Count));
            }

            var (tn, tr) = Mean(tune);
            var (hn, hr) = Mean(heldOut);
            var row = new Row(method, tn, tr, hn, hr);
            rows.Add(row);
            console.MarkupLine($"[grey]{Markup.Escape(method)}: tune {tn:F3} / {tr:F3}, held out {hn:F3} / {hr:F3}[/]");
            return row;
        }

        // First stage, vector only: one averaged vector per document, then each chunking by best chunk and by best two.
        var documentRankings = Cache(queries.Count, q => Exact(queryVectors[q], documentVectors, Enumerable.Range(0, documents.Count).ToList(), ids, 1));
        var documentRow = Score("documents, one averaged vector (eval's vector exact)", documentRankings);
        var best = (Row: documentRow, Rank: documentRankings, Chunks: (Chunked?)null);
        foreach (var c in chunked)
        {
            foreach (var (take, label) in new[] { (1, "best chunk"), (2, "sum of the best two") })
            {
                var ranking = Cache(queries.Count, q => Exact(queryVectors[q], c.Vectors, c.DocumentOf, ids, take));
                var row = Score($"chunks, {c.Settings}: {label}", ranking);
                if (row.TuneNdcg > best.Row.TuneNdcg)
                {
                    best = (row, ranking, c);
                }
            }
        }

        chosen["first stage, vector"] = best.Row.Method;
        var vectorBest = best.Rank;
        var keywordRank = (Func<int, Ranking>)(q => keyword[q]);
        Score("keyword (BM25)", keywordRank);

        // Fusion with BM25, its setting chosen on the tuning half.
        var fusions = new List<(string Name, Func<int, Ranking> Rank)>();
        foreach (var k in new[] { 10, 30, 60 })
        {
            fusions.Add(($"RRF k = {k}", Cache(queries.Count, q => Rrf(vectorBest(q), keyword[q], k))));
        }

        foreach (var w in new[] { 0.3, 0.4, 0.5, 0.6, 0.7 })
        {
            fusions.Add(($"weighted {w:0.0} vector", Cache(queries.Count, q => Weighted(vectorBest(q), keyword[q], w))));
        }

        var fusionRows = fusions.Select(f => (f, Row: Score($"hybrid, {best.Row.Method} + BM25, {f.Name}", f.Rank))).ToList();
        var fused = fusionRows.MaxBy(f => f.Row.TuneNdcg);
        chosen["first stage, hybrid"] = fused.Row.Method;

        // Second stage over the best 50: arctic-embed-xs's score of the document (its averaged vector, as eval embeds it), alone
        // or added to the first stage's (both min-max scaled over the 50), the weight chosen on the tuning half.
        var positionOf = ids.Select((id, i) => (id, i)).ToDictionary(p => p.id, p => p.i, StringComparer.Ordinal);
        Func<int, Ranking> Second(Func<int, Ranking> first, double weight) => Cache(queries.Count, q =>
        {
            var top = first(q);
            var n = Math.Min(SecondStageDepth, top.Ids.Count);
            var second = top.Ids.Take(n).Select(id => (double)TensorPrimitives.Dot(arcticQueries[q], arcticDocuments[positionOf[id]])).ToList();
            var a = MinMax(top.Scores.Take(n).ToList());
            var b = MinMax(second);
            var order = Enumerable.Range(0, n).OrderByDescending(i => weight * b[i] + (1 - weight) * a[i]).ToList();
            return new Ranking([.. order.Select(i => top.Ids[i]), .. top.Ids.Skip(n)], [.. order.Select(i => weight * b[i] + (1 - weight) * a[i]), .. top.Scores.Skip(n).Select(_ => 0.0)]);
        });
        var stageRows = new List<(double Weight, Row Row, Func<int, Ranking> Rank)>();
        if (!secondStage)
        {
            stageRows.Add((0, fused.Row, fused.f.Rank));
        }

        foreach (var w in secondStage ? new[] { 0.3, 0.5, 0.7, 1.0 } : [])
        {
            var rank = Second(fused.f.Rank, w);
            stageRows.Add((w, Score($"second stage over the hybrid's best {SecondStageDepth}: {w:0.0} x arctic-embed-xs + {1 - w:0.0} x first stage", rank), rank));
        }

        var stage = stageRows.MaxBy(s => s.Row.TuneNdcg);
        if (secondStage)
        {
            chosen["second stage"] = stage.Row.Method;
            Score($"second stage ({stage.Weight:0.0}) over documents, one averaged vector", Second(documentRankings, stage.Weight));
            Score($"second stage ({stage.Weight:0.0}) over {best.Row.Method}", Second(vectorBest, stage.Weight));
        }

        // Citations of the extractive answer over the final ranking: the best chunk of each of the first 3 documents, its
        // sentences scored against the question, those at 0.3 or more (at most 3) cited, else the closest one.
        // (A run without chunkings has no chunks to cite.)
        if ((best.Chunks ?? chunked.FirstOrDefault()) is { } cited)
        {
            var (tunePrecision, tuneRecall) = await CitationsAsync(context, documentEmbedder, cited, stage.Rank, queries, tune, queryVectors, dataset, ids, cancellationToken);
            var (heldPrecision, heldRecall) = await CitationsAsync(context, documentEmbedder, cited, stage.Rank, queries, heldOut, queryVectors, dataset, ids, cancellationToken);
            rows.Add(new Row("citations of the extractive answer: precision (in nDCG columns), recall of relevant documents (in Recall columns)", tunePrecision, tuneRecall, heldPrecision, heldRecall));
            console.MarkupLine($"citations: precision tune {tunePrecision:F3}, held out {heldPrecision:F3}; recall tune {tuneRecall:F3}, held out {heldRecall:F3}");
        }

        var costs = new List<ChunkingCost> { new("documents, one averaged vector", documents.Count, 0, documentRun.Embedded, documentRun.Seconds, null) };
        foreach (var c in chunked)
        {
            long? bytes = indexSizes ? await IndexSizeAsync(context, c, cancellationToken) : null;
            costs.Add(new ChunkingCost(c.Settings.ToString(), c.Texts.Count, c.WordPieces, c.Run.Embedded, c.Run.Seconds, bytes));
        }

        var table = new Table().AddColumns("method", "tune nDCG@10", "tune Recall@100", "held-out nDCG@10", "held-out Recall@100");
        foreach (var r in rows)
        {
            table.AddRow(Markup.Escape(r.Method), F(r.TuneNdcg), F(r.TuneRecall), F(r.HeldOutNdcg), F(r.HeldOutRecall));
        }

        console.Write(table);
        var costTable = new Table().AddColumns("chunking", "rows", "word pieces", "embedded now", "seconds", "HNSW size");
        foreach (var c in costs)
        {
            costTable.AddRow(Markup.Escape(c.Chunking), c.Rows.ToString("N0", CultureInfo.InvariantCulture), c.WordPieces.ToString("N0", CultureInfo.InvariantCulture),
                c.Embedded.ToString("N0", CultureInfo.InvariantCulture), c.EmbeddingSeconds.ToString("N0", CultureInfo.InvariantCulture),
                c.IndexBytes is { } b ? $"{b / 1048576.0:N1} MiB" : "");
        }

        console.Write(costTable);
        foreach (var (what, method) in chosen)
        {
            console.MarkupLine($"chosen on the tuning half, {Markup.Escape(what)}: {Markup.Escape(method)}");
        }

        var report = new Report(Path.GetFullPath(folder), Path.GetFullPath(dataset.QrelsFile), documents.Count, tune.Count, heldOut.Count, costs, rows, chosen);
        context.Saved(await ResultFiles.WriteJsonAsync(context.OutputFolder, "chunks", report, cancellationToken));
        return 0;
    }

    private static string F(double value) => value.ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>The tuning half (0: even ids) or the held-out half (1: odd ids); an id that is not a number goes by its hash.</summary>
    public static int Half(string id) =>
        long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? (int)(n % 2) : id.Aggregate(0, (h, c) => unchecked((h * 31) + c)) & 1;

    private static Func<int, Ranking> Cache(int count, Func<int, Ranking> rank)
    {
        var cache = new Ranking?[count];
        return q => cache[q] ??= rank(q);
    }

    /// <summary>Exact cosine over unit vectors; a document scored by the sum of its best <paramref name="take"/> vectors' similarities.</summary>
    private static Ranking Exact(float[] query, IReadOnlyList<float[]> vectors, IReadOnlyList<int> documentOf, IReadOnlyList<string> ids, int take)
    {
        var best = new Dictionary<int, (double First, double Second)>();
        for (var i = 0; i < vectors.Count; i++)
        {
            var s = (double)TensorPrimitives.Dot(query, vectors[i]);
            var d = documentOf[i];
            var (first, second) = best.TryGetValue(d, out var b) ? b : (double.NegativeInfinity, double.NegativeInfinity);
            best[d] = s > first ? (s, first) : s > second ? (first, s) : (first, second);
        }

        var scored = best.Select(p => (Id: ids[p.Key], Score: take == 1 || double.IsNegativeInfinity(p.Value.Second) ? p.Value.First : p.Value.First + p.Value.Second))
            .OrderByDescending(p => p.Score).ThenBy(p => p.Id, StringComparer.Ordinal).Take(Depth).ToList();
        return new Ranking(scored.Select(s => s.Id).ToList(), scored.Select(s => s.Score).ToList());
    }

    private static Ranking Rrf(Ranking vector, Ranking keyword, int k)
    {
        var scores = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var list in new[] { vector, keyword })
        {
            for (var i = 0; i < list.Ids.Count; i++)
            {
                scores[list.Ids[i]] = scores.GetValueOrDefault(list.Ids[i]) + 1.0 / (k + i + 1);
            }
        }

        return Ordered(scores);
    }

    private static Ranking Weighted(Ranking vector, Ranking keyword, double weight)
    {
        var scores = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (list, w) in new[] { (vector, weight), (keyword, 1 - weight) })
        {
            var scaled = MinMax(list.Scores);
            for (var i = 0; i < list.Ids.Count; i++)
            {
                scores[list.Ids[i]] = scores.GetValueOrDefault(list.Ids[i]) + w * scaled[i];
            }
        }

        return Ordered(scores);
    }

    private static Ranking Ordered(Dictionary<string, double> scores)
    {
        var ordered = scores.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Take(Depth).ToList();
        return new Ranking(ordered.Select(p => p.Key).ToList(), ordered.Select(p => p.Value).ToList());
    }

    private static double[] MinMax(IReadOnlyList<double> scores)
    {
        if (scores.Count == 0)
        {
            return [];
        }

        var (min, max) = (scores.Min(), scores.Max());
        return scores.Select(s => max > min ? (s - min) / (max - min) : 1.0).ToArray();
    }

    private static async Task<IReadOnlyList<Ranking>> KeywordAsync(BenchContext context, IReadOnlyList<CorpusDocument> documents, IReadOnlyList<float[]> vectors,
        IReadOnlyList<BeirQuery> queries, CancellationToken cancellationToken)
    {
        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        var shape = new VectorStoreShape(vectors[0].Length);
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        var rankings = new List<Ranking>(queries.Count);
        await context.Progress().StartAsync(async progress =>
        {
            var load = progress.AddTask($"COPY into {Schema}.vector_documents, BM25 postings", maxValue: 2);
            await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
            await VectorStore.RecreateTablesAsync(db, cancellationToken);
            await VectorStore.CopyAsync(dataSource, documents, vectors.Select(v => new Vector(v)).ToList(), cancellationToken);
            load.Value = 1;
            await VectorStore.BuildIndexesAsync(db, VectorStore.Ddl(db).Indexes.Keys.Where(name => name != VectorDocumentConfiguration.IvfFlatIndex && name != VectorDocumentConfiguration.HnswIndex), cancellationToken);
            load.Value = 2;
            var task = progress.AddTask("keyword (BM25)", maxValue: queries.Count);
            foreach (var q in queries)
            {
                var hits = await HybridSearch.KeywordAsync(dataSource, q.Text, Depth, cancellationToken: cancellationToken);
                rankings.Add(new Ranking(hits.Select(h => h.Source!).ToList(), hits.Select(h => h.Score).ToList()));
                task.Increment(1);
            }
        });
        return rankings;
    }

    private static async Task<(double Precision, double Recall)> CitationsAsync(BenchContext context, TextEmbedder embedder, Chunked chunks, Func<int, Ranking> rank,
        IReadOnlyList<BeirQuery> queries, IReadOnlyList<BeirQuery> half, IReadOnlyList<float[]> queryVectors, BeirDataset dataset, IReadOnlyList<string> ids,
        CancellationToken cancellationToken)
    {
        var positionOf = ids.Select((id, i) => (id, i)).ToDictionary(p => p.id, p => p.i, StringComparer.Ordinal);
        var chunksOf = chunks.DocumentOf.Select((d, i) => (d, i)).ToLookup(p => p.d, p => p.i);
        double precision = 0, recall = 0;
        var counted = 0;
        await context.Progress().StartAsync(async progress =>
        {
            var bar = progress.AddTask($"citations ({half.Count} queries)", maxValue: half.Count);
            foreach (var q in half)
            {
                var index = queries.Select((x, i) => (x, i)).First(p => p.x.Id == q.Id).i;
                var top = rank(index).Ids.Take(3).ToList();
                // Each document's best chunk for the question, as lesson 10's statement returns it.
                var passages = top.Select(id => chunksOf[positionOf[id]].MaxBy(c => TensorPrimitives.Dot(queryVectors[index], chunks.Vectors[c]))).ToList();
                var sentences = passages.SelectMany((c, p) => TextChunker.Sentences(chunks.Texts[c]).Select(s => (Passage: p, Text: s))).ToList();
                var vectors = await embedder.EmbedManyAsync(sentences.Select(s => s.Text).ToList(), null, cancellationToken);
                var scored = sentences.Select((s, i) => (s.Passage, Similarity: (double)TensorPrimitives.Dot(queryVectors[index], vectors[i].ToArray())))
                    .OrderByDescending(s => s.Similarity).ToList();
                var cited = scored.Where(s => s.Similarity >= 0.3).Take(3).Select(s => top[s.Passage]).ToHashSet(StringComparer.Ordinal);
                if (cited.Count == 0 && scored.Count > 0)
                {
                    cited.Add(top[scored[0].Passage]);
                }

                var relevant = dataset.Judgments[q.Id].Where(j => j.Value > 0).Select(j => j.Key).ToHashSet(StringComparer.Ordinal);
                if (cited.Count > 0 && relevant.Count > 0)
                {
                    precision += (double)cited.Count(relevant.Contains) / cited.Count;
                    recall += (double)cited.Count(relevant.Contains) / relevant.Count;
                    counted++;
                }

                bar.Increment(1);
            }
        });
        return (precision / Math.Max(1, counted), recall / Math.Max(1, counted));
    }

    private static async Task<long> IndexSizeAsync(BenchContext context, Chunked chunks, CancellationToken cancellationToken)
    {
        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        await using (var command = dataSource.CreateCommand("DROP TABLE IF EXISTS chunk_sizes; CREATE TABLE chunk_sizes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, document integer NOT NULL, embedding vector(384) NOT NULL)"))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var writer = await connection.BeginBinaryImportAsync("COPY chunk_sizes (document, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            for (var i = 0; i < chunks.Texts.Count; i++)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(chunks.DocumentOf[i], cancellationToken);
                await writer.WriteAsync(new Vector(chunks.Vectors[i]), cancellationToken);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        await using (var command = dataSource.CreateCommand("CREATE INDEX chunk_sizes_hnsw ON chunk_sizes USING hnsw (embedding vector_cosine_ops)"))
        {
            command.CommandTimeout = 0;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        return await BenchContext.ScalarAsync<long>(dataSource, "SELECT pg_relation_size('chunk_sizes_hnsw')", cancellationToken);
    }
}
