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
/// latency, and how many documents each query's keyword leg had to score. Latency only: these texts have no judgments.
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
        "p50/p95 of BM25, HNSW, weighted and RRF search on ~100,000 real passages, and how many documents the keyword leg scores; " +
        "--citus: the same passages on a Citus cluster, routed and fanned out, at two sizes")
    {
        BenchOptions.Text("--texts", "FILE", "texts, one per line, instead of the SDK's documentation"),
        // The default source; accepted so the command reads like ann's.
        BenchOptions.Flag("--sdk-docs", "the installed .NET SDK's API documentation (the default)"),
        BenchOptions.Text("--cache", "DIR", "where embedded texts are kept", EmbeddedTexts.DefaultCacheFolder),
        BenchOptions.Count("--queries", 200, "queries: the first six words of passages drawn at random from the table"),
        BenchOptions.Count("--seed", 42, "seed of the draw", min: 0),
        BenchOptions.Count("--rows", int.MaxValue, "at most this many passages"),
    };

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var textsFile = args.GetValue<string?>("--texts");
        var cacheFolder = args.GetValue<string>("--cache")!;
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
        using var embedder = TextEmbedder.Create(context.Settings.Embeddings);
        var queryVectors = await embedder.EmbedManyAsync(queryTexts.Select(embedder.QueryText).ToList(), progress: null, cancellationToken);

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

        // How many documents each query's keyword leg scores: BM25 reads every posting of the query's terms.
        var matched = new List<double>();
        foreach (var text in queryTexts)
        {
            await using var command = dataSource.CreateCommand(
                $"SELECT count(DISTINCT document_id) FROM {DocumentTermConfiguration.TableName} WHERE lexeme IN ({SearchSql.QueryLexemes})");
            command.Parameters.AddWithValue("query", text);
            matched.Add(Convert.ToDouble(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture));
        }

        matched.Sort();
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

                for (var i = 0; i < Math.Min(5, queryCount); i++)
                {
                    await run(i);
                }

                var latency = new Latency();
                var returned = 0L;
                for (var i = 0; i < queryCount; i++)
                {
                    var watch = Stopwatch.StartNew();
                    returned += await run(i);
                    latency.Add(watch.Elapsed);
                    task.Increment(1);
                }

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
        var median = matched[matched.Count / 2];
        var p95 = matched[(int)Math.Min(matched.Count - 1, Math.Ceiling(matched.Count * 0.95) - 1)];
        console.MarkupLine(Markup.Escape($"Documents the keyword leg scores per query: median {median:N0}, p95 {p95:N0} of {count:N0}."));

        var report = new ScaleReport(count, postings, queryCount, load.Elapsed.TotalSeconds, median, p95, machine, results);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "scale", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "scale", ["method", "p50_ms", "p95_ms", "rows_returned", "plan"],
                results.Select(r => (IReadOnlyList<object?>)[r.Method, r.P50Ms, r.P95Ms, r.RowsReturned, r.Plan]), cancellationToken));
        return 0;
    }
}

public sealed record ScaleResult(string Method, double P50Ms, double P95Ms, double RowsReturned, string Plan);

public sealed record ScaleReport(int Documents, long Postings, int Queries, double LoadSeconds, double KeywordMatchesMedian, double KeywordMatchesP95,
    MachineInfo Machine, IReadOnlyList<ScaleResult> Methods);
