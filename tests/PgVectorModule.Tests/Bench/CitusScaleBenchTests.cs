using System.Text.Json;
using PgVectorModule.Bench;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>
/// scale --citus end to end on a small size: a Citus cluster the bench starts (PostgreSQL 18 with citus and pgvector,
/// see <see cref="CitusBuild"/>) beside one server's tables, two sizes, a tiny BEIR folder for the statistics'
/// quality, and no node left running afterwards.
/// </summary>
public sealed class CitusScaleBenchTests(TestDatabase database, CitusBuild citus) : IClassFixture<TestDatabase>, IClassFixture<CitusBuild>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("bench-citus-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private ModuleSettings Settings => database.Settings with { Operations = CitusBuild.Settings };

    private async Task<(int Exit, string Output)> RunAsync(params string[] args)
    {
        var console = new TestConsole().Width(250);
        var exit = await BenchApp.RunAsync([.. args, "--output", Path.Combine(_folder, "out"), "--cache", Path.Combine(_folder, "cache")],
            new BenchHostOptions { Console = console, Settings = Settings }, TestContext.Current.CancellationToken);
        return (exit, console.Output);
    }

    [Fact]
    public async Task Measures_routed_and_fanned_out_search_at_two_sizes_against_one_server_and_stops_its_cluster()
    {
        citus.Require();
        var texts = Path.Combine(_folder, "texts.txt");
        await File.WriteAllLinesAsync(texts, SampleCorpus.All.Take(60).Select(d => d.TextToEmbed), TestContext.Current.CancellationToken);
        var dataset = WriteDataset();

        var (exit, output) = await RunAsync("scale", "--citus", "--texts", texts, "--rows", "60", "--from-rows", "30", "--tenants", "3", "--queries", "4",
            "--dataset", dataset);

        Assert.True(exit == ExitCodes.Success, output);
        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_folder, "out", "scale-citus.json"), TestContext.Current.CancellationToken));
        var root = report.RootElement;
        Assert.Equal([30, 60], root.GetProperty("sizes").EnumerateArray().Select(s => s.GetInt32()));
        Assert.Equal(2, root.GetProperty("workers").GetInt32());
        var methods = root.GetProperty("methods").EnumerateArray().ToList();
        Assert.Equal(16, methods.Count);
        foreach (var size in new[] { 30, 60 })
        {
            var ofSize = methods.Where(m => m.GetProperty("passages").GetInt32() == size).ToList();
            Assert.Equal(["one server", "one server", "one server", "one server", "Citus", "Citus", "Citus", "Citus"], ofSize.Select(m => m.GetProperty("where").GetString()));
            // 10 passages per tenant even at 30: every search, routed or not, returns its 10.
            Assert.All(ofSize, m => Assert.Equal(10.0, m.GetProperty("rowsReturned").GetDouble()));
            Assert.All(ofSize, m => Assert.True(m.GetProperty("p50Ms").GetDouble() > 0 && m.GetProperty("p95Ms").GetDouble() >= m.GetProperty("p50Ms").GetDouble()));
            string Plan(string method) => ofSize.Single(m => m.GetProperty("where").GetString() == "Citus" && m.GetProperty("method").GetString() == method).GetProperty("plan").GetString()!;
            // Fanned out: a task for each of the 32 shards; routed: one task, on the tenant's shard.
            Assert.StartsWith("32 tasks: ", Plan("vector, all tenants"), StringComparison.Ordinal);
            Assert.StartsWith("1 task: ", Plan("vector, one tenant"), StringComparison.Ordinal);
            Assert.StartsWith("1 task: ", Plan("hybrid RRF, one tenant"), StringComparison.Ordinal);
            // Both legs fanned out: at least a task per shard for each.
            Assert.True(int.Parse(Plan("hybrid RRF, all tenants").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) >= 64, Plan("hybrid RRF, all tenants"));
        }

        Assert.Contains("p50 growth from 30 to 60 passages", output, StringComparison.Ordinal);
        var quality = root.GetProperty("quality").EnumerateArray().ToDictionary(q => q.GetProperty("method").GetString()!);
        Assert.Equal(6, quality.Count);
        // Global statistics are one server's statistics: the same ranking for every query, so the same nDCG.
        Assert.Equal(3, quality["BM25, Citus, global statistics"].GetProperty("sameAsOneServer").GetInt32());
        Assert.Equal(quality["BM25, one server"].GetProperty("ndcgAt10").GetDouble(), quality["BM25, Citus, global statistics"].GetProperty("ndcgAt10").GetDouble(), 1e-9);
        Assert.All(quality.Values, q => Assert.InRange(q.GetProperty("ndcgAt10").GetDouble(), 0, 1));
        Assert.Empty(ServerProcesses.StartedBy("bench", Environment.ProcessId));
    }

    [Fact]
    public async Task A_CITUS_URL_that_does_not_answer_ends_in_one_sentence_and_starts_nothing()
    {
        var texts = Path.Combine(_folder, "texts.txt");
        await File.WriteAllLinesAsync(texts, SampleCorpus.All.Take(10).Select(d => d.TextToEmbed), TestContext.Current.CancellationToken);
        var port = SilentServer.ClosedPort();
        var console = new TestConsole().Width(250);
        var settings = Settings with { Operations = CitusBuild.Settings with { CitusUrl = $"Host=127.0.0.1;Port={port};Username=postgres;Password=x;Database=agent_db;Timeout=3" } };

        var exit = await BenchApp.RunAsync(["scale", "--citus", "--texts", texts, "--rows", "10", "--from-rows", "5", "--queries", "2", "--output", Path.Combine(_folder, "out"),
            "--cache", Path.Combine(_folder, "cache")], new BenchHostOptions { Console = console, Settings = settings }, TestContext.Current.CancellationToken);

        Assert.Equal(ExitCodes.DatabaseUnavailable, exit);
        OneSentence.AssertNoCrash(console.Output);
        Assert.Contains($"CITUS_URL (127.0.0.1:{port}) does not answer", OneSentence.Flat(console.Output), StringComparison.Ordinal);
        // Checked before any work: nothing embedded, no cluster started.
        Assert.DoesNotContain("embedded now", console.Output, StringComparison.Ordinal);
        Assert.Empty(ServerProcesses.StartedBy("bench", Environment.ProcessId));
        Assert.False(File.Exists(Path.Combine(_folder, "out", "scale-citus.json")));
    }

    [Fact]
    public async Task A_dataset_without_the_judgments_asked_for_stops_the_run_before_any_work()
    {
        var texts = Path.Combine(_folder, "texts.txt");
        await File.WriteAllLinesAsync(texts, SampleCorpus.All.Take(10).Select(d => d.TextToEmbed), TestContext.Current.CancellationToken);
        var dataset = WriteDataset();
        File.Delete(Path.Combine(dataset, "qrels", "test.tsv"));

        var (exit, output) = await RunAsync("scale", "--citus", "--texts", texts, "--rows", "10", "--from-rows", "5", "--queries", "2", "--dataset", dataset);

        Assert.Equal(ExitCodes.InvalidInput, exit);
        OneSentence.AssertNoCrash(output);
        Assert.Contains("holds no .tsv file; pass one with --qrels FILE", OneSentence.Flat(output), StringComparison.Ordinal);
        Assert.DoesNotContain("embedded now", output, StringComparison.Ordinal);
        Assert.DoesNotContain("starting a Citus coordinator", output, StringComparison.Ordinal);
        Assert.Empty(ServerProcesses.StartedBy("bench", Environment.ProcessId));
    }

    /// <summary>Five passages, three judged queries: enough for BM25 with per-tenant statistics to rank differently.</summary>
    private string WriteDataset()
    {
        var dataset = Path.Combine(_folder, "dataset");
        Directory.CreateDirectory(Path.Combine(dataset, "qrels"));
        File.WriteAllLines(Path.Combine(dataset, "corpus.jsonl"),
        [
            """{"_id": "hnsw", "title": "HNSW graphs", "text": "Hierarchical navigable small world graphs find approximate nearest neighbours quickly."}""",
            """{"_id": "gin", "title": "GIN indexes", "text": "A GIN index over a tsvector makes PostgreSQL full-text search fast."}""",
            """{"_id": "copy", "title": "Bulk loading", "text": "Binary COPY writes many rows far faster than one INSERT per row."}""",
            """{"_id": "bread", "title": "Baking bread", "text": "Flour, water, salt and yeast, kneaded and left to rise overnight."}""",
            """{"_id": "tides", "title": "Ocean tides", "text": "The moon's gravity pulls the oceans into two bulges that follow it around the earth."}""",
        ]);
        File.WriteAllLines(Path.Combine(dataset, "queries.jsonl"),
        [
            """{"_id": "q1", "text": "approximate nearest neighbour graph index"}""",
            """{"_id": "q2", "text": "how to load many rows quickly"}""",
            """{"_id": "q3", "text": "why does the sea rise and fall"}""",
        ]);
        File.WriteAllText(Path.Combine(dataset, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq1\thnsw\t2\nq1\tgin\t1\nq2\tcopy\t1\nq3\ttides\t1\n");
        return dataset;
    }
}
