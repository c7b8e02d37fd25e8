using System.Globalization;
using PgVectorModule.Problems;

namespace PgVectorModule.Servers;

/// <summary>
/// One PostgreSQL data folder and the installed programs that make, start and stop it (initdb, pg_ctl), run through
/// <see cref="LocalServers.RunAsync"/>: as the postgres user when the caller is root. The one way the course starts a
/// server from installed programs: the lesson host's private cluster (<see cref="CourseCluster"/>), lesson 08's and
/// lesson 11's servers (<see cref="LocalServers"/>) and the tests' throwaway clusters. A server started here listens on
/// 127.0.0.1 only, with no Unix socket, and its superuser signs in with a password (SCRAM).
/// </summary>
/// <param name="BinFolder">The folder of initdb, pg_ctl and postgres.</param>
/// <param name="DataDirectory">The cluster's data folder (absolute).</param>
public sealed record PostgresCluster(string BinFolder, string DataDirectory)
{
    /// <summary>The file beside the data folder that initdb reads the superuser's password from, for as long as initdb runs.</summary>
    public const string PasswordFileName = "initdb-password";

    /// <summary>
    /// Makes <paramref name="folder"/> (and the folders above it) private: mode 0700, and owned by the postgres user
    /// when the caller is root, so the server it holds can write there and no one else can look in.
    /// </summary>
    public static async Task MakePrivateFolderAsync(string folder, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix modes: the user's own folders are private already.
            Directory.CreateDirectory(folder);
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(folder)!);
        Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (LocalServers.IsRoot)
        {
            var chown = await LocalServers.RunAsync("chown", [$"{LocalServers.ServerUser}:", folder], asServerUser: false, password: null, cancellationToken);
            if (chown.ExitCode != 0)
            {
                throw new SetupException($"The folder {folder} could not be given to the {LocalServers.ServerUser} user ({chown.Output.Trim()}).", ExitCodes.LocalServerFailed);
            }
        }
    }

    /// <summary>
    /// initdb: the superuser <paramref name="superuser"/> with <paramref name="password"/>, UTF-8, password sign-in for
    /// every connection. The password travels in a file beside the data folder, made readable by its owner alone from
    /// the start and deleted as soon as initdb is done; a failed or cancelled initdb leaves no half-made data folder.
    /// initdb's output goes to <paramref name="log"/> when one is given.
    /// </summary>
    /// <param name="moreArguments">initdb's other options (--no-sync for a cluster whose data may be lost).</param>
    public async Task InitAsync(string superuser, string password, IReadOnlyList<string> moreArguments, string? log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(moreArguments);
        var passwordFile = Path.Combine(Path.GetDirectoryName(DataDirectory)!, PasswordFileName);
        try
        {
            await WritePrivateAsync(passwordFile, password + "\n", cancellationToken);
            if (LocalServers.IsRoot)
            {
                await LocalServers.RunAsync("chown", [$"{LocalServers.ServerUser}:", passwordFile], asServerUser: false, password: null, cancellationToken);
            }

            // C.UTF-8 is glibc's; macOS has en_US.UTF-8 and no C.UTF-8.
            var locale = OperatingSystem.IsMacOS() ? "en_US.UTF-8" : "C.UTF-8";
            var initdb = await LocalServers.RunAsync(Path.Combine(BinFolder, "initdb"),
                ["-D", DataDirectory, "-U", superuser, $"--pwfile={passwordFile}", "--auth=scram-sha-256", "-E", "UTF8", $"--locale={locale}", .. moreArguments],
                asServerUser: true, password: null, cancellationToken);
            if (log is not null)
            {
                await File.WriteAllTextAsync(log, initdb.Output, CancellationToken.None);
            }

            if (initdb.ExitCode != 0)
            {
                var lastLine = initdb.Output.Trim().Split('\n')[^1].Trim();
                throw new SetupException($"initdb could not make a PostgreSQL cluster in {DataDirectory} ({lastLine}){(log is null ? "" : $"; its log is {log}")}.", ExitCodes.LocalServerFailed);
            }
        }
        catch
        {
            // Ctrl+C or a failure part way: the next run makes the cluster afresh rather than starting half of one.
            if (Directory.Exists(DataDirectory) && !File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                Directory.Delete(DataDirectory, recursive: true);
            }

            throw;
        }
        finally
        {
            File.Delete(passwordFile);
        }
    }

    /// <summary>
    /// Starts the server with pg_ctl, waiting until it accepts connections (60 s at most), its log in <paramref name="log"/>.
    /// With a <paramref name="port"/>, the server listens there on 127.0.0.1 with no Unix socket, and takes
    /// <paramref name="settings"/> (name=value) as well; without one, its postgresql.conf says all that. Returns the
    /// pg_ctl command, for a lesson to show. A server that does not start is one sentence naming <paramref name="what"/> and its log.
    /// </summary>
    /// <param name="environment">More environment variables for the server (its own outbound connections read PGPASSFILE).</param>
    public async Task<string> StartAsync(string what, string log, int? port, IReadOnlyList<string> settings, IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (port is null && settings.Count > 0)
        {
            throw new ArgumentException("Server settings are given with the port they go with.", nameof(settings));
        }

        var options = port is { } p
            ? string.Join(' ', new[] { $"-p {p.ToString(CultureInfo.InvariantCulture)}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''" }.Concat(settings.Select(s => "-c " + s)))
            : null;
        string[] arguments = options is null
            ? ["-D", DataDirectory, "-l", log, "-w", "-t", "60", "start"]
            : ["-D", DataDirectory, "-l", log, "-w", "-t", "60", "-o", options, "start"];
        var start = await LocalServers.RunAsync(Path.Combine(BinFolder, "pg_ctl"), arguments, asServerUser: true, password: null, cancellationToken, environment);
        if (start.ExitCode != 0)
        {
            var tail = File.Exists(log) ? (await File.ReadAllLinesAsync(log, CancellationToken.None)).TakeLast(30).ToList() : [];
            var reason = tail.LastOrDefault(l => l.Contains("FATAL", StringComparison.Ordinal) || l.Contains("could not", StringComparison.Ordinal)) ?? start.Output.Trim();
            throw tail.Any(l => l.Contains("Address already in use", StringComparison.Ordinal))
                ? new SetupException($"The {what} could not listen on 127.0.0.1{(port is null ? "" : $":{port}")}: another program took the port. Run the lesson again (it picks a free port), or set another port.", ExitCodes.PortInUse)
                : new SetupException($"The {what} did not start ({reason.Trim()}); its log is {log}.", ExitCodes.LocalServerFailed);
        }

        return options is null ? $"pg_ctl -D {DataDirectory} -l {log} -w start" : $"pg_ctl -D {DataDirectory} -l {log} -w -o \"{options}\" start";
    }

    /// <summary>
    /// Stops the server with pg_ctl, waiting for it (30 s at most): <c>-m fast</c> ends sessions and writes a
    /// checkpoint; <paramref name="immediate"/> cuts them at once, as when a machine goes away (the next start recovers).
    /// </summary>
    public Task<ToolResult> StopAsync(bool immediate, CancellationToken cancellationToken) =>
        LocalServers.RunAsync(Path.Combine(BinFolder, "pg_ctl"), ["-D", DataDirectory, "-m", immediate ? "immediate" : "fast", "-w", "-t", "30", "stop"],
            asServerUser: true, password: null, cancellationToken);

    /// <summary>
    /// The postmaster of <paramref name="dataDirectory"/> when it runs, and the port it listens on: the process its
    /// postmaster.pid names, proven to be that server (a postgres process that started when the file says, for this
    /// data folder). A stale file whose id another process took since, or a file naming some other process, gives null.
    /// </summary>
    public static async Task<(ProcessIdentity Process, int Port)?> RunningPostmasterAsync(string dataDirectory)
    {
        string[] lines;
        try
        {
            var file = Path.Combine(dataDirectory, "postmaster.pid");
            if (!File.Exists(file))
            {
                return null;
            }

            lines = await File.ReadAllLinesAsync(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // postmaster.pid: the pid, the data folder, the start time (seconds since 1970), the port, ... (PostgreSQL's LOCK_FILE_LINE_* order).
        if (lines.Length <= 3 ||
            !int.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ||
            lines[1].TrimEnd('/') != dataDirectory.TrimEnd('/') ||
            !long.TryParse(lines[2], NumberStyles.None, CultureInfo.InvariantCulture, out var stamp) ||
            !int.TryParse(lines[3], NumberStyles.None, CultureInfo.InvariantCulture, out var port) ||
            ProcessIdentity.Of(pid) is not { Name: "postgres" } process)
        {
            return null;
        }

        // The postmaster notes its start a moment after the process began (pg_ctl's shell runs first), to the second.
        var noted = DateTimeOffset.FromUnixTimeSeconds(stamp) - process.StartedAt;
        return noted >= -(ProcessIdentity.StartTolerance + TimeSpan.FromSeconds(1)) && noted <= TimeSpan.FromSeconds(30) ? (process, port) : null;
    }

    /// <summary>Writes a new file readable by its owner alone from the start (mode 0600).</summary>
    internal static async Task WritePrivateAsync(string path, string text, CancellationToken cancellationToken)
    {
        // A file (or a link) already there is removed, and the new one made only as new: never written through.
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using var file = new FileStream(path, options);
        await using var writer = new StreamWriter(file);
        await writer.WriteAsync(text.AsMemory(), cancellationToken);
    }
}
