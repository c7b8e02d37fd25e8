using System.Diagnostics;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// SIGTERM (kill, an IDE's stop button, CI cancellation, docker stop) and SIGHUP (a closed terminal, a dropped SSH
/// session) stop a lesson and the bench as Ctrl+C does: the work unwinds, and the process exits 130 with one line.
/// Lesson 08, which starts servers, is checked for what it leaves behind in Lesson08Tests.
/// </summary>
public class StopSignalTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("TERM")]
    [InlineData("HUP")]
    public async Task A_lesson_waiting_on_the_embeddings_server_stops_with_130(string signal)
    {
        await using var silent = SilentServer.Start();
        using var process = LessonProcess.StartLesson("05", new Dictionary<string, string>
        {
            ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
            ["OPENAI_API_KEY"] = EmbeddingServerScenario.Key,
            ["OPENAI_BASE_URL"] = $"http://127.0.0.1:{silent.Port}/v1",
        });
        await WaitForRequestAsync(silent, process);

        var signalled = Stopwatch.StartNew();
        await LessonProcess.SignalAsync(process, signal);
        var result = await LessonProcess.WaitAsync(process, TimeSpan.FromSeconds(30));

        Assert.True(result.ExitCode == ExitCodes.Cancelled, $"exit {result.ExitCode}:\n{result.Output}");
        Assert.True(signalled.Elapsed < TimeSpan.FromSeconds(10), $"took {signalled.Elapsed} to stop");
        Assert.Contains("Cancelled. Nothing half-done was committed.", result.Text, StringComparison.Ordinal);
        Assert.False(Assert.IsType<PgVectorModule.Lessons.LessonTranscript>(result.Transcript).Completed);
        OneSentence.AssertNoCrash(result.Output);
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("HUP")]
    public async Task The_bench_waiting_on_the_embeddings_server_stops_with_130(string signal)
    {
        var folder = Directory.CreateTempSubdirectory("bench-signal-").FullName;
        try
        {
            var dataset = Path.Combine(folder, "dataset");
            Directory.CreateDirectory(Path.Combine(dataset, "qrels"));
            await File.WriteAllTextAsync(Path.Combine(dataset, "corpus.jsonl"), """{"_id": "a", "title": "A", "text": "Vectors in PostgreSQL."}""" + "\n", Ct);
            await File.WriteAllTextAsync(Path.Combine(dataset, "queries.jsonl"), """{"_id": "q", "text": "vectors"}""" + "\n", Ct);
            await File.WriteAllTextAsync(Path.Combine(dataset, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq\ta\t1\n", Ct);
            await using var silent = SilentServer.Start();
            using var process = LessonProcess.StartBench(new Dictionary<string, string>
                {
                    ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
                    ["OPENAI_API_KEY"] = EmbeddingServerScenario.Key,
                    ["OPENAI_BASE_URL"] = $"http://127.0.0.1:{silent.Port}/v1",
                },
                "eval", "--dataset", dataset, "--output", Path.Combine(folder, "out"), "--cache", Path.Combine(folder, "cache"), "--throughput-sample", "0");
            await WaitForRequestAsync(silent, process);

            await LessonProcess.SignalAsync(process, signal);
            var result = await LessonProcess.WaitAsync(process, TimeSpan.FromSeconds(30));

            Assert.True(result.ExitCode == ExitCodes.Cancelled, $"exit {result.ExitCode}:\n{result.Output}");
            Assert.Contains("Cancelled.", result.Text, StringComparison.Ordinal);
            OneSentence.AssertNoCrash(result.Output);
            Assert.Null(await database.ScalarAsync<string>("SELECT to_regclass('bench_eval.vector_documents')::text"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task WaitForRequestAsync(SilentServer silent, Process process)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (silent.Accepted == 0)
        {
            Assert.False(process.HasExited, "The process ended before it sent a request.");
            Assert.True(DateTime.UtcNow < deadline, "No request within two minutes.");
            await Task.Delay(20, Ct);
        }
    }
}
