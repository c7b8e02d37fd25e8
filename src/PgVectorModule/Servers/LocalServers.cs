using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using PgVectorModule.Configuration;
using PgVectorModule.Problems;

namespace PgVectorModule.Servers;

/// <summary>
/// The servers a lesson (or the bench) runs on this machine (lesson 08's standby, pgBouncer and recovery clusters,
/// lesson 11's Citus nodes), the programs it runs them with, and the folder they live in. Whatever it starts it stops
/// when it is disposed: at the lesson's end, after an error, after Ctrl+C, SIGTERM or SIGHUP (the lesson host turns
/// them into cancellation), and when the process exits (every server at once then).
/// The folder is private: made by mkdtemp (mode 0700, a random name) in the temporary folder, and shared with the
/// server user only as root (group, traverse only). It records each server it starts by id, start time and program
/// name (servers.json, see <see cref="ProcessIdentity"/>). A run killed outright (SIGKILL) leaves its folder behind;
/// the next run stops the servers it recorded, if those very processes still run, and deletes it. Folders another
/// user made, or could have written, are never touched, and no process is signalled on the word of a pid file alone.
/// </summary>
public sealed class LocalServers : IAsyncDisposable
{
    /// <summary>The user PostgreSQL and pgBouncer run as when the lesson runs as root (neither agrees to run as root).</summary>
    public const string ServerUser = "postgres";

    /// <summary>The file in a run's folder that names its owner and the servers it started.</summary>
    public const string RecordFile = "servers.json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly List<Func<bool, Task>> _stops = [];
    private readonly RunRecord _record;
    private readonly SemaphoreSlim _recordLock = new(1, 1);
    private readonly EventHandler _onExit;
    private int _disposed;

    private LocalServers(string folder, string pgBin, string? pgBouncer, ProcessIdentity owner)
    {
        Folder = folder;
        PgBin = pgBin;
        PgBouncerProgram = pgBouncer;
        _record = new RunRecord { Owner = owner };
        _onExit = (_, _) => StopAllAtExit();
        AppDomain.CurrentDomain.ProcessExit += _onExit;
    }

    /// <summary>The start of every run folder's name in the temporary folder: one user's runs, and only theirs, share it.</summary>
    public static string FolderPrefix => $"pgvector-module-servers-{Environment.UserName}-";

    /// <summary>This run's folder: data directories, configuration files, logs, dumps.</summary>
    public string Folder { get; }

    /// <summary>The folder of PostgreSQL's programs (pg_basebackup, pg_ctl, initdb, pg_dump, pg_restore, psql).</summary>
    public string PgBin { get; }

    /// <summary>The pgbouncer program, when the caller asked for it.</summary>
    public string? PgBouncerProgram { get; }

    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>
    /// Finds PostgreSQL's programs of the server's major version (and pgbouncer when asked), stops what killed runs
    /// left behind, and makes this run's folder. A missing program is one sentence with the fix and exit code 16.
    /// </summary>
    public static async Task<LocalServers> StartAsync(OperationsSettings settings, int serverMajor, bool needPgBouncer, string owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (OperatingSystem.IsWindows())
        {
            throw new SetupException("This lesson starts PostgreSQL servers and pgBouncer with the programs of a Linux or macOS machine; on Windows run it inside WSL, or in a Linux container with the repository mounted.", ExitCodes.ToolMissing);
        }

        var pgBin = await FindPgBinAsync(settings, serverMajor, cancellationToken);
        var pgBouncer = needPgBouncer ? FindPgBouncer(settings.PgBouncer) : null;
        if (IsRoot && !await SucceedsAsync("id", ["-u", ServerUser], cancellationToken))
        {
            throw new SetupException($"Run as root, this lesson runs PostgreSQL and pgBouncer as the '{ServerUser}' user, and this machine has none: install PostgreSQL from the distribution's packages (scripts/db.sh up does), which creates it, or run the lesson as an ordinary user.", ExitCodes.ToolMissing);
        }

        return await CreateAsync(pgBin, pgBouncer, owner, cancellationToken);
    }

    /// <summary>
    /// For servers run with the PostgreSQL programs in <paramref name="pgBin"/> (found by the caller): stops what killed
    /// runs left behind and makes this run's folder, named after <paramref name="owner"/> and this process.
    /// </summary>
    public static async Task<LocalServers> StartAsync(string pgBin, string owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pgBin);
        if (OperatingSystem.IsWindows())
        {
            throw new SetupException("PostgreSQL servers are started here with the programs of a Linux or macOS machine; on Windows run this inside WSL, or in a Linux container with the repository mounted.", ExitCodes.ToolMissing);
        }

        if (IsRoot && !await SucceedsAsync("id", ["-u", ServerUser], cancellationToken))
        {
            throw new SetupException($"Run as root, PostgreSQL servers run as the '{ServerUser}' user, and this machine has none: install PostgreSQL from the distribution's packages (scripts/db.sh up does), which creates it, or run as an ordinary user.", ExitCodes.ToolMissing);
        }

        return await CreateAsync(pgBin, null, owner, cancellationToken);
    }

    private static async Task<LocalServers> CreateAsync(string pgBin, string? pgBouncer, string owner, CancellationToken cancellationToken)
    {
        var user = await CurrentUserIdAsync(cancellationToken);
        await SweepAsync(user, cancellationToken);
        // mkdtemp: a new folder with a name nobody could guess beforehand, mode 0700, this user's.
        var folder = Directory.CreateTempSubdirectory($"{FolderPrefix}{owner}-{Environment.ProcessId}-").FullName;
        var self = ProcessIdentity.Of(Environment.ProcessId) ?? new ProcessIdentity(Environment.ProcessId, DateTimeOffset.MinValue, "");
        var servers = new LocalServers(folder, pgBin, pgBouncer, self);
        try
        {
            await servers.SaveRecordAsync();
            if (IsRoot && !OperatingSystem.IsWindows())
            {
                // The servers run as the server user, who must reach their folders inside this one: its group may
                // enter it (0710), not list or change it.
                var group = await RunAsync("id", ["-gn", ServerUser], asServerUser: false, password: null, cancellationToken);
                await RunCheckedAsync("chgrp", [group.Output.Trim(), folder], asServerUser: false, password: null, cancellationToken);
                File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute);
            }
        }
        catch
        {
            await servers.DisposeAsync();
            throw;
        }

        return servers;
    }

    /// <summary>The server's major version (15 for 15.14), read from server_version_num.</summary>
    public static async Task<int> ServerMajorAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand("SELECT current_setting('server_version_num')::int / 10000");
        return (int)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// PostgreSQL's programs of <paramref name="major"/>, found as the lesson host finds them
    /// (<see cref="PostgresInstallation.FindAsync"/>: PG_BINDIR alone when it is set), with the client programs the
    /// lesson runs beside them.
    /// </summary>
    private static async Task<string> FindPgBinAsync(OperationsSettings settings, int major, CancellationToken cancellationToken)
    {
        string[] needed = ["pg_basebackup", "pg_ctl", "initdb", "postgres", "pg_dump", "pg_restore", "psql"];
        if (settings.PgBinDir is { } configured)
        {
            var missing = needed.Where(p => !File.Exists(Path.Combine(configured, p))).ToList();
            if (missing.Count > 0)
            {
                throw new SetupException($"PG_BINDIR is '{configured}', which does not hold {string.Join(", ", missing)}: point it at the bin folder of a PostgreSQL {major} installation (on Debian /usr/lib/postgresql/{major}/bin), or unset it.", ExitCodes.ToolMissing);
            }

            var found = await PostgresInstallation.ReadAsync(configured, cancellationToken);
            if (found?.Major != major)
            {
                var holds = found is null ? "no pg_config that names its version" : $"PostgreSQL {found.Major}'s programs";
                throw new SetupException($"PG_BINDIR '{configured}' holds {holds}, but the course database runs PostgreSQL {major}: pg_basebackup and a standby need the same major version. Point PG_BINDIR at PostgreSQL {major}'s bin folder.", ExitCodes.ToolMissing);
            }

            return configured;
        }

        var installation = await PostgresInstallation.FindAsync(null, major, settings.BuildCache, cancellationToken);
        var lacking = installation is null ? needed : needed.Where(p => !File.Exists(Path.Combine(installation.BinFolder, p))).ToArray();
        return installation is not null && lacking.Length == 0
            ? installation.BinFolder
            : throw new SetupException(
                $"This lesson makes a standby, a dump and a recovery cluster with PostgreSQL {major}'s own programs ({string.Join(", ", needed)}) and " +
                (installation is null
                    ? $"found no PostgreSQL {major} in the usual places ({PostgresInstallation.UsualPlaces}). "
                    : $"found {installation.BinFolder} without {string.Join(", ", lacking)}. ") +
                $"Install them (Debian and Ubuntu: apt-get install postgresql-{major}; macOS: brew install postgresql@{major}; scripts/db.sh up does for the local cluster), or set PG_BINDIR to their folder.",
                ExitCodes.ToolMissing);
    }

    /// <summary>The pgbouncer program a lesson would run: PGBOUNCER when set, else the first on PATH or in the usual
    /// folders; null when there is none.</summary>
    public static string? FindPgBouncerProgram(string? configured)
    {
        if (configured is not null)
        {
            return File.Exists(configured) ? configured : null;
        }

        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return path.Concat(["/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin"])
                   .Select(d => Path.Combine(d, "pgbouncer")).FirstOrDefault(File.Exists);
    }

    private static string FindPgBouncer(string? configured) =>
        FindPgBouncerProgram(configured) ?? throw (configured is not null
            ? new SetupException($"PGBOUNCER is '{configured}', and there is no such program: point it at a pgbouncer binary, or unset it and install Debian's with 'scripts/db.sh pgbouncer install'.", ExitCodes.ToolMissing)
            : new SetupException(
                   "pgBouncer is not installed, and this lesson runs one: install it with 'scripts/db.sh pgbouncer install' (Debian's package, as root or through sudo), " +
                   "apt-get install pgbouncer or brew install pgbouncer, or set PGBOUNCER to a pgbouncer binary.",
                   ExitCodes.ToolMissing));

    /// <summary>A port nothing listens on, from the operating system; or the configured one, refused when it is taken.</summary>
    public static int Port(string setting, string? configured)
    {
        if (OperationsSettings.Port(setting, configured) is { } port)
        {
            return IsFree(port)
                ? port
                : throw new SetupException($"{setting} is {port}, and another program already listens on 127.0.0.1:{port}: stop that program, pick another port, or unset {setting} to let the lesson pick a free one.", ExitCodes.PortInUse);
        }

        return FreePort();
    }

    /// <summary>A loopback port nothing listens on now, from the operating system.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Whether a listener can bind <paramref name="port"/> on the loopback address: nothing listens there.</summary>
    internal static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A folder under this run's folder, owned by the server user (the servers write into it).</summary>
    public async Task<string> NewFolderAsync(string name, CancellationToken cancellationToken)
    {
        var path = Path.Combine(Folder, name);
        Directory.CreateDirectory(path);
        await GiveToServerUserAsync(path, cancellationToken);
        return path;
    }

    public async Task GiveToServerUserAsync(string path, CancellationToken cancellationToken)
    {
        if (IsRoot)
        {
            await RunCheckedAsync("chown", ["-R", $"{ServerUser}:{ServerUser}", path], asServerUser: false, password: null, cancellationToken);
        }
    }

    /// <summary>
    /// Writes a new file the servers read (a password file, a configuration), owned by the server user and readable
    /// only by it. It is created with mode 0600, so it is never readable by others, not even for a moment; and only as a
    /// new file, so a file or a symbolic link already there (in a folder the server user may write) is refused rather
    /// than written through.
    /// </summary>
    public async Task WriteFileAsync(string path, string text, CancellationToken cancellationToken)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using (var file = new FileStream(path, options))
        await using (var writer = new StreamWriter(file))
        {
            await writer.WriteAsync(text.AsMemory(), cancellationToken);
        }

        await GiveToServerUserAsync(path, cancellationToken);
    }

    /// <summary>Runs one of PostgreSQL's programs from <see cref="PgBin"/>.</summary>
    public Task<ToolResult> PgAsync(string program, IReadOnlyList<string> arguments, string? password, CancellationToken cancellationToken) =>
        RunAsync(Path.Combine(PgBin, program), arguments, asServerUser: true, password, cancellationToken);

    /// <summary>The same with more environment variables (PGPASSFILE, say): a server pg_ctl starts inherits them.</summary>
    public Task<ToolResult> PgWithEnvironmentAsync(string program, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken) =>
        RunAsync(Path.Combine(PgBin, program), arguments, asServerUser: true, password: null, cancellationToken, environment);

    /// <summary>
    /// Starts a PostgreSQL server on <paramref name="dataDirectory"/> with pg_ctl and remembers to stop it. Returns the
    /// pg_ctl command it ran, for the lesson to show. A server that does not start is one sentence naming its log.
    /// </summary>
    public async Task<string> StartPostgresAsync(string what, string dataDirectory, int port, IReadOnlyList<string> settings, CancellationToken cancellationToken) =>
        await StartPostgresAsync(what, dataDirectory, port, settings, new Dictionary<string, string>(), cancellationToken);

    /// <summary>The same, the server's environment holding <paramref name="environment"/> as well (its own outbound connections read it).</summary>
    public async Task<string> StartPostgresAsync(string what, string dataDirectory, int port, IReadOnlyList<string> settings,
        IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var cluster = new PostgresCluster(PgBin, dataDirectory);
        var log = Path.Combine(Path.GetDirectoryName(dataDirectory)!, Path.GetFileName(dataDirectory) + ".log");
        // Registered before it starts: a start that times out or is cancelled may still leave a server running.
        Track(async immediate =>
        {
            if (File.Exists(Path.Combine(dataDirectory, "postmaster.pid")))
            {
                await cluster.StopAsync(immediate, CancellationToken.None);
            }
        });
        try
        {
            return await cluster.StartAsync(what, log, port, settings, environment, cancellationToken);
        }
        finally
        {
            // Whatever pg_ctl did, the postmaster it started (if any) is recorded for the next run's sweep.
            await RecordServerAsync("postgres", Path.Combine(dataDirectory, "postmaster.pid"), dataDirectory);
        }
    }

    /// <summary>Stops a server this run started, now (the others stay up).</summary>
    public Task StopPostgresAsync(string dataDirectory, CancellationToken cancellationToken) =>
        new PostgresCluster(PgBin, dataDirectory).StopAsync(immediate: false, cancellationToken);

    /// <summary>Starts pgbouncer as a daemon with <paramref name="configFile"/>; it is stopped through its pidfile.</summary>
    public async Task StartPgBouncerAsync(string configFile, string pidFile, string logFile, int port, CancellationToken cancellationToken)
    {
        var program = PgBouncerProgram ?? throw new InvalidOperationException("pgbouncer was not asked for.");
        // Stopped through its pid file only when the process it names is the one this run started (see RecordServerAsync).
        Track(async _ => await StopRecordedAsync("pgbouncer", pidFile, dataDirectory: null));
        ToolResult start;
        try
        {
            start = await RunAsync(program, ["-d", "-q", configFile], asServerUser: true, password: null, cancellationToken);
        }
        finally
        {
            await RecordServerAsync("pgbouncer", pidFile, dataDirectory: null);
        }

        var started = start.ExitCode == 0 && await AnswersAsync(port, TimeSpan.FromSeconds(10), cancellationToken);
        if (!started)
        {
            var log = File.Exists(logFile) ? await File.ReadAllTextAsync(logFile, CancellationToken.None) : start.Output;
            var reason = log.Split('\n').LastOrDefault(l => l.Contains("FATAL", StringComparison.Ordinal) || l.Contains("ERROR", StringComparison.Ordinal)) ?? start.Output;
            throw log.Contains("Address already in use", StringComparison.Ordinal)
                ? new SetupException($"pgBouncer could not listen on 127.0.0.1:{port}: another program took the port. Run the lesson again (it picks a free port), or set another LESSON08_PGBOUNCER_PORT.", ExitCodes.PortInUse)
                : new SetupException($"pgBouncer did not start ({reason.Trim()}); its log is {logFile}.", ExitCodes.LocalServerFailed);
        }
    }

    private static async Task<bool> AnswersAsync(int port, TimeSpan within, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                return true;
            }
            catch (SocketException)
            {
                await Task.Delay(50, cancellationToken);
            }
        }

        return false;
    }

    private void Track(Func<bool, Task> stop)
    {
        lock (_stops)
        {
            _stops.Add(stop);
        }
    }

    /// <summary>Stops every server this run started, the last started first, and deletes the run's folder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= _onExit;
        await StopAllAsync(immediate: false);
    }

    private async Task StopAllAsync(bool immediate)
    {
        List<Func<bool, Task>> stops;
        lock (_stops)
        {
            stops = [.. _stops];
            _stops.Clear();
        }

        stops.Reverse();
        async Task StopAsync(Func<bool, Task> stop)
        {
            try
            {
                await stop(immediate);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Already gone: nothing left to stop.
            }
        }

        if (immediate)
        {
            // The process is exiting (SIGTERM, or the end of Main): every server at once, before the clock runs out.
            await Task.WhenAll(stops.Select(StopAsync));
        }
        else
        {
            foreach (var stop in stops)
            {
                await StopAsync(stop);
            }
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private void StopAllAtExit()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            StopAllAsync(immediate: true).Wait(TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>
    /// The server a pid file names, when it is one this run started: a process of the server's own program that started
    /// after this process did, and for PostgreSQL the postmaster its postmaster.pid describes (the data folder and the
    /// start time it notes). A pid file lives in a folder the server user writes; this is what keeps a planted id from
    /// being taken at its word.
    /// </summary>
    /// <param name="dataDirectory">The data folder of a postgres server; null for pgbouncer.</param>
    private async Task<ProcessIdentity?> ProveAsync(string kind, string pidFile, string? dataDirectory)
    {
        ProcessIdentity? process;
        if (dataDirectory is not null)
        {
            process = (await PostgresCluster.RunningPostmasterAsync(dataDirectory))?.Process;
        }
        else
        {
            string? first;
            try
            {
                first = File.Exists(pidFile) ? (await File.ReadAllLinesAsync(pidFile)).FirstOrDefault() : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }

            process = int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? ProcessIdentity.Of(pid) : null;
        }

        return process is not null && process.Name == ProgramOf(kind) && process.StartedNoEarlierThan(_record.Owner) ? process : null;
    }

    /// <summary>The program a recorded server runs: postgres or pgbouncer.</summary>
    private static string ProgramOf(string kind) => kind == "postgres" ? "postgres" : "pgbouncer";

    /// <summary>Adds the server a pid file names to this run's record, once it is proven to be this run's.</summary>
    private async Task RecordServerAsync(string kind, string pidFile, string? dataDirectory)
    {
        if (await ProveAsync(kind, pidFile, dataDirectory) is not { } process)
        {
            return;
        }

        await _recordLock.WaitAsync();
        try
        {
            if (!_record.Servers.Any(r => r.Identity.IsSameProcessAs(process)))
            {
                _record.Servers.Add(new ServerRecord(kind, process.Pid, process.StartedAt, process.Name));
            }
        }
        finally
        {
            _recordLock.Release();
        }

        await SaveRecordAsync();
    }

    /// <summary>Signals the server a pid file names, when it is this run's and still the very process recorded.</summary>
    private async Task StopRecordedAsync(string kind, string pidFile, string? dataDirectory)
    {
        if (await ProveAsync(kind, pidFile, dataDirectory) is { } process)
        {
            await SignalAsync(new ServerRecord(kind, process.Pid, process.StartedAt, process.Name));
        }
    }

    /// <summary>servers.json, replaced whole: written beside it (mode 0600) and renamed over it.</summary>
    private async Task SaveRecordAsync()
    {
        await _recordLock.WaitAsync();
        try
        {
            var path = Path.Combine(Folder, RecordFile);
            var next = path + ".next";
            File.Delete(next);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            await using (var file = new FileStream(next, options))
            {
                await JsonSerializer.SerializeAsync(file, _record, Json);
            }

            File.Move(next, path, overwrite: true);
        }
        finally
        {
            _recordLock.Release();
        }
    }

    /// <summary>
    /// Run folders of this user whose owner process is gone: the servers they recorded are stopped, if those very
    /// processes still run, and the folders deleted. A folder is considered only when it is a real directory owned by
    /// this user that no one else may write into: what another user made under the same name is left as it is.
    /// </summary>
    private static async Task SweepAsync(int user, CancellationToken cancellationToken)
    {
        foreach (var folder in Directory.EnumerateDirectories(Path.GetTempPath(), FolderPrefix + "*"))
        {
            // A record written in an older format names its owner in a way this does not read: whether that run still
            // goes cannot be told, so its folder is left as it is and nothing it names is signalled.
            if (!await IsPrivateAsync(folder, user, cancellationToken) || await ReadRecordAsync(folder) is not { } record ||
                record.Owner.Name is not { Length: > 0 } || record.Owner.IsRunning())
            {
                continue;
            }

            foreach (var server in record.Servers)
            {
                // A record names a server its run started: a process of the server's program, started after the run's
                // own, still the very one recorded. Nothing else is signalled, whatever the file says.
                if (server.Name == ProgramOf(server.Kind) && server.Identity.StartedNoEarlierThan(record.Owner) && server.Identity.IsRunning())
                {
                    await SignalAsync(server);
                }
            }

            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    /// <summary>Whether <paramref name="folder"/> is a directory (not a link) owned by <paramref name="user"/>, writable by no one else.</summary>
    private static async Task<bool> IsPrivateAsync(string folder, int user, CancellationToken cancellationToken)
    {
        // ls -ldn prints the mode and the owner's numeric id the same way on Linux, macOS and the BSDs, and describes a
        // symbolic link itself rather than what it points to.
        var listing = await RunAsync("ls", ["-ldn", folder], asServerUser: false, password: null, cancellationToken);
        var fields = listing.Output.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return listing.ExitCode == 0 && fields.Length > 3 && fields[0].Length >= 10 &&
               fields[0][0] == 'd' && fields[0][5] != 'w' && fields[0][8] != 'w' &&
               int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var owner) && owner == user;
    }

    private static async Task<RunRecord?> ReadRecordAsync(string folder)
    {
        try
        {
            var path = Path.Combine(folder, RecordFile);
            return File.Exists(path) ? JsonSerializer.Deserialize<RunRecord>(await File.ReadAllTextAsync(path), Json) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    private static async Task<int> CurrentUserIdAsync(CancellationToken cancellationToken)
    {
        var id = await RunAsync("id", ["-u"], asServerUser: false, password: null, cancellationToken);
        return int.TryParse(id.Output.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var user)
            ? user
            : throw new SetupException($"'id -u' did not print this user's id ({id.Output.Trim()}).", ExitCodes.ToolMissing);
    }

    /// <summary>
    /// Stops one recorded server: SIGQUIT is PostgreSQL's immediate shutdown, SIGTERM pgBouncer's. Only its very
    /// process is signalled (id, start time and program name checked again just before), then waited for, 5 s at most.
    /// </summary>
    private static async Task SignalAsync(ServerRecord server)
    {
        if (!server.Identity.IsRunning())
        {
            return;
        }

        var signal = server.Kind == "postgres" ? "QUIT" : "TERM";
        await RunAsync("kill", [$"-{signal}", server.Pid.ToString(CultureInfo.InvariantCulture)], asServerUser: false, password: null, CancellationToken.None);
        for (var i = 0; i < 100 && server.Identity.IsRunning(); i++)
        {
            await Task.Delay(50);
        }
    }

    private static async Task<bool> SucceedsAsync(string program, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        try
        {
            return (await RunAsync(program, arguments, asServerUser: false, password: null, cancellationToken)).ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static async Task RunCheckedAsync(string program, IReadOnlyList<string> arguments, bool asServerUser, string? password, CancellationToken cancellationToken)
    {
        var result = await RunAsync(program, arguments, asServerUser, password, cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new SetupException($"'{program} {string.Join(' ', arguments)}' failed: {result.Output.Trim()}", ExitCodes.LocalServerFailed);
        }
    }

    /// <summary>
    /// Runs a program to its end and returns its exit code and output (standard output and error together). As root,
    /// programs that touch a server's files run as <see cref="ServerUser"/>. The password, when given, travels in
    /// PGPASSWORD, never on the command line (where ps would show it). Cancelling kills the program.
    /// </summary>
    public static async Task<ToolResult> RunAsync(string program, IReadOnlyList<string> arguments, bool asServerUser, string? password, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var start = asServerUser && IsRoot
            ? new ProcessStartInfo("runuser") { ArgumentList = { "-u", ServerUser, "--", program } }
            : new ProcessStartInfo(program);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = true;
        // The server user may not enter the caller's folder; every path handed over is absolute.
        start.WorkingDirectory = Path.GetTempPath();
        if (password is not null)
        {
            start.Environment["PGPASSWORD"] = password;
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new ToolResult(process.ExitCode, (await output) + (await error));
    }
}

/// <summary>What servers.json holds: the run's own process and each server it started.</summary>
public sealed class RunRecord
{
    public required ProcessIdentity Owner { get; init; }
    public List<ServerRecord> Servers { get; init; } = [];
}

/// <param name="Kind">postgres or pgbouncer: which signal stops it.</param>
/// <param name="StartedAt">When it started (UTC).</param>
/// <param name="Name">Its program's name; absent from records written in an older format, which then match no process.</param>
public sealed record ServerRecord(string Kind, int Pid, DateTimeOffset StartedAt, string Name)
{
    [JsonIgnore]
    public ProcessIdentity Identity => new(Pid, StartedAt, Name);
}

/// <param name="ExitCode">The program's exit code.</param>
/// <param name="Output">What it printed, standard output then standard error.</param>
public sealed record ToolResult(int ExitCode, string Output);
