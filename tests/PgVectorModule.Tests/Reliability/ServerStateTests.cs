using PgVectorModule.Configuration;
using PgVectorModule.Lessons.Lesson01;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// A server that cannot take the lesson's work: no connection slot left (53300), not accepting connections (57P03),
/// read-only (25006) as a standby or by default_transaction_read_only. Each needs the server configured or restarted,
/// so each test starts a PostgreSQL cluster of its own; the lesson runs in-process and as the built lesson's process.
/// </summary>
public class ServerStateTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task AssertBothWaysAsync(PrivateCluster cluster, string databaseUrl, int exitCode, params string[] phrases)
    {
        var settings = ModuleSettings.From(n => n == "DATABASE_URL" ? databaseUrl : null, "environment");
        var inProcess = await LessonRunner.RunAsync<EfCoreBasicsLesson>(settings);
        var process = await LessonProcess.RunLessonAsync("01", new Dictionary<string, string> { ["DATABASE_URL"] = databaseUrl });

        foreach (var (exit, output) in new[] { (inProcess.ExitCode, inProcess.Output), (process.ExitCode, process.Output) })
        {
            Assert.True(exit == exitCode, $"exit {exit}:\n{output}");
            foreach (var phrase in phrases)
            {
                Assert.True(OneSentence.Flat(output).Contains(phrase, StringComparison.Ordinal), $"\"{phrase}\" not in:\n{output}");
            }

            Assert.Contains($"127.0.0.1:{cluster.Port}", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Step 1", output, StringComparison.Ordinal);
            OneSentence.AssertNoCrash(output);
        }
    }

    [Fact]
    public async Task With_every_connection_slot_taken_the_lesson_names_max_connections_and_its_pool_size_exit_11()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct, "max_connections=5", "superuser_reserved_connections=0");
        var url = cluster.Settings.ConnectionString();
        url.MaxPoolSize = 7;
        // All but one slot held elsewhere: the preflight gets the last one and gives it back, then the lesson needs two
        // at once (its schema lock's and its work's) and the server refuses the second.
        var held = new List<NpgsqlConnection>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(url.ConnectionString) { Pooling = false }.ConnectionString);
                await connection.OpenAsync(Ct);
                held.Add(connection);
            }

            await AssertBothWaysAsync(cluster, url.ConnectionString, ExitCodes.TooManyConnections,
                "has no connection slot left for role 'postgres' (sorry, too many clients already): its max_connections are all in use",
                "this program's pool may open up to 7 (Maximum Pool Size",
                "raise max_connections on the server");
        }
        finally
        {
            foreach (var connection in held)
            {
                await connection.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_standby_that_takes_no_queries_is_not_accepting_connections_exit_2()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct, "hot_standby=off");
        await cluster.BecomeStandbyAsync(Ct);

        await AssertBothWaysAsync(cluster, cluster.Settings.DatabaseUrl, ExitCodes.DatabaseUnavailable,
            "is not accepting connections now (the database system is not accepting connections: Hot standby mode is disabled)",
            "Wait a moment and run again");
    }

    [Fact]
    public async Task A_server_with_default_transaction_read_only_on_is_read_only_exit_13()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct, "default_transaction_read_only=on");

        await AssertBothWaysAsync(cluster, cluster.Settings.DatabaseUrl, ExitCodes.ReadOnlyServer,
            "accepts only reads on this connection (cannot execute CREATE SCHEMA in a read-only transaction): it is a standby (a read replica), or default_transaction_read_only is on",
            "Point DATABASE_URL at the primary");
    }

    [Fact]
    public async Task A_standby_serving_reads_is_read_only_exit_13()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct);
        await cluster.BecomeStandbyAsync(Ct);

        await AssertBothWaysAsync(cluster, cluster.Settings.DatabaseUrl, ExitCodes.ReadOnlyServer,
            "accepts only reads on this connection (cannot execute CREATE SCHEMA in a read-only transaction)",
            "target_session_attrs=read-write");
    }
}
