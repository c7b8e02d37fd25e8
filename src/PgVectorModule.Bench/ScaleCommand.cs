using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench;

/// <summary>
/// scale: the lessons' four searches (BM25 keyword, HNSW vector, weighted and RRF hybrid) on a corpus of about 100,000
/// real passages with text and embeddings, so a reader sees how each leg's cost grows with the corpus: p50 and p95
/// latency, and how much of the postings each query's keyword search read. Latency only: these texts have no judgments.
/// </summary>
public static class ScaleCommand
{
    public const string Name = "scale";
    public const string Schema = "bench_scale";
    private const int Dimensions = 384;
    private const int Limit = 10;

    internal static Command Definition()
    {
        var command = BaseDefinition();
        foreach (var option in CitusScale.Options())
        {
            command.Options.Add(option);
        }

        return command;
    }

    private static Command BaseDefinition() => new(Name,
        "p50/p95 of BM25, HNSW, weighted and RRF search on ~100,000 real passages, and how much of the postings the keyword search reads; " +
        "--citus: the same passages on a Citus cluster, routed and fanned out, at two sizes")
    {
        BenchOptions.Text("--texts", "FILE", "texts, one per line, instead of the SDK's documentation"),
        // The default source; accepted so the command reads like ann's.
        BenchOptions.Flag("--sdk-docs", "the installed .NET SDK's API documentation (the default)"),
        BenchOptions.Text("--cache", "DIR", EmbeddedTexts.CacheHelp),
        BenchOptions.Count("--queries", 200, "queries: the first six words of passages drawn at random from the table"),
        BenchOptions.Count("--seed", 42, "seed of the draw", min: 0),
        BenchOptions.Count("--rows", int.MaxValue, "at most this many passages"),
    };

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var textsFile = args.GetValue<string?>("--texts");
        var cacheFolder = args.GetValue<string?>("--cache");
        var queryCount = args.GetValue<int>("--queries");
        var seed = args.GetValue<int>("--seed");
        var rows = args.GetValue<int>("--rows");
        var console = context.Console;

        var citus = args.GetValue<bool>("--citus");
        var givenCitus = citus ? await CitusScale.GivenCoordinatorAsync(context.Settings.Operations.CitusUrl, cancellationToken) : null;
        var dataset = citus ? CitusScale.ReadDataset(args) : null;
        var (allTexts, allVectors) = await EmbeddedTexts.LoadAsync(context, textsFile, cacheFolder, Dimensions, "scale", cancellationToken);
        if (citus)
        {
            return await CitusScale.RunAsync(context, args, givenCitus, dataset, allTexts, allVectors, rows, queryCount, seed, cancellationToken);
        }

        var count = Math.Min(rows, allTexts.Count);
        // Queries: the opening words of passages drawn at random, the shape of a question typed into a search box.
        var random = new Random(seed);
        var queryTexts = Enumerable.Range(0, queryCount)
            .Select(_ => string.Join(' ', allTexts[random.Next(count)].Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(6)))
            .ToList();
        using var embedder = TextEmbedder.Create(EmbeddedTexts.WithCache(context.Settings.Embeddings, cacheFolder, EmbeddedTexts.TextsCollection));
        var queryVectors = await embedder.EmbedQueriesAsync(queryTexts, progress: null, cancellationToken);

        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        await using var hnswSource = await context.OpenSchemaAsync(Schema, cancellationToken, $"-c hnsw.ef_search={HybridOptions.DefaultCandidates}");
        var shape = new VectorStoreShape(Dimensions);
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        await using var hnswDb = BenchContext.NewDbContext(hnswSource, shape);
        var machine = await BenchContext.MachineAsync(dataSource, cancellationToken);
        var load = Stopwatch.StartNew();
        await context.Progress().StartAsync(async progress =>
        {
            var task = progress.AddTask($"COPY {count:N0} passages (BM25 postings by trigger), then HNSW, GIN and postings indexes", maxValue: 2);
            await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
            await VectorStore.RecreateTablesAsync(db, cancellationToken);
            var documents = allTexts.Take(count).Select((t, i) => new CorpusDocument($"passage {i}", t, i % 2 == 0 ? "even" : "odd")).ToList();
            await VectorStore.CopyAsync(dataSource, documents, allVectors.Take(count).Select(v => new Vector(v)).ToList(), cancellationToken);
            task.Value = 1;
            await db.Database.ExecuteSqlRawAsync("SET maintenance_work_mem = '1GB'", cancellationToken);
            await VectorStore.BuildIndexesAsync(db, VectorStore.Ddl(db).Indexes.Keys.Where(n => n != VectorDocumentConfiguration.IvfFlatIndex), cancellationToken);
            task.Value = 2;
        });
        var postings = await BenchContext.ScalarAsync<long>(dataSource, $"SELECT count(*) FROM {DocumentTermConfiguration.TableName}", cancellationToken);
        console.MarkupLine(Markup.Escape($"{count:N0} passages, {postings:N0} BM25 postings, loaded and indexed in {load.Elapsed.TotalSeconds:N0} s; {queryCount} queries of six words."));

        var options = HybridOptions.Default;
        var methods = new (string Name, Func<int, Task<int>> Run, Func<int, Task<IReadOnlyList<string>>> Explain)[]
        {
            ("keyword (BM25)",
                async i => (await HybridSearch.KeywordAsync(dataSource, queryTexts[i], Limit, cancellationToken: cancellationToken)).Count,
                i => HybridSearch.ExplainAsync(dataSource, SearchMethod.Keyword, queryTexts[i], null, Limit, cancellationToken: cancellationToken)),
            ("vector HNSW (LINQ)",
                async i => (await VectorSearch.Nearest(hnswDb, queryVectors[i], limit: Limit).ToListAsync(cancellationToken)).Count,
                i => QueryPlan.ExplainLinqAsync(VectorSearch.Nearest(hnswDb, queryVectors[i], limit: Limit), cancellationToken)),
            ($"hybrid weighted ({options.VectorWeight:0.0#} vector)",
                async i => (await HybridSearch.WeightedAsync(dataSource, queryTexts[i], queryVectors[i], Limit, cancellationToken: cancellationToken)).Count,
                i => HybridSearch.ExplainAsync(dataSource, SearchMethod.Weighted, queryTexts[i], queryVectors[i], Limit, cancellationToken: cancellationToken)),
            ($"hybrid RRF (k = {options.RrfK})",
                async i => (await HybridSearch.ReciprocalRankFusionAsync(dataSource, queryTexts[i], queryVectors[i], Limit, cancellationToken: cancellationToken)).Count,
                i => HybridSearch.ExplainAsync(dataSource, SearchMethod.ReciprocalRankFusion, queryTexts[i], queryVectors[i], Limit, cancellationToken: cancellationToken)),
            ($"hybrid RRF, filtered to half the corpus",
                async i => (await HybridSearch.ReciprocalRankFusionAsync(dataSource, queryTexts[i], queryVectors[i], Limit, source: "even", cancellationToken: cancellationToken)).Count,
                i => HybridSearch.ExplainAsync(dataSource, SearchMethod.ReciprocalRankFusion, queryTexts[i], queryVectors[i], Limit, source: "even", cancellationToken: cancellationToken)),
        };

        // The keyword search's work per query: the documents holding a query term (what BM25 scores when it scores them
        // all), and what the bounded search read and scored, at the keyword search's depth and at a fused leg's.
        var holding = new List<double>();
        var work = new Dictionary<int, (List<double> Postings, List<double> Scored, List<bool> ReadAll)> { [Limit] = ([], [], []), [options.Candidates] = ([], [], []) };
        foreach (var text in queryTexts)
        {
            await using (var command = dataSource.CreateCommand(
                $"SELECT count(DISTINCT document_id) FROM {DocumentTermConfiguration.TableName} WHERE lexeme IN ({SearchSql.QueryLexemes})"))
            {
                command.Parameters.AddWithValue("query", text);
                holding.Add(Convert.ToDouble(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture));
            }

            foreach (var (depth, (postingsRead, scored, readAll)) in work)
            {
                await using var command = dataSource.CreateCommand(SearchSql.KeywordWork);
                command.Parameters.AddWithValue("query", text);
                command.Parameters.AddWithValue("limit", depth);
                command.Parameters.AddWithValue("k1", options.Bm25.K1);
                command.Parameters.AddWithValue("b", options.Bm25.B);
                command.Parameters.Add(new NpgsqlParameter("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = DBNull.Value });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                await reader.ReadAsync(cancellationToken);
                postingsRead.Add(reader.GetInt64(0));
                scored.Add(reader.GetInt64(1));
                readAll.Add(reader.GetBoolean(2));
            }
        }

        var results = new List<ScaleResult>();
        await context.Progress().StartAsync(async progress =>
        {
            foreach (var (name, run, explain) in methods)
            {
                var task = progress.AddTask(name, maxValue: queryCount);
                var planLines = await explain(0);
                var plan = QueryPlan.Summary(planLines);
                // A row that names the vector index, or fuses with it, must have used it; otherwise it would time another plan under that name.
                if ((name.Contains("HNSW", StringComparison.Ordinal) || name.StartsWith("hybrid", StringComparison.Ordinal)) && !plan.Contains("HNSW", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"'{name}' should use the HNSW index but its plan is:\n{string.Join('\n', planLines)}");
                }

                var (latency, returned) = await Latency.TimeAsync(queryCount, run, () => task.Increment(1));

                results.Add(new ScaleResult(name, latency.P50, latency.P95, (double)returned / queryCount, plan));
            }
        });

        var table = new Table().Title(Markup.Escape($"{count:N0} passages: p50/p95 over {queryCount} queries, top {Limit}"))
            .AddColumns("method", "p50 ms", "p95 ms", "rows returned", "plan");
        foreach (var r in results)
        {
            table.AddRow(Markup.Escape(r.Method), r.P50Ms.ToString("F2", CultureInfo.InvariantCulture), r.P95Ms.ToString("F2", CultureInfo.InvariantCulture),
                r.RowsReturned.ToString("F1", CultureInfo.InvariantCulture), Markup.Escape(r.Plan));
        }

        console.Write(table);
        static (double Median, double P95) Spread(List<double> values)
        {
            var sorted = values.Order().ToList();
            return (sorted[sorted.Count / 2], sorted[(int)Math.Min(sorted.Count - 1, Math.Ceiling(sorted.Count * 0.95) - 1)]);
        }

        var (median, p95) = Spread(holding);
        console.MarkupLine(Markup.Escape($"Documents holding a query term (what BM25 over every posting scores): median {median:N0}, p95 {p95:N0} of {count:N0}."));
        var depths = new List<KeywordSearchWork>();
        foreach (var (depth, (postingsRead, scored, readAll)) in work)
        {
            var (readMedian, readP95) = Spread(postingsRead);
            var (scoredMedian, scoredP95) = Spread(scored);
            var readAllCount = readAll.Count(r => r);
            depths.Add(new KeywordSearchWork(depth, readMedian, readP95, scoredMedian, scoredP95, readAllCount));
            console.MarkupLine(Markup.Escape(
                $"The keyword search, best {depth}: reads a median {readMedian:N0} postings (p95 {readP95:N0}) and scores {scoredMedian:N0} documents (p95 {scoredP95:N0}); it read every posting (few enough) for {readAllCount:N0} of {readAll.Count:N0} queries."));
        }

        var report = new ScaleReport(count, postings, queryCount, load.Elapsed.TotalSeconds, median, p95, depths, machine, results);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "scale", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "scale", ["method", "p50_ms", "p95_ms", "rows_returned", "plan"],
                results.Select(r => (IReadOnlyList<object?>)[r.Method, r.P50Ms, r.P95Ms, r.RowsReturned, r.Plan]), cancellationToken));
        return 0;
    }
}

public sealed record ScaleResult(string Method, double P50Ms, double P95Ms, double RowsReturned, string Plan);

/// <summary>
/// What the keyword search did per query for its best <paramref name="Depth"/>: postings read and documents scored, and for
/// how many queries it read every posting of the terms rather than walking them.
/// </summary>
public sealed record KeywordSearchWork(int Depth, double PostingsReadMedian, double PostingsReadP95, double DocumentsScoredMedian, double DocumentsScoredP95,
    int ReadEveryPosting);

public sealed record ScaleReport(int Documents, long Postings, int Queries, double LoadSeconds, double KeywordMatchesMedian, double KeywordMatchesP95,
    IReadOnlyList<KeywordSearchWork> KeywordWork, MachineInfo Machine, IReadOnlyList<ScaleResult> Methods);
