using System.Text.Json;
using PgVectorModule.Bench;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>The eval command end to end, on a tiny BEIR folder the test writes, against a database of its own.</summary>
public sealed class EvalBenchTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("bench-eval-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Dataset => Path.Combine(_folder, "dataset");

    private void WriteDataset()
    {
        Directory.CreateDirectory(Path.Combine(Dataset, "qrels"));
        File.WriteAllLines(Path.Combine(Dataset, "corpus.jsonl"),
        [
            """{"_id": "hnsw", "title": "HNSW graphs", "text": "Hierarchical navigable small world graphs find approximate nearest neighbours quickly."}""",
            """{"_id": "gin", "title": "GIN indexes", "text": "A GIN index over a tsvector makes PostgreSQL full-text search fast."}""",
            """{"_id": "copy", "title": "Bulk loading", "text": "Binary COPY writes many rows far faster than one INSERT per row."}""",
            """{"_id": "bread", "title": "Baking bread", "text": "Flour, water, salt and yeast, kneaded and left to rise overnight."}""",
            """{"_id": "tides", "title": "Ocean tides", "text": "The moon's gravity pulls the oceans into two bulges that follow it around the earth."}""",
        ]);
        File.WriteAllLines(Path.Combine(Dataset, "queries.jsonl"),
        [
            """{"_id": "q1", "text": "approximate nearest neighbour graph index"}""",
            """{"_id": "q2", "text": "how to load many rows quickly"}""",
            """{"_id": "q3", "text": "why does the sea rise and fall"}""",
            """{"_id": "q4", "text": "a query without judgments is skipped"}""",
        ]);
        File.WriteAllText(Path.Combine(Dataset, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq1\thnsw\t2\nq1\tgin\t1\nq2\tcopy\t1\nq3\ttides\t1\n");
    }

    private async Task<(int Exit, string Output)> RunAsync(params string[] args)
    {
        var console = new TestConsole().Width(160);
        var exit = await BenchApp.RunAsync(args, new BenchHostOptions { Console = console, Settings = database.Settings }, TestContext.Current.CancellationToken);
        return (exit, console.Output);
    }

    [Fact]
    public async Task A_title_longer_than_the_column_is_cut_between_characters_and_stored()
    {
        WriteDataset();
        // 254 letters and an emoji: cut at 255 UTF-16 code units, the emoji would be split in two.
        var title = new string('t', 254) + "🐘" + " and more";
        var corpus = Path.Combine(Dataset, "corpus.jsonl");
        await File.AppendAllTextAsync(corpus, JsonSerializer.Serialize(new { _id = "long", title, text = "A document with a long title." }) + "\n", TestContext.Current.CancellationToken);

        var (exit, text) = await RunAsync("eval", "--dataset", Dataset, "--output", Path.Combine(_folder, "out"), "--cache", Path.Combine(_folder, "cache"), "--throughput-sample", "0");

        Assert.True(exit == ExitCodes.Success, text);
        // The column counts characters as PostgreSQL does (code points): the emoji fits in the 255th.
        Assert.Equal(new string('t', 254) + "🐘", await database.ScalarAsync<string>("SELECT title FROM bench_eval.vector_documents WHERE source = 'long'"));
    }

    [Fact]
    public async Task Eval_scores_every_method_and_writes_json_and_csv()
    {
        WriteDataset();
        var output = Path.Combine(_folder, "out");
        var (exit, text) = await RunAsync("eval", "--dataset", Dataset, "--output", output, "--cache", Path.Combine(_folder, "cache"), "--throughput-sample", "2");

        Assert.True(exit == ExitCodes.Success, text);
        Assert.Contains("3 judged queries", text, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(output, "eval.csv")));
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "eval.json"), TestContext.Current.CancellationToken));
        var root = json.RootElement;
        Assert.Equal(5, root.GetProperty("documents").GetInt32());
        Assert.Equal(3, root.GetProperty("queries").GetInt32());
        Assert.Equal(5, root.GetProperty("corpusEmbedding").GetProperty("embedded").GetInt32());
        Assert.True(root.GetProperty("machine").GetProperty("cores").GetInt32() >= 1);
        // The local model is timed both ways it reads long texts, the configured way (chunk) first.
        var throughput = root.GetProperty("embeddingThroughput").EnumerateArray().ToList();
        Assert.Equal(["ChunkAndAverage", "Truncate"], throughput.Select(t => t.GetProperty("longText").GetString()));
        Assert.All(throughput, t => Assert.Equal(2, t.GetProperty("embedded").GetInt32()));
        Assert.All(throughput, t => Assert.True(t.GetProperty("documentsPerSecond").GetDouble() > 0 && t.GetProperty("tokensPerSecond").GetDouble() > 0));
        var methods = root.GetProperty("methods").EnumerateArray().ToList();
        Assert.Equal(["keyword (BM25)", "vector exact", "vector HNSW", $"hybrid weighted ({HybridOptions.DefaultVectorWeight:0.0#} vector)", $"hybrid RRF (k = {HybridOptions.DefaultRrfK})"],
            methods.Select(m => m.GetProperty("method").GetString()));
        // Each vector row's plan is what its name says, even on five documents, where the planner alone would scan them all.
        Assert.Equal("seq scan", methods.Single(m => m.GetProperty("method").GetString() == "vector exact").GetProperty("plan").GetString());
        Assert.Equal("HNSW", methods.Single(m => m.GetProperty("method").GetString() == "vector HNSW").GetProperty("plan").GetString());
        // The reference figure belongs to SciFact alone: this folder is not SciFact, so none is printed.
        Assert.DoesNotContain("as published", text, StringComparison.Ordinal);
        foreach (var method in methods)
        {
            foreach (var metric in new[] { "ndcgAt10", "recallAt100", "mrrAt10" })
            {
                var value = method.GetProperty(metric).GetDouble();
                Assert.InRange(value, 0, 1);
            }

            Assert.True(method.GetProperty("p50Ms").GetDouble() > 0);
            Assert.True(method.GetProperty("p95Ms").GetDouble() >= method.GetProperty("p50Ms").GetDouble());
        }

        // Five documents: every method that sees them all finds every relevant one within 100.
        var exact = methods.Single(m => m.GetProperty("method").GetString() == "vector exact");
        Assert.Equal(1.0, exact.GetProperty("recallAt100").GetDouble(), 1e-9);
        Assert.True(exact.GetProperty("ndcgAt10").GetDouble() > 0.5);

        // A second run reads every vector from the cache.
        (exit, text) = await RunAsync("eval", "--dataset", Dataset, "--output", output, "--cache", Path.Combine(_folder, "cache"), "--throughput-sample", "2");
        Assert.True(exit == ExitCodes.Success, text);
        Assert.Contains("all 5 from the cache", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Eval_with_arctic_embeds_queries_after_its_instruction_and_caches_them_apart_from_documents()
    {
        WriteDataset();
        var cache = Path.Combine(_folder, "cache");
        var console = new TestConsole().Width(160);
        var settings = ModuleSettings.From(name => name switch
        {
            "DATABASE_URL" => database.ConnectionString.ConnectionString,
            "LOCAL_EMBEDDING_MODEL" => "snowflake-arctic-embed-xs",
            _ => null,
        });

        var exit = await BenchApp.RunAsync(["eval", "--dataset", Dataset, "--output", Path.Combine(_folder, "out"), "--cache", cache, "--throughput-sample", "0"],
            new BenchHostOptions { Console = console, Settings = settings }, TestContext.Current.CancellationToken);

        Assert.True(exit == ExitCodes.Success, console.Output);
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_folder, "out", "eval.json"), TestContext.Current.CancellationToken));
        Assert.Equal("snowflake-arctic-embed-xs (384 dimensions, local)", json.RootElement.GetProperty("model").GetString());
        // One folder of the library's embedding cache for the model (512 word pieces a sequence), in the dataset's part of it,
        // keyed by the text the model read: each query with the instruction before it, each document as it is; never a
        // query's bare text.
        using var arctic = TextEmbedder.Create(EmbeddedTexts.WithCache(settings.Embeddings, cache, EvalCommand.CacheCollection(Dataset)));
        var file = arctic.Cache!;
        Assert.StartsWith(Path.Combine(cache, "eval-"), file.Folder, StringComparison.Ordinal);
        Assert.Equal(5 + 3, file.Count);
        const string question = "why does the sea rise and fall";
        Assert.True(file.TryGet("Represent this sentence for searching relevant passages: " + question, out _));
        Assert.False(file.TryGet(question, out _));
        Assert.True(file.TryGet("Ocean tides. The moon's gravity pulls the oceans into two bulges that follow it around the earth.", out _));
        var exact = json.RootElement.GetProperty("methods").EnumerateArray().Single(m => m.GetProperty("method").GetString() == "vector exact");
        Assert.Equal(1.0, exact.GetProperty("recallAt100").GetDouble(), 1e-9);
        Assert.True(exact.GetProperty("ndcgAt10").GetDouble() > 0.5);
    }

    [Fact]
    public async Task A_malformed_dataset_ends_in_one_sentence_naming_file_and_line()
    {
        WriteDataset();
        await File.AppendAllTextAsync(Path.Combine(Dataset, "queries.jsonl"), "not json\n", TestContext.Current.CancellationToken);
        var (exit, text) = await RunAsync("eval", "--dataset", Dataset, "--output", Path.Combine(_folder, "out"));
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("queries.jsonl line 5 is not valid JSON", text.Replace("\n", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_commands_and_options_are_refused()
    {
        var (exit, text) = await RunAsync("evaluate");
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("Unknown command 'evaluate'", text, StringComparison.Ordinal);
        (exit, text) = await RunAsync("eval", "--dataset", Dataset, "--limit", "5");
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("Unknown option --limit", text, StringComparison.Ordinal);
    }
}
