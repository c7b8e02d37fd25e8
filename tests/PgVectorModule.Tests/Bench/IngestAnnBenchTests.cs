using System.Text.Json;
using PgVectorModule.Bench;
using PgVectorModule.Configuration;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>ingest and ann on small sizes: they run end to end and write what the docs quote.</summary>
public sealed class IngestAnnBenchTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("bench-out-").FullName;

    public void Dispose() => Directory.Delete(_output, recursive: true);

    private async Task<JsonElement> RunAsync(string name, params string[] args)
    {
        var console = new TestConsole().Width(160);
        var exit = await BenchApp.RunAsync([.. args, "--output", _output], new BenchHostOptions { Console = console, Settings = database.Settings },
            TestContext.Current.CancellationToken);
        Assert.True(exit == ExitCodes.Success, console.Output);
        Assert.True(File.Exists(Path.Combine(_output, name + ".csv")));
        return JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_output, name + ".json"), TestContext.Current.CancellationToken)).RootElement;
    }

    [Fact]
    public async Task Ingest_writes_the_rows_four_ways_and_builds_both_indexes()
    {
        var report = await RunAsync("ingest", "ingest", "--rows", "300", "--per-row-sample", "30", "--batch", "100");
        var methods = report.GetProperty("methods").EnumerateArray().ToList();
        Assert.Equal(["SaveChanges per row", "AddRange + SaveChanges per batch", "multi-row INSERT", "binary COPY"],
            methods.Select(m => m.GetProperty("method").GetString()));
        Assert.Equal(30, methods[0].GetProperty("rows").GetInt32());
        Assert.All(methods, m => Assert.True(m.GetProperty("rowsPerSecond").GetDouble() > 0));
        Assert.Equal(1.0, methods[3].GetProperty("copySpeedup").GetDouble(), 1e-9);
        Assert.Equal(2, report.GetProperty("indexes").GetArrayLength());
        Assert.All(report.GetProperty("indexes").EnumerateArray(), i => Assert.True(i.GetProperty("indexBytes").GetInt64() > 0));
    }

    [Fact]
    public async Task Ann_sweeps_both_indexes_against_the_exact_answer_and_draws_the_chart()
    {
        var report = await RunAsync("ann", "ann", "--rows", "2000", "--queries", "10");
        var results = report.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(12, results.Count);
        Assert.All(results, r => Assert.InRange(r.GetProperty("recallAt10").GetDouble(), 0, 1));
        // ef_search 320 over 2,000 vectors, and 32 probes over 2 lists, both see (nearly) everything.
        Assert.True(results[5].GetProperty("recallAt10").GetDouble() >= 0.9);
        Assert.Equal(1.0, results[11].GetProperty("recallAt10").GetDouble(), 1e-9);
        var svg = await File.ReadAllTextAsync(Path.Combine(_output, "ann.svg"), TestContext.Current.CancellationToken);
        Assert.StartsWith("<svg", svg, StringComparison.Ordinal);
        Assert.Equal(2, svg.Split("<polyline", StringSplitOptions.None).Length - 1);
    }
}
