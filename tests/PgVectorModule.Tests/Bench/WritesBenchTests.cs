using System.Text.Json;
using PgVectorModule.Bench;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>writes on a small table for a second a run: every run commits, and writers of their own documents are never refused.</summary>
public sealed class WritesBenchTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("bench-out-").FullName;

    public void Dispose() => Directory.Delete(_output, recursive: true);

    [Fact]
    public async Task Writes_times_each_isolation_level_with_and_without_the_triggers_and_no_writer_is_refused()
    {
        var console = new TestConsole().Width(200);
        var exit = await BenchApp.RunAsync(["writes", "--documents", "300", "--writers", "3", "--seconds", "1", "--output", _output],
            new BenchHostOptions { Console = console, Settings = database.Settings }, TestContext.Current.CancellationToken);

        Assert.True(exit == ExitCodes.Success, console.Output);
        Assert.True(File.Exists(Path.Combine(_output, "writes.csv")));
        var report = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_output, "writes.json"), TestContext.Current.CancellationToken)).RootElement;
        var runs = report.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(
            [(false, "READ COMMITTED", 1), (false, "READ COMMITTED", 3), (false, "REPEATABLE READ", 1), (false, "REPEATABLE READ", 3),
             (true, "READ COMMITTED", 1), (true, "READ COMMITTED", 3), (true, "REPEATABLE READ", 1), (true, "REPEATABLE READ", 3)],
            runs.Select(r => (r.GetProperty("triggers").GetBoolean(), r.GetProperty("isolation").GetString(), r.GetProperty("writers").GetInt32())));
        Assert.All(runs, r => Assert.True(r.GetProperty("committed").GetInt32() > 0 && r.GetProperty("p50Ms").GetDouble() > 0, r.ToString()));
        // Each writer inserts new documents and updates only its own: nothing to refuse, with the triggers too.
        Assert.All(runs, r => Assert.True(r.GetProperty("deadlocks").GetInt32() == 0 && r.GetProperty("serializationFailures").GetInt32() == 0, r.ToString()));
        // With the triggers, the run left a row of changes per write statement; the fold makes them one.
        Assert.All(runs, r => Assert.Equal(r.GetProperty("triggers").GetBoolean() ? JsonValueKind.Object : JsonValueKind.Null, r.GetProperty("reads").ValueKind));
        Assert.All(runs.Where(r => r.GetProperty("triggers").GetBoolean()).Select(r => r.GetProperty("reads")), reads =>
        {
            Assert.True(reads.GetProperty("rows").GetInt64() > 2, reads.ToString());
            Assert.Equal(1, reads.GetProperty("foldedRows").GetInt64());
            Assert.True(reads.GetProperty("p50Ms").GetDouble() > 0 && reads.GetProperty("foldedP50Ms").GetDouble() > 0, reads.ToString());
        });
    }
}
