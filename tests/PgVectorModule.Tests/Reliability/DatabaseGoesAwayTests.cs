using PgVectorModule.Data;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// The database stops while a lesson runs. Each test starts a PostgreSQL cluster of its own and stops that one
/// (the shared test server is never touched).
/// </summary>
public class DatabaseGoesAwayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Stopped_during_ingestion_the_lesson_says_so_in_one_paragraph_exit_2_and_leaves_no_rows()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct);
        var console = new TestConsole().Width(160);
        // Uncached, so the corpus is still being embedded when the server stops (from the embedding cache it loads at once).
        var settings = cluster.Settings with { Embeddings = cluster.Settings.Embeddings with { Cache = null } };
        var run = LessonHost.RunAsync<VectorSearchLesson>([], new LessonHostOptions { Console = console, Settings = settings, Interactive = false }, Ct);

        // The corpus is being embedded: the table exists, empty, and the COPY has not started.
        await WaitForAsync(console, @"embedding and loading \d+ documents: [1-9]\d?%", run);
        await cluster.StopAsync(Ct);
        var exit = await run.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.True(exit == ExitCodes.DatabaseUnavailable, console.Output);
        Assert.Contains($"Cannot reach PostgreSQL at 127.0.0.1:{cluster.Port}", console.Output, StringComparison.Ordinal);
        Assert.Contains("scripts/db.sh up", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", console.Output, StringComparison.Ordinal);
        Assert.Contains("the server closed the connection", console.Output, StringComparison.Ordinal);

        // Back up: nothing half-written (COPY is one transaction and never committed).
        await cluster.StartServerAsync(Ct);
        await using var connection = new NpgsqlConnection(cluster.Settings.ConnectionString().ConnectionString);
        await connection.OpenAsync(Ct);
        await using var count = new NpgsqlCommand("SELECT count(*) FROM lesson05.vector_documents", connection);
        Assert.Equal(0L, await count.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task Stopped_while_queries_run_the_lesson_says_so_exit_2_without_a_stack_trace()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct);
        var console = new TestConsole().Width(160);
        var run = LessonHost.RunAsync<VectorSearchLesson>([], new LessonHostOptions { Console = console, Settings = cluster.Settings, Interactive = false }, Ct);

        await WaitForAsync(console, "Embed the question", run);
        await cluster.StopAsync(Ct);
        var exit = await run.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        // Either the stop landed mid-query or before the next one: both are the same one paragraph.
        Assert.True(exit == ExitCodes.DatabaseUnavailable, console.Output);
        Assert.Contains($"Cannot reach PostgreSQL at 127.0.0.1:{cluster.Port}", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", console.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_EnableRetryOnFailure_a_query_outlives_a_restart_and_without_it_fails_as_unavailable()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct);
        var connectionString = cluster.Settings.ConnectionString();
        connectionString.Timeout = 2;
        await cluster.StopAsync(Ct);

        // Without retries: the failure is the preflight's "cannot reach", exit code 2.
        await using (var plain = new CountingContext(new DbContextOptionsBuilder<CountingContext>().UseNpgsql(connectionString.ConnectionString).Options))
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => plain.Database.SqlQueryRaw<int>("SELECT 1 AS \"Value\"").SingleAsync(Ct));
            Assert.Equal(ExitCodes.DatabaseUnavailable, DatabaseProblems.Explain(error, cluster.Settings.DatabaseTarget())?.ExitCode);
        }

        // With retries: the server comes back within the retry window, and the same query succeeds.
        var restart = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1.5), Ct);
            await cluster.StartServerAsync(Ct);
        }, Ct);
        await using var retrying = new CountingContext(new DbContextOptionsBuilder<CountingContext>()
            .UseNpgsql(connectionString.ConnectionString, o => o.EnableRetryOnFailure(maxRetryCount: 10, maxRetryDelay: TimeSpan.FromSeconds(1), errorCodesToAdd: null))
            .Options);
        var value = await retrying.Database.SqlQueryRaw<int>("SELECT 1 AS \"Value\"").SingleAsync(Ct);
        await restart;

        Assert.Equal(1, value);
    }

    /// <summary>Waits until the output matches <paramref name="text"/> (a regular expression).</summary>
    private static async Task WaitForAsync(TestConsole console, string text, Task run)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (!System.Text.RegularExpressions.Regex.IsMatch(Read(console), text))
        {
            Assert.False(run.IsCompleted, $"The lesson ended before \"{text}\":\n{Read(console)}");
            Assert.True(DateTime.UtcNow < deadline, $"No \"{text}\" within two minutes:\n{Read(console)}");
            await Task.Delay(10, Ct);
        }
    }

    private static string Read(TestConsole console)
    {
        // The lesson writes while the test reads; a read that races a write is simply tried again.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return console.Output;
            }
            catch (Exception) when (attempt < 5)
            {
            }
        }
    }

    private sealed class CountingContext(DbContextOptions<CountingContext> options) : DbContext(options);
}
