using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using PgVectorModule.Configuration;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson08;
using PgVectorModule.Problems;
using PgVectorModule.Servers;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Lessons;

/// <summary>
/// Lesson 08 starts servers (a standby, pgBouncer, recovery clusters) from a primary it copies with pg_basebackup, so its
/// full runs use a private cluster as the primary, never the shared test server. One class: its tests run one at a time.
/// </summary>
[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Lesson08Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    public async Task Runs_in_process_with_the_standby_STANDBY_URL_names_then_as_a_process_with_its_own_and_leaves_nothing_running()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);

        // In process: a standby the test made is named by STANDBY_URL; the lesson uses it and leaves it running.
        await using (var servers = await LocalServers.StartAsync(ServerLanes.Operations, await MajorAsync(primary.Settings), needPgBouncer: false, "lesson08test", Ct))
        {
            var standby = await OperationsLesson.MakeStandbyAsync(servers, primary.Settings.ConnectionString(), LocalServers.Port("LESSON08_STANDBY_PORT", null), "given_standby", null, Ct);
            var settings = primary.Settings with { Operations = ServerLanes.Operations with { StandbyUrl = standby.ConnectionString.ConnectionString } };
            var given = await LessonRunner.RunAsync<OperationsLesson>(settings);
            AssertFullRun(given.ExitCode, given.Output, given.Transcript, ownStandby: false);
            Assert.Equal("standby-url", given.Transcript.Steps[1].Id);
            Assert.Contains("the lesson does not stop it", given.Transcript.Step("standby-stops").Note("The standby is STANDBY_URL's"), StringComparison.Ordinal);
            Assert.True(await InRecoveryAsync(standby.ConnectionString), "the given standby was stopped or promoted");
            Assert.Empty(ServerProcesses.StartedBy("lesson08", Environment.ProcessId));
        }

        // Again, as a process on the same primary: the lesson makes, uses and stops its own standby and pgBouncer.
        var result = await LessonProcess.RunAsync(OperationsLesson.Info, primary.Settings.DatabaseUrl, []);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        AssertFullRun(result.ExitCode, result.Output, Assert.IsType<LessonTranscript>(result.Transcript), ownStandby: true);
        Assert.Empty(ServerProcesses.StartedBy("lesson08", result.ProcessId));
    }

    [Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    public async Task Cancelled_once_its_standby_runs_it_exits_130_and_stops_the_standby()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var console = new TestConsole().Width(160);
        var run = LessonHost.RunAsync<OperationsLesson>([],
            new LessonHostOptions { Console = console, Settings = primary.Settings, Interactive = false }, cancel.Token);

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

    /// <summary>TERM at the lesson's deepest point (standby and pgBouncer both running), HUP as soon as the standby runs.</summary>
    [Theory(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    [InlineData("TERM", "pgbouncer")]
    [InlineData("HUP", "/standby/")]
    public async Task A_stop_signal_once_a_server_runs_stops_every_server_and_removes_the_folder(string signal, string server)
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);
        var temp = ServersTemp();
        try
        {
            using var process = LessonProcess.StartLesson("08", new Dictionary<string, string> { ["DATABASE_URL"] = primary.Settings.DatabaseUrl, ["TMPDIR"] = temp });
            await WaitForServerAsync(process, server);

            await LessonProcess.SignalAsync(process, signal);
            var result = await LessonProcess.WaitAsync(process, TimeSpan.FromSeconds(90));

            Assert.True(result.ExitCode == ExitCodes.Cancelled, $"exit {result.ExitCode}:\n{result.Output}");
            Assert.Contains("Cancelled. Nothing half-done was committed.", result.Text, StringComparison.Ordinal);
            Assert.Empty(ServerProcesses.StartedBy("lesson08", result.ProcessId));
            Assert.Empty(Directory.GetFileSystemEntries(temp, "pgvector-module-servers*"));
        }
        finally
        {
            await CleanUpAsync(temp);
        }
    }

    [Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    public async Task A_run_killed_outright_leaves_servers_that_the_next_run_stops_and_removes()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);
        var temp = ServersTemp();
        try
        {
            var environment = new Dictionary<string, string> { ["DATABASE_URL"] = primary.Settings.DatabaseUrl, ["TMPDIR"] = temp };
            using var killed = LessonProcess.StartLesson("08", environment);
            await WaitForServerAsync(killed, "/standby/");
            killed.Kill();
            await LessonProcess.WaitAsync(killed, TimeSpan.FromSeconds(30));
            Assert.NotEmpty(ServerProcesses.StartedBy("lesson08", killed.Id));

            // The next run sweeps, then stops at once: its standby port is taken.
            using var taken = new TcpListener(IPAddress.Loopback, 0);
            taken.Start();
            environment["LESSON08_STANDBY_PORT"] = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
            var next = await LessonProcess.RunLessonAsync("08", environment);

            Assert.True(next.ExitCode == ExitCodes.PortInUse, $"exit {next.ExitCode}:\n{next.Output}");
            Assert.Empty(ServerProcesses.StartedBy("lesson08", killed.Id));
            Assert.Empty(Directory.GetFileSystemEntries(temp, "pgvector-module-servers*"));
        }
        finally
        {
            await CleanUpAsync(temp);
        }
    }

    [Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    public async Task A_folder_another_user_planted_where_runs_are_kept_is_neither_swept_nor_written_into()
    {
        var temp = ServersTemp();
        using var bystander = Process.Start(new ProcessStartInfo("sleep", ["600"])) ?? throw new InvalidOperationException("sleep did not start.");
        try
        {
            using var gone = Process.Start(new ProcessStartInfo("true")) ?? throw new InvalidOperationException("true did not start.");
            await gone.WaitForExitAsync(Ct);

            // The layout runs used to have: <temp>/pgvector-module-servers-USER/RUN/, pid files naming the bystander.
            var planted = Path.Combine(temp, $"pgvector-module-servers-{Environment.UserName}");
            var run = Path.Combine(planted, $"lesson08-{gone.Id}-planted");
            Directory.CreateDirectory(Path.Combine(run, "standby", "data"));
            Directory.CreateDirectory(Path.Combine(run, "pgbouncer"));
            await File.WriteAllTextAsync(Path.Combine(run, "standby", "data", "postmaster.pid"), $"{bystander.Id}\n{run}/standby/data\n", Ct);
            await File.WriteAllTextAsync(Path.Combine(run, "pgbouncer", "pgbouncer.pid"), $"{bystander.Id}\n", Ct);
            // A run folder as runs keep them, its record naming the bystander exactly as it runs (pid, start time, name).
            var forged = Path.Combine(temp, $"pgvector-module-servers-{Environment.UserName}-lesson08-{gone.Id}-planted");
            Directory.CreateDirectory(Path.Combine(forged, "standby"));
            // Read the way the lesson reads a process (ProcessIdentity, through the Process API).
            var identity = ProcessIdentity.Of(bystander.Id) ?? throw new InvalidOperationException("The bystander is not running.");
            var record = new
            {
                owner = new { pid = gone.Id, startedAt = DateTimeOffset.UnixEpoch, name = "dotnet" },
                servers = new[] { new { kind = "postgres", pid = bystander.Id, startedAt = identity.StartedAt, name = identity.Name } },
            };
            await File.WriteAllTextAsync(Path.Combine(forged, "servers.json"), System.Text.Json.JsonSerializer.Serialize(record), Ct);
            foreach (var folder in new[] { planted, forged })
            {
                await RunAsync("chown", "-R", "nobody", folder);
            }

            var before = Snapshot(planted).Concat(Snapshot(forged)).ToList();
            using var taken = new TcpListener(IPAddress.Loopback, 0);
            taken.Start();

            // The run stops right after it made its own folder: its standby port is taken.
            var result = await LessonProcess.RunLessonAsync("08", new Dictionary<string, string>
            {
                ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
                ["TMPDIR"] = temp,
                ["LESSON08_STANDBY_PORT"] = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture),
            });

            Assert.True(result.ExitCode == ExitCodes.PortInUse, $"exit {result.ExitCode}:\n{result.Output}");
            Assert.False(bystander.HasExited, "the lesson signalled a process it did not start");
            Assert.Equal(before, Snapshot(planted).Concat(Snapshot(forged)).ToList());
        }
        finally
        {
            bystander.Kill();
            await CleanUpAsync(temp);
        }
    }

    [Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    public async Task A_record_written_in_an_older_format_is_left_as_it_is_and_nothing_it_names_is_signalled()
    {
        var temp = ServersTemp();
        using var bystander = Process.Start(new ProcessStartInfo("sleep", ["600"])) ?? throw new InvalidOperationException("sleep did not start.");
        try
        {
            using var gone = Process.Start(new ProcessStartInfo("true")) ?? throw new InvalidOperationException("true did not start.");
            await gone.WaitForExitAsync(Ct);

            // A run folder of this user's, private as runs make them, whose record has the older fields (start ticks and
            // a command line): its server entry names the bystander by id.
            var old = Directory.CreateDirectory(Path.Combine(temp, $"{LocalServers.FolderPrefix}lesson08-{gone.Id}-older")).FullName;
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(old, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var record = new
            {
                owner = new { pid = gone.Id, startTicks = 1L, commandLine = "dotnet Lesson08.Operations.dll" },
                servers = new[] { new { kind = "postgres", pid = bystander.Id, startTicks = 2L, commandLine = $"postgres -D {old}/standby/data" } },
            };
            await File.WriteAllTextAsync(Path.Combine(old, LocalServers.RecordFile), System.Text.Json.JsonSerializer.Serialize(record), Ct);
            var before = Snapshot(old);
            using var taken = new TcpListener(IPAddress.Loopback, 0);
            taken.Start();

            // The run sweeps, then stops right after it made its own folder: its standby port is taken.
            var result = await LessonProcess.RunLessonAsync("08", new Dictionary<string, string>
            {
                ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
                ["TMPDIR"] = temp,
                ["LESSON08_STANDBY_PORT"] = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture),
            });

            Assert.True(result.ExitCode == ExitCodes.PortInUse, $"exit {result.ExitCode}:\n{result.Output}");
            OneSentence.AssertNoCrash(result.Output);
            Assert.False(bystander.HasExited, "the lesson signalled a process an older record named");
            // Its run may still be going (a lesson of an older checkout): the folder is not the sweep's to delete.
            Assert.Equal(before, Snapshot(old));
        }
        finally
        {
            bystander.Kill();
            await CleanUpAsync(temp);
        }
    }

    [Fact]
    public async Task A_file_for_the_servers_is_made_private_and_never_written_through_a_link_planted_in_its_place()
    {
        await using var servers = await LocalServers.StartAsync(ServerLanes.Operations, await ServerMajorAsync(), needPgBouncer: false, "lesson08test", Ct);
        var folder = await servers.NewFolderAsync("pgbouncer", Ct);
        var elsewhere = Directory.CreateTempSubdirectory("lesson08-elsewhere-").FullName;
        try
        {
            // The server user owns the folder: it could put a link where the lesson is about to write its password file.
            var target = Path.Combine(elsewhere, "precious");
            await File.WriteAllTextAsync(target, "precious", Ct);
            File.CreateSymbolicLink(Path.Combine(folder, "userlist.txt"), target);

            await Assert.ThrowsAnyAsync<IOException>(() => servers.WriteFileAsync(Path.Combine(folder, "userlist.txt"), "\"u\" \"secret\"\n", Ct));

            Assert.Equal("precious", await File.ReadAllTextAsync(target, Ct));
            var passwordFile = Path.Combine(folder, "pw");
            await servers.WriteFileAsync(passwordFile, "secret", Ct);
            Assert.Equal((UnixFileMode.UserRead | UnixFileMode.UserWrite).ToString(), Mode(passwordFile));
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task Standby_routing_searches_go_to_the_standby_writes_to_the_primary_and_back_to_the_primary_when_it_stops()
    {
        await using var primary = await PrivateCluster.StartAsync(Ct);
        await using var servers = await LocalServers.StartAsync(ServerLanes.Operations, await MajorAsync(primary.Settings), needPgBouncer: false, "lesson08test", Ct);
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
        var settings = database.Settings with { Operations = ServerLanes.Operations with { PgBinDir = "/nonexistent/postgresql/bin" } };

        var result = await LessonRunner.RunAsync<OperationsLesson>(settings);

        Assert.True(result.ExitCode == ExitCodes.ToolMissing, result.Output);
        Assert.Contains("PG_BINDIR is '/nonexistent/postgresql/bin', which does not hold pg_basebackup", Flat(result.Output), StringComparison.Ordinal);
        Assert.Empty(result.Transcript.Steps);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_pgbouncer_it_says_how_to_install_it_and_exits_10()
    {
        var settings = database.Settings with { Operations = ServerLanes.Operations with { PgBouncer = "/nonexistent/pgbouncer" } };

        var result = await LessonRunner.RunAsync<OperationsLesson>(settings);

        Assert.True(result.ExitCode == ExitCodes.ToolMissing, result.Output);
        Assert.Contains("PGBOUNCER is '/nonexistent/pgbouncer', and there is no such program", Flat(result.Output), StringComparison.Ordinal);
        Assert.Contains("scripts/db.sh pgbouncer install", Flat(result.Output), StringComparison.Ordinal);
    }

    [Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    public async Task A_taken_standby_port_is_one_sentence_and_exit_11()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var settings = database.Settings with { Operations = ServerLanes.Operations with { StandbyPort = port.ToString(CultureInfo.InvariantCulture) } };

        var result = await LessonRunner.RunAsync<OperationsLesson>(settings);

        Assert.True(result.ExitCode == ExitCodes.PortInUse, result.Output);
        Assert.Contains($"LESSON08_STANDBY_PORT is {port}, and another program already listens on 127.0.0.1:{port}", Flat(result.Output), StringComparison.Ordinal);
        Assert.Empty(result.Transcript.Steps);
    }

    [Theory(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    [InlineData("LESSON08_PGBOUNCER_PORT", "not-a-port")]
    [InlineData("LESSON08_STANDBY_PORT", "70000")]
    public async Task A_port_setting_that_is_not_a_port_is_exit_8(string name, string value)
    {
        var operations = name == "LESSON08_STANDBY_PORT" ? ServerLanes.Operations with { StandbyPort = value } : ServerLanes.Operations with { PgBouncerPort = value };

        var result = await LessonRunner.RunAsync<OperationsLesson>(database.Settings with { Operations = operations });

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, result.Output);
        Assert.Contains($"{name} must be a port number from 1 to 65535, not '{value}'", Flat(result.Output), StringComparison.Ordinal);
    }

    [Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType = typeof(Installed), Skip = Installed.PgBouncerMissing)]
    public async Task A_STANDBY_URL_that_is_a_primary_or_does_not_answer_is_refused_before_any_work()
    {
        var primaryAsStandby = await LessonRunner.RunAsync<OperationsLesson>(database.Settings with
        {
            Operations = ServerLanes.Operations with { StandbyUrl = database.ConnectionString.ConnectionString },
        });
        Assert.True(primaryAsStandby.ExitCode == ExitCodes.InvalidInput, primaryAsStandby.Output);
        Assert.Contains("is not in recovery: it is a primary, not a standby", Flat(primaryAsStandby.Output), StringComparison.Ordinal);

        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var nobody = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var silent = await LessonRunner.RunAsync<OperationsLesson>(database.Settings with
        {
            Operations = ServerLanes.Operations with { StandbyUrl = $"postgresql://postgres:x@127.0.0.1:{nobody}/postgres" },
        });
        Assert.True(silent.ExitCode == ExitCodes.DatabaseUnavailable, silent.Output);
        Assert.Contains($"STANDBY_URL (127.0.0.1:{nobody}) does not answer", Flat(silent.Output), StringComparison.Ordinal);
        Assert.Empty(silent.Transcript.Steps);
    }

    [Fact]
    public async Task A_dump_that_does_not_restore_is_one_sentence_exit_13_and_leaves_the_target_empty()
    {
        var major = await ServerMajorAsync();
        await using var servers = await LocalServers.StartAsync(ServerLanes.Operations, major, needPgBouncer: false, "lesson08test", Ct);
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

    /// <summary>A temporary folder for one test's lesson runs (their TMPDIR), which the server user may enter.</summary>
    private static string ServersTemp()
    {
        var temp = Directory.CreateTempSubdirectory("lesson08-temp-").FullName;
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        return temp;
    }

    /// <summary>Whatever a failed test left: servers still running from <paramref name="temp"/> are stopped, the folder deleted.</summary>
    private static async Task CleanUpAsync(string temp)
    {
        foreach (var pid in ServerProcesses.Running(temp))
        {
            await RunAsync("kill", "-QUIT", pid.ToString(CultureInfo.InvariantCulture));
        }

        await Task.Delay(500, CancellationToken.None);
        Directory.Delete(temp, recursive: true);
    }

    private static async Task WaitForServerAsync(Process lesson, string commandLinePart)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
        while (!ServerProcesses.StartedBy("lesson08", lesson.Id).Any(c => c.Contains(commandLinePart, StringComparison.Ordinal)))
        {
            Assert.False(lesson.HasExited, $"The lesson ended before '{commandLinePart}' ran.");
            Assert.True(DateTime.UtcNow < deadline, $"No '{commandLinePart}' within four minutes.");
            await Task.Delay(50, Ct);
        }
    }

    /// <summary>Every file and folder under <paramref name="root"/>: path, owner-visible mode, size and content.</summary>
    private static List<string> Snapshot(string root) =>
        Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(p => File.Exists(p)
                ? $"{Path.GetRelativePath(root, p)} {Mode(p)} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(p)))}"
                : $"{Path.GetRelativePath(root, p)}/ {Mode(p)}")
            .ToList();

    private static string Mode(string path) => OperatingSystem.IsWindows() ? "" : File.GetUnixFileMode(path).ToString();

    private static async Task RunAsync(string program, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments)) ?? throw new InvalidOperationException($"{program} did not start.");
        await process.WaitForExitAsync(CancellationToken.None);
    }

    private static void AssertFullRun(int exitCode, string output, LessonTranscript run, bool ownStandby)
    {
        Assert.True(exitCode == 0, $"exit {exitCode}:\n{output}");
        Assert.True(run.Completed);
        Assert.Equal(15, run.Steps.Count);

        // Part 1: routing, the index on the standby, lag, read-your-writes, fallback.
        var routing = run.Step("multi-host");
        Assert.Equal(["standby", "standby", "standby", "primary"], routing.Table.Column("answered by"));
        Assert.Equal("3 of 3 searches ran on the standby; the write check ran on the primary.", routing.Note("3 of 3"));
        var standbyIndex = run.Step("index-on-standby");
        Assert.Contains("Index Scan using ix_vector_documents_embedding_hnsw", Assert.Single(standbyIndex.Plans).Plan, StringComparison.Ordinal);
        Assert.Equal("Refused: 25006 cannot execute INSERT in a read-only transaction", standbyIndex.Note("Refused"));
        var lag = run.Step("replication-lag");
        Assert.Contains(lag.SqlSent, s => s.Text.Contains("pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS bytes_behind", StringComparison.Ordinal));
        Assert.Contains("bytes_behind", lag.Tables[0].Columns);
        if (ownStandby)
        {
            Assert.Contains("streaming", run.Step("standby").Tables[1].Column("state"));
            var writes = run.Step("read-your-writes");
            Assert.Equal(["False", "True", "True"], writes.Table.Column("new document found"), StringComparer.OrdinalIgnoreCase);
            Assert.StartsWith("At once on the standby: not found. From the primary, or on the standby after waiting for the write's LSN: found.", writes.Note("At once"), StringComparison.Ordinal);
            var fallback = run.Step("standby-stops");
            Assert.Contains(fallback.Table.Column("outcome"), o => o.StartsWith("answered by the primary", StringComparison.Ordinal));
            Assert.StartsWith("With the standby gone, the searches were answered by the primary.", fallback.Note("With the standby gone"), StringComparison.Ordinal);
        }

        // Part 2: pgBouncer. Many clients over few server connections; what breaks.
        var many = run.Step("pooled-clients");
        var load = many.Tables[^1];
        var bounced = load.Row("path", "through pgBouncer");
        Assert.Equal(OperationsLesson.Clients * OperationsLesson.SearchesPerClient, int.Parse(bounced["searches done"], CultureInfo.InvariantCulture));
        Assert.Equal(OperationsLesson.Clients, int.Parse(bounced["clients"], CultureInfo.InvariantCulture));
        Assert.InRange(int.Parse(bounced["most server connections at once"], CultureInfo.InvariantCulture), 1, OperationsLesson.PoolSize);
        Assert.True(int.Parse(load.Row("path", "straight to the server")["most server connections at once"], CultureInfo.InvariantCulture) > OperationsLesson.PoolSize, string.Join(", ", load.Column("most server connections at once")));
        Assert.Contains(many.Tables, t => t.Columns.Contains("cl_waiting"));
        Assert.Contains($"from {OperationsLesson.Clients} clients over at most", many.Note("Through pgBouncer:"), StringComparison.Ordinal);

        var breaks = run.Step("what-breaks");
        Assert.Contains("A's SET without LOCAL leaked", breaks.Note("SET LOCAL ended"), StringComparison.Ordinal);
        var version = Version.Parse(Regex.Match(run.Step("pgbouncer").Note("pgBouncer "), @"^pgBouncer (\d+\.\d+(\.\d+)?) answers").Groups[1].Value);
        if (version >= OperationsLesson.PreparedStatementsSupport)
        {
            Assert.Contains("prepared statements work", breaks.Note("pgBouncer re-prepared"), StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal("failed: 26000 prepared statement \"_p1\" does not exist", breaks.Tables[1].Row("what", "ExecuteScalar() again")["result"]);
        }

        Assert.Contains("unsupported startup parameter: search_path", breaks.Note("Refused"), StringComparison.Ordinal);

        // Part 3: the restore is checked equal; point-in-time recovery brings the rows back.
        var restore = run.Step("pg-restore");
        Assert.Equal(Enumerable.Repeat("yes", 6), restore.Table.Column("same"));
        Assert.StartsWith("All 6 checks equal", restore.Note("All"), StringComparison.Ordinal);
        var pitr = run.Step("pitr");
        Assert.Equal("3", pitr.Table.Row("server", "the recovered cluster, at before_the_mistake")["rows in notes"]);
        Assert.Equal("0", pitr.Table.Row("server", "the archiving cluster, after the mistake")["rows in notes"]);
        Assert.StartsWith("Recovered to the restore point: 3 rows", pitr.Note("Recovered"), StringComparison.Ordinal);

        // Part 4: tracing. The span tree of a staged and a one-statement search, one row per span: each stage under its
        // search, Npgsql's command under each leg and under the one statement.
        var tracing = run.Step("tracing");
        Assert.Equal(TracedSpans, tracing.Note("Npgsql's command spans"));
        Assert.Matches(@"^Staged search: [\d,.]+ ms = embed [\d,.]+ \+ vector leg [\d,.]+ \+ keyword leg [\d,.]+ \+ fuse [\d,.]+ ms; one statement: [\d,.]+ ms\.$", tracing.Note("Staged search:"));
        var spans = tracing.Table;
        var pairs = spans.Rows.Select(r => (Span: r["span"].Trim(), Parent: r["parent"])).ToList();
        foreach (var pair in new[]
                 {
                     ("search (staged)", "two searches"), ("embed question", "search (staged)"), ("vector leg", "search (staged)"),
                     ("Npgsql command", "vector leg"), ("keyword leg", "search (staged)"), ("Npgsql command", "keyword leg"), ("fuse", "search (staged)"), ("Npgsql command", "fuse"),
                     ("search (one statement)", "two searches"), ("embed question", "search (one statement)"), ("Npgsql command", "search (one statement)"),
                 })
        {
            Assert.Contains(pair, pairs);
        }

        Assert.All(spans.Column("ms"), ms => Assert.True(double.Parse(ms, CultureInfo.InvariantCulture) >= 0, ms));
        Assert.Matches(@"^rows \d+, ef_search 100, iterative scan off$", spans.Rows.First(r => r["span"].Trim() == "vector leg")["tags"]);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    private const string TracedSpans = "Npgsql's command spans: 3 under the staged search's stages (one per leg and one for the fusion), 1 right under the one statement's search span.";

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

}
