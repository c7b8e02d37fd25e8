using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson01;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// The server stops one of the lesson's statements: statement_timeout runs out or an administrator cancels it (57014),
/// the disk is full (53100), memory runs out (53200). An event trigger in the test's own database stands in the way of
/// lesson 01's CREATE TABLE: it sleeps (so the real statement_timeout fires on the lesson's statement), or raises the
/// SQLSTATE itself, since a full disk or an exhausted server cannot sensibly be provoked; the error then reaches the
/// lesson through the same path a real one would. In-process and as the built lesson's process.
/// </summary>
public class ServerStopsStatementTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Puts <paramref name="body"/> (PL/pgSQL) in front of every CREATE TABLE in the test database until disposed.</summary>
    private async Task<IAsyncDisposable> BeforeCreateTableAsync(string body)
    {
        await database.ExecuteAsync($"""
            CREATE OR REPLACE FUNCTION public.before_create_table() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$;
            CREATE EVENT TRIGGER before_create_table ON ddl_command_start WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION public.before_create_table();
            """);
        return new Cleanup(() => database.ExecuteAsync(
            $"DROP EVENT TRIGGER IF EXISTS before_create_table; DROP FUNCTION IF EXISTS public.before_create_table(); ALTER DATABASE \"{database.Name}\" RESET statement_timeout"));
    }

    private async Task AssertBothWaysAsync(int exitCode, params string[] phrases)
    {
        var inProcess = await LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings);
        var process = await LessonProcess.RunLessonAsync("01", new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString });

        foreach (var (exit, output, transcript) in new[] { (inProcess.ExitCode, inProcess.Output, inProcess.Transcript), (process.ExitCode, process.Output, process.Transcript) })
        {
            await AssertExplained(exitCode, exit, output, transcript, phrases);
        }
    }

    private async Task AssertExplained(int expected, int exit, string output, LessonTranscript? transcript, string[] phrases)
    {
        Assert.True(exit == expected, $"exit {exit}:\n{output}");
        foreach (var phrase in phrases)
        {
            Assert.True(OneSentence.Flat(output).Contains(phrase, StringComparison.Ordinal), $"\"{phrase}\" not in:\n{output}");
        }

        // The failing step was the table's creation: nothing was written.
        Assert.NotNull(transcript);
        Assert.Equal("create-table", transcript.Steps[^1].Id);
        Assert.False(transcript.Completed);
        OneSentence.AssertNoCrash(output);
        Assert.Null(await database.ScalarAsync<string>("SELECT to_regclass('lesson01.documents')::text"));
    }

    [Fact]
    public async Task A_statement_over_the_databases_statement_timeout_is_explained_exit_14()
    {
        await using (await BeforeCreateTableAsync("PERFORM pg_sleep(5);"))
        {
            await database.ExecuteAsync($"ALTER DATABASE \"{database.Name}\" SET statement_timeout = '500ms'");

            await AssertBothWaysAsync(ExitCodes.StatementStopped,
                "stopped a statement (canceling statement due to statement timeout): statement_timeout or lock_timeout ran out",
                $"ALTER ROLE {database.ConnectionString.Username} SET statement_timeout = '5min'",
                "the statement was rolled back");
        }
    }

    [Fact]
    public async Task A_statement_an_administrator_cancels_is_explained_exit_14()
    {
        await using (await BeforeCreateTableAsync("PERFORM pg_sleep(60);"))
        {
            var console = new TestConsole().Width(160);
            var transcript = new LessonTranscript();
            var run = LessonHost.RunAsync<EfCoreBasicsLesson>([], new LessonHostOptions { Console = console, Settings = database.Settings, Interactive = false, Transcript = transcript }, Ct);

            // The administrator's pg_cancel_backend, aimed at the lesson's CREATE TABLE while the trigger holds it.
            var cancelled = false;
            for (var i = 0; i < 600 && !cancelled && !run.IsCompleted; i++)
            {
                cancelled = await database.ScalarAsync<bool>(
                    "SELECT coalesce(bool_or(pg_cancel_backend(pid)), false) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'CREATE TABLE%'");
                await Task.Delay(cancelled ? 0 : 100, Ct);
            }

            Assert.True(cancelled, console.Output);
            var exit = await run.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            await AssertExplained(ExitCodes.StatementStopped, exit, console.Output, transcript,
                ["stopped a statement (canceling statement due to user request)", "or an administrator cancelled it"]);
        }
    }

    [Fact]
    public async Task Disk_full_raised_by_the_server_through_an_event_trigger_is_explained_exit_12()
    {
        await using (await BeforeCreateTableAsync("RAISE EXCEPTION 'could not extend file \"base/16384/16385\": No space left on device' USING ERRCODE = 'disk_full';"))
        {
            await AssertBothWaysAsync(ExitCodes.ServerOutOfResources,
                "is out of disk space (could not extend file \"base/16384/16385\": No space left on device): free space on the server's data disk",
                "the statement was rolled back");
        }
    }

    [Fact]
    public async Task Out_of_memory_raised_by_the_server_through_an_event_trigger_is_explained_exit_12()
    {
        await using (await BeforeCreateTableAsync("RAISE EXCEPTION 'out of memory' USING ERRCODE = 'out_of_memory';"))
        {
            await AssertBothWaysAsync(ExitCodes.ServerOutOfResources,
                "ran out of memory (out of memory): close other sessions, lower work_mem or maintenance_work_mem");
        }
    }

    private sealed class Cleanup(Func<Task> action) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await action();
    }
}
