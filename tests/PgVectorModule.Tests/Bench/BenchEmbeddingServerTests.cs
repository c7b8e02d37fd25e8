using PgVectorModule.Bench;
using PgVectorModule.Embeddings;
using PgVectorModule.Tests.Infrastructure;
using PgVectorModule.Tests.Reliability;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>
/// eval and ann --texts / --sdk-docs with OpenAI embeddings and a server that cannot be reached: one sentence, exit 7,
/// in-process and as the built bench's process, and nothing written to the database.
/// </summary>
public sealed class BenchEmbeddingServerTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("bench-unreachable-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Dataset()
    {
        var dataset = Path.Combine(_folder, "dataset");
        Directory.CreateDirectory(Path.Combine(dataset, "qrels"));
        File.WriteAllLines(Path.Combine(dataset, "corpus.jsonl"),
        [
            """{"_id": "hnsw", "title": "HNSW graphs", "text": "Navigable small world graphs find approximate nearest neighbours."}""",
            """{"_id": "copy", "title": "Bulk loading", "text": "Binary COPY writes many rows far faster than one INSERT per row."}""",
        ]);
        File.WriteAllLines(Path.Combine(dataset, "queries.jsonl"), ["""{"_id": "q1", "text": "approximate nearest neighbour graph"}"""]);
        File.WriteAllText(Path.Combine(dataset, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq1\thnsw\t1\n");
        return dataset;
    }

    private string Texts()
    {
        var path = Path.Combine(_folder, "texts.txt");
        File.WriteAllLines(path, Enumerable.Range(0, 40).Select(i => $"text number {i} about vectors"));
        return path;
    }

    private string[] Command(string command) => command switch
    {
        "eval" => ["eval", "--dataset", Dataset(), "--output", Path.Combine(_folder, "out"), "--cache", Path.Combine(_folder, "cache"), "--throughput-sample", "0"],
        "ann --texts" => ["ann", "--texts", Texts(), "--queries", "5", "--output", Path.Combine(_folder, "out"), "--cache", Path.Combine(_folder, "cache")],
        _ => ["ann", "--sdk-docs", "--queries", "5", "--output", Path.Combine(_folder, "out"), "--cache", Path.Combine(_folder, "cache")],
    };

    private async Task AssertNothingLoadedAsync()
    {
        Assert.Null(await database.ScalarAsync<string>("SELECT to_regclass('bench_eval.vector_documents')::text"));
        Assert.Null(await database.ScalarAsync<string>("SELECT to_regclass('bench_ann.vector_documents')::text"));
        Assert.False(Directory.Exists(Path.Combine(_folder, "cache")) && Directory.EnumerateFiles(Path.Combine(_folder, "cache"), "*" + EmbeddingCache.SegmentExtension, SearchOption.AllDirectories).Any(f => new FileInfo(f).Length > 0),
            "an embedding cache was written");
    }

    [Theory]
    [InlineData("eval", EmbeddingServerFault.Refused)]
    [InlineData("eval", EmbeddingServerFault.NeverAnswers)]
    [InlineData("ann --texts", EmbeddingServerFault.Unresolvable)]
    [InlineData("ann --texts", EmbeddingServerFault.TlsToPlainHttp)]
    [InlineData("ann --sdk-docs", EmbeddingServerFault.Refused)]
    public async Task In_process_the_bench_names_the_server_and_exits_7(string command, EmbeddingServerFault fault)
    {
        await using var scenario = EmbeddingServerScenario.Create(fault);
        var console = new TestConsole().Width(160);

        // ann works in 384 dimensions, so the OpenAI model is asked for those.
        var exit = await BenchApp.RunAsync(Command(command),
            new BenchHostOptions { Console = console, Settings = scenario.Settings(database.ConnectionString.ConnectionString, dimensions: 384) },
            TestContext.Current.CancellationToken);

        scenario.AssertExplained(exit, console.Output);
        await AssertNothingLoadedAsync();
    }

    [Theory]
    [InlineData("eval", EmbeddingServerFault.Refused)]
    [InlineData("ann --texts", EmbeddingServerFault.NeverAnswers)]
    public async Task The_bench_process_prints_one_sentence_and_exits_7(string command, EmbeddingServerFault fault)
    {
        await using var scenario = EmbeddingServerScenario.Create(fault);

        var result = await LessonProcess.RunBenchAsync(scenario.Environment(database.ConnectionString.ConnectionString, dimensions: 384), Command(command));

        scenario.AssertExplained(result.ExitCode, result.Output);
        await AssertNothingLoadedAsync();
    }
}
