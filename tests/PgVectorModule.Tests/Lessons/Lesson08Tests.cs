using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using PgVectorModule.Configuration;
using PgVectorModule.Lessons.Operations;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Lessons;

/// <summary>
/// Lesson 08 starts servers (a standby, pgBouncer, recovery clusters) from a primary it copies with pg_basebackup, so its
/// full runs use a private cluster as the primary, never the shared test server. One class: its tests run one at a time.
/// </summary>
public class Lesson08Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Runs_twice_in_process_with_its_own_standby_then_with_one_STANDBY_URL_names_and_leaves_nothing_running()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);

        // Run 1: the lesson makes, uses and stops its own standby.
        var first = await LessonRunner.RunAsync<OperationsLesson>(primary.Settings);
        AssertFullRun(first.ExitCode, first.Output, ownStandby: true);
        Assert.Empty(ServerProcesses.StartedBy("lesson08", Environment.ProcessId));

        // Run 2: a standby the test made is named by STANDBY_URL; the lesson uses it and leaves it running.
        await using var servers = await LocalServers.StartAsync(new OperationsSettings(), await MajorAsync(primary.Settings), needPgBouncer: false, "lesson08test", Ct);
        var standby = await OperationsLesson.MakeStandbyAsync(servers, primary.Settings.ConnectionString(), LocalServers.Port("LESSON08_STANDBY_PORT", null), "given_standby", null, Ct);
        var settings = primary.Settings with { Operations = new OperationsSettings { StandbyUrl = standby.ConnectionString.ConnectionString } };
        var second = await LessonRunner.RunAsync<OperationsLesson>(settings);
        AssertFullRun(second.ExitCode, second.Output, ownStandby: false);
        Assert.Contains("A hot standby: the one STANDBY_URL names", second.Output, StringComparison.Ordinal);
        Assert.Contains("the lesson does not stop it", second.Output, StringComparison.Ordinal);
        Assert.True(await InRecoveryAsync(standby.ConnectionString), "the given standby was stopped or promoted");
        Assert.Empty(ServerProcesses.StartedBy("lesson08", Environment.ProcessId));
    }

    [Fact]
    public async Task Runs_as_a_process_and_leaves_no_server_running()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);

        var result = await LessonProcess.RunAsync(OperationsLesson.Info, primary.Settings.DatabaseUrl, []);

        // A redirected console is 80 columns wide: sentences wrap, so they are compared with their whitespace collapsed.
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        var output = Regex.Replace(result.Output, @"\s+", " ");
        foreach (var sentence in new[]
                 {
                     "Lesson 08 done (14 steps)",
                     "3 of 3 searches ran on the standby; the write check ran on the primary.",
                     "At once on the standby: not found. From the primary, or on the standby after waiting for the write's LSN: found.",
                     "With the standby gone, the searches were answered by the primary.",
                     $"from {OperationsLesson.Clients} clients over at most",
                     "A's SET without LOCAL leaked",
                     "All 6 checks equal",
                     "Recovered to the restore point: 3 rows",
                 })
        {
            Assert.Contains(sentence, output, StringComparison.Ordinal);
        }

        Assert.Empty(ServerProcesses.StartedBy("lesson08", result.ProcessId));
    }

    [Fact]
    public async Task Cancelled_once_its_standby_runs_it_exits_130_and_stops_the_standby()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var console = new TestConsole().Width(160);
        var run = PgVectorModule.Lessons.LessonHost.RunAsync<OperationsLesson>([],
            new PgVectorModule.Lessons.LessonHostOptions { Console = console, Settings = primary.Settings, Interactive = false }, cancel.Token);

        // Wait for the standby's postmaster (not the console: the lesson writes to it while the test would read).
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!ServerProcesses.StartedBy("lesson08", Environment.ProcessId).Any(c => c.Contains("bin/postgres ", StringComparison.Ordinal) && c.Contains("/standby/", StringComparison.Ordinal)))
        {
            Assert.False(run.IsCompleted, "The lesson ended before its standby started.");
            Assert.True(DateTime.UtcNow < deadline, "No standby within three minutes.");
            await Task.Delay(50, Ct);
        }

        await cancel.CancelAsync();
        var exit = await run.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.True(exit == ExitCodes.Cancelled, console.Output);
        Assert.Empty(ServerProcesses.StartedBy("lesson08", Environment.ProcessId));
    }

    [Fact]
    public async Task Standby_routing_searches_go_to_the_standby_writes_to_the_primary_and_back_to_the_primary_when_it_stops()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);
        await using var servers = await LocalServers.StartAsync(new OperationsSettings(), await MajorAsync(primary.Settings), needPgBouncer: false, "lesson08test", Ct);
        var standby = await OperationsLesson.MakeStandbyAsync(servers, primary.Settings.ConnectionString(), LocalServers.Port("LESSON08_STANDBY_PORT", null), "routing_test", null, Ct);
        var both = new NpgsqlConnectionStringBuilder(primary.Settings.ConnectionString().ConnectionString)
        {
            Host = $"127.0.0.1:{primary.Port},127.0.0.1:{standby.ConnectionString.Port}",
            LoadBalanceHosts = true,
        };
        await using var source = new NpgsqlDataSourceBuilder(both.ConnectionString).BuildMultiHost();
        var searches = source.WithTargetSession(TargetSessionAttributes.PreferStandby);
        var writes = source.WithTargetSession(TargetSessionAttributes.ReadWrite);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal((standby.ConnectionString.Port, true), await WhoAsync(searches));
            Assert.Equal((primary.Port, false), await WhoAsync(writes));
        }

        await servers.StopPostgresAsync(standby.DataDirectory!, Ct);

        // A connection pooled to the standby may fail once (57P01); from then on the primary answers.
        var answers = new List<(int, bool)>();
        for (var i = 0; i < 4; i++)
        {
            try
            {
                answers.Add(await WhoAsync(searches));
            }
            catch (NpgsqlException e) when (i == 0 && (e.IsTransient || e is PostgresException { SqlState: PostgresErrorCodes.AdminShutdown }))
            {
            }
        }

        Assert.True(answers.Count >= 3, string.Join(", ", answers));
        Assert.All(answers, a => Assert.Equal((primary.Port, false), a));
    }

    [Fact]
    public async Task Without_standby_binaries_it_says_which_and_exits_10_before_any_work()
    {
        var settings = database.Settings with { Operations = new OperationsSettings { PgBinDir = "/nonexistent/postgresql/bin" } };

        var result = await LessonRunner.RunAsync<OperationsLesson>(settings);

        Assert.True(result.ExitCode == ExitCodes.ToolMissing, result.Output);
        Assert.Contains("PG_BINDIR is '/nonexistent/postgresql/bin', which does not hold pg_basebackup", Flat(result.Output), StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_pgbouncer_it_says_how_to_install_it_and_exits_10()
    {
        var settings = database.Settings with { Operations = new OperationsSettings { PgBouncer = "/nonexistent/pgbouncer" } };

        var result = await LessonRunner.RunAsync<OperationsLesson>(settings);

        Assert.True(result.ExitCode == ExitCodes.ToolMissing, result.Output);
        Assert.Contains("PGBOUNCER is '/nonexistent/pgbouncer', and there is no such program", Flat(result.Output), StringComparison.Ordinal);
        Assert.Contains("scripts/db.sh pgbouncer install", Flat(result.Output), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_taken_standby_port_is_one_sentence_and_exit_11()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var settings = database.Settings with { Operations = new OperationsSettings { StandbyPort = port.ToString(CultureInfo.InvariantCulture) } };

        var result = await LessonRunner.RunAsync<OperationsLesson>(settings);

        Assert.True(result.ExitCode == ExitCodes.PortInUse, result.Output);
        Assert.Contains($"LESSON08_STANDBY_PORT is {port}, and another program already listens on 127.0.0.1:{port}", Flat(result.Output), StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("LESSON08_PGBOUNCER_PORT", "not-a-port")]
    [InlineData("LESSON08_STANDBY_PORT", "70000")]
    public async Task A_port_setting_that_is_not_a_port_is_exit_8(string name, string value)
    {
        var operations = name == "LESSON08_STANDBY_PORT" ? new OperationsSettings { StandbyPort = value } : new OperationsSettings { PgBouncerPort = value };

        var result = await LessonRunner.RunAsync<OperationsLesson>(database.Settings with { Operations = operations });

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, result.Output);
        Assert.Contains($"{name} must be a port number from 1 to 65535, not '{value}'", Flat(result.Output), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_STANDBY_URL_that_is_a_primary_or_does_not_answer_is_refused_before_any_work()
    {
        var primaryAsStandby = await LessonRunner.RunAsync<OperationsLesson>(database.Settings with
        {
            Operations = new OperationsSettings { StandbyUrl = database.ConnectionString.ConnectionString },
        });
        Assert.True(primaryAsStandby.ExitCode == ExitCodes.InvalidInput, primaryAsStandby.Output);
        Assert.Contains("is not in recovery: it is a primary, not a standby", Flat(primaryAsStandby.Output), StringComparison.Ordinal);

        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var nobody = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var silent = await LessonRunner.RunAsync<OperationsLesson>(database.Settings with
        {
            Operations = new OperationsSettings { StandbyUrl = $"postgresql://postgres:x@127.0.0.1:{nobody}/postgres" },
        });
        Assert.True(silent.ExitCode == ExitCodes.DatabaseUnavailable, silent.Output);
        Assert.Contains($"STANDBY_URL (127.0.0.1:{nobody}) does not answer", Flat(silent.Output), StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", silent.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dump_that_does_not_restore_is_one_sentence_exit_13_and_leaves_the_target_empty()
    {
        var major = await ServerMajorAsync();
        await using var servers = await LocalServers.StartAsync(new OperationsSettings(), major, needPgBouncer: false, "lesson08test", Ct);
        await using (var connection = new NpgsqlConnection(database.ConnectionString.ConnectionString))
        {
            await connection.OpenAsync(Ct);
            await using var create = new NpgsqlCommand("CREATE SCHEMA IF NOT EXISTS dumped; CREATE TABLE IF NOT EXISTS dumped.t AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 20000) g", connection);
            await create.ExecuteNonQueryAsync(Ct);
        }

        var folder = await servers.NewFolderAsync("dump", Ct);
        var dumpFile = Path.Combine(folder, "dumped.dump");
        var cs = database.ConnectionString;
        var dumped = await servers.PgAsync("pg_dump", ["--format=custom", "--schema=dumped", $"--file={dumpFile}", "-h", cs.Host!, "-p", cs.Port.ToString(CultureInfo.InvariantCulture), "-U", cs.Username!, "-d", cs.Database!], cs.Password, Ct);
        Assert.True(dumped.ExitCode == 0, dumped.Output);
        // Cut the archive short, as a copy that stopped halfway would be.
        var bytes = await File.ReadAllBytesAsync(dumpFile, Ct);
        await File.WriteAllBytesAsync(dumpFile, bytes[..(bytes.Length / 2)], Ct);
        var target = OperationsLesson.RestoredDatabaseName(database.Name);
        await database.Server.CreateDatabaseAsync(target, Ct);
        try
        {
            var targetCs = new NpgsqlConnectionStringBuilder(cs.ConnectionString) { Database = target };

            var error = await Assert.ThrowsAsync<SetupException>(() => OperationsLesson.RestoreAsync(servers, dumpFile, targetCs, Ct));

            Assert.Equal(ExitCodes.RestoreFailed, error.ExitCode);
            Assert.Contains($"The dump {dumpFile} did not restore into database {target} (pg_restore: error:", error.Message, StringComparison.Ordinal);
            Assert.Contains("nothing of it was kept", error.Message, StringComparison.Ordinal);
            await using var connection = new NpgsqlConnection(targetCs.ConnectionString);
            await connection.OpenAsync(Ct);
            await using var tables = new NpgsqlCommand("SELECT count(*) FROM pg_tables WHERE schemaname = 'dumped'", connection);
            Assert.Equal(0L, await tables.ExecuteScalarAsync(Ct));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await database.Server.DropDatabaseAsync(target);
        }
    }

    private static void AssertFullRun(int exitCode, string output, bool ownStandby)
    {
        Assert.True(exitCode == 0, $"exit {exitCode}:\n{output}");
        Assert.Contains("Lesson 08 done (14 steps)", output, StringComparison.Ordinal);

        // Part 1: routing, the index on the standby, lag, read-your-writes, fallback.
        Assert.Contains("3 of 3 searches ran on the standby; the write check ran on the primary.", output, StringComparison.Ordinal);
        Assert.Contains("Index Scan using ix_vector_documents_embedding_hnsw", output, StringComparison.Ordinal);
        Assert.Contains("Refused: 25006 cannot execute INSERT in a read-only transaction", output, StringComparison.Ordinal);
        Assert.Contains("pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS bytes_behind", output, StringComparison.Ordinal);
        if (ownStandby)
        {
            Assert.Contains("streaming", output, StringComparison.Ordinal);
            Assert.Contains("At once on the standby: not found. From the primary, or on the standby after waiting for the write's LSN: found.", output, StringComparison.Ordinal);
            Assert.Contains("With the standby gone, the searches were answered by the primary.", output, StringComparison.Ordinal);
        }

        // Part 2: pgBouncer. Many clients over few server connections; what breaks.
        var pool = Regex.Match(output, @"Through pgBouncer: (\d+) searches from (\d+) clients over at most (\d+) server connection\(s\) \(default_pool_size (\d+)\); straight to the server: (\d+)\.");
        Assert.True(pool.Success, output);
        Assert.Equal(OperationsLesson.Clients * OperationsLesson.SearchesPerClient, N(pool, 1));
        Assert.Equal(OperationsLesson.Clients, N(pool, 2));
        Assert.InRange(N(pool, 3), 1, OperationsLesson.PoolSize);
        Assert.True(N(pool, 5) > OperationsLesson.PoolSize, pool.Value);
        Assert.Contains("cl_waiting", output, StringComparison.Ordinal);
        Assert.Contains("A's SET without LOCAL leaked", output, StringComparison.Ordinal);
        var version = Version.Parse(Regex.Match(output, @"pgBouncer (\d+\.\d+(\.\d+)?) answers").Groups[1].Value);
        Assert.Contains(version >= OperationsLesson.PreparedStatementsSupport
            ? "prepared statements work"
            : "failed: 26000 prepared statement \"_p1\" does not exist", output, StringComparison.Ordinal);
        Assert.Contains("unsupported startup parameter: search_path", output, StringComparison.Ordinal);

        // Part 3: the restore is checked equal; point-in-time recovery brings the rows back.
        Assert.Contains("All 6 checks equal", output, StringComparison.Ordinal);
        Assert.Contains("Recovered to the restore point: 3 rows", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    private static async Task<(int Port, bool InRecovery)> WhoAsync(NpgsqlDataSource source)
    {
        await using var command = source.CreateCommand("SELECT inet_server_port(), pg_is_in_recovery()");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        return (reader.GetInt32(0), reader.GetBoolean(1));
    }

    private static async Task<bool> InRecoveryAsync(NpgsqlConnectionStringBuilder cs)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cs.ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("SELECT pg_is_in_recovery()", connection);
        return await command.ExecuteScalarAsync(Ct) is true;
    }

    private static async Task<int> MajorAsync(ModuleSettings settings)
    {
        await using var source = NpgsqlDataSource.Create(settings.ConnectionString());
        return await LocalServers.ServerMajorAsync(source, Ct);
    }

    private async Task<int> ServerMajorAsync() =>
        await database.ScalarAsync<int>("SELECT current_setting('server_version_num')::int / 10000");

    /// <summary>The output with its line wrapping undone, for sentences longer than the console is wide.</summary>
    private static string Flat(string output) => Regex.Replace(output, @"\s+", " ");

    private static int N(Match match, int group) => int.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);
}
