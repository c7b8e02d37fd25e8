using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using PgVectorModule.Configuration;
using PgVectorModule.Problems;

namespace PgVectorModule.Servers;

/// <summary>
/// The course database as a private cluster of the installed PostgreSQL programs, made the way scripts/db.sh makes its
/// local cluster and in the same state folder (the checkout's <c>.pgdata/</c>, or PGVECTOR_MODULE_STATE), so the
/// scripts and the lessons share one cluster and <c>scripts/db.sh down</c> stops it. It listens on 127.0.0.1 only,
/// with password authentication; the superuser's password is POSTGRES_PASSWORD or one generated once into the state
/// folder (mode 0600). It is not stopped when a lesson ends: the next run finds it running and uses it.
/// </summary>
public static class CourseCluster
{
    public const string PasswordFileName = "superuser-password";
    private const string LockFileName = "starter.lock";

    /// <summary>
    /// The state folder: PGVECTOR_MODULE_STATE, else scripts/db.sh's (<c>.pgdata</c>, <c>.pgdata-N</c> with
    /// POSTGRES_VERSION, in the checkout; as root, where the postgres user cannot enter the checkout,
    /// <c>/var/lib/postgresql/pgvector-module/HASH</c>); outside a checkout, a folder of this user's.
    /// </summary>
    public static async Task<string> StateFolderAsync(CourseDatabaseSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.StateFolder is { } configured)
        {
            return Path.GetFullPath(configured);
        }

        var name = settings.Version is null ? ".pgdata" : $".pgdata-{settings.Version}";
        if (Checkout() is not { } root)
        {
            var data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
            return LocalServers.IsRoot ? $"/var/lib/postgresql/pgvector-module/default{name[".pgdata".Length..]}" : Path.Combine(data, "pgvector-module", name.TrimStart('.'));
        }

        if (LocalServers.IsRoot && (await LocalServers.RunAsync("test", ["-x", root], asServerUser: true, password: null, cancellationToken)).ExitCode != 0)
        {
            // The hash scripts/db.sh takes of the same path (sha1sum's first 12 digits), so both name the same folder.
            var hash = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(root)))[..12];
            return $"/var/lib/postgresql/pgvector-module/{hash}{name[".pgdata".Length..]}";
        }

        return Path.Combine(root, name);
    }

    /// <summary>The checkout this program was built in (the folder holding scripts/db.sh and docker-compose.yml), else the current folder's.</summary>
    public static string? Checkout()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "scripts", "db.sh")) && File.Exists(Path.Combine(dir.FullName, "docker-compose.yml")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }

    /// <summary>The cluster of <paramref name="state"/> when its postmaster runs: the very process its pid file names, with this data folder.</summary>
    public static async Task<CourseServer?> FindRunningAsync(string state, CourseDatabaseSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var data = Path.Combine(state, "data");
        if (await PostgresCluster.RunningPostmasterAsync(data) is not { } running)
        {
            return null;
        }

        var password = settings.Password ?? await ReadPasswordAsync(state, cancellationToken);
        if (password is null)
        {
            throw new SetupException(
                $"The private cluster in {state} runs on 127.0.0.1:{running.Port}, but its superuser's password is neither in POSTGRES_PASSWORD nor in {Path.Combine(state, PasswordFileName)}: " +
                "set POSTGRES_PASSWORD to it, or run scripts/db.sh up once (it gives a cluster made with the old fixed password a generated one).", ExitCodes.AuthenticationFailed);
        }

        return new CourseServer(Url(settings, password, running.Port), "a private cluster",
            $"Using the private PostgreSQL cluster already running on 127.0.0.1:{running.Port} (pid {running.Process.Pid}), its data in {state}; it stays up for the next lesson: {await StopHintAsync(state, cancellationToken)}.");
    }

    /// <summary>
    /// Makes the cluster with <paramref name="installation"/> on its first run (initdb, then the course's settings on the
    /// first free port from POSTGRES_PORT), starts it, and creates the course database. Two lessons started at once
    /// take turns: the second finds the cluster the first started.
    /// </summary>
    public static async Task<CourseServer> StartAsync(PostgresInstallation installation, string state, CourseDatabaseSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(installation);
        ArgumentNullException.ThrowIfNull(settings);
        await MakeStateFolderAsync(state, cancellationToken);
        await using var turn = await TakeTurnAsync(state, cancellationToken);
        if (await FindRunningAsync(state, settings, cancellationToken) is { } started)
        {
            return started;
        }

        var data = Path.Combine(state, "data");
        var cluster = new PostgresCluster(installation.BinFolder, data);
        var password = settings.Password ?? await ReadPasswordAsync(state, cancellationToken) ?? await WritePasswordAsync(state, cancellationToken);
        if (!File.Exists(Path.Combine(data, "PG_VERSION")))
        {
            await InitAsync(cluster, state, settings, password, cancellationToken);
        }

        var made = int.Parse((await File.ReadAllTextAsync(Path.Combine(data, "PG_VERSION"), cancellationToken)).Trim(), CultureInfo.InvariantCulture);
        if (made != installation.Major)
        {
            throw new SetupException(
                $"{state} holds a PostgreSQL {made} cluster but the programs found are PostgreSQL {installation.Major}'s ({installation.BinFolder}): set POSTGRES_VERSION={made} (or PG_BINDIR to PostgreSQL {made}'s bin folder), or delete {state} to start over (its data is lost).",
                ExitCodes.ToolMissing);
        }

        var port = await ConfiguredPortAsync(data, cancellationToken);
        if (!LocalServers.IsFree(port))
        {
            // Another server took the port since the cluster last ran: move it, as scripts/db.sh does.
            port = FirstFreePort(port);
            await SetPortAsync(data, port, cancellationToken);
        }

        var log = Path.Combine(state, "postgres.log");
        // The port and the rest are in postgresql.conf (InitAsync), as scripts/db.sh's own start reads them.
        await cluster.StartAsync($"private PostgreSQL cluster in {state}", log, port: null, [], environment: null, cancellationToken);
        var running = await PostgresCluster.RunningPostmasterAsync(data)
                      ?? throw new SetupException($"pg_ctl started the private cluster in {state}, but no postmaster runs there now; its log is {log}.", ExitCodes.LocalServerFailed);
        await CreateDatabaseAsync(settings, password, running.Port, cancellationToken);
        return new CourseServer(Url(settings, password, running.Port), "a private cluster",
            $"Started a private PostgreSQL {installation.Major} cluster on 127.0.0.1:{running.Port} (pid {running.Process.Pid}) with the programs in {installation.BinFolder}, its data in {state}; " +
            $"it stays up for the next lesson: {await StopHintAsync(state, cancellationToken)}.");
    }

    /// <summary>What stops the cluster: scripts/db.sh down for scripts/db.sh's own state folder, else pg_ctl.</summary>
    private static async Task<string> StopHintAsync(string state, CancellationToken cancellationToken)
    {
        if (Checkout() is not null && Environment.GetEnvironmentVariable("PGVECTOR_MODULE_STATE") is not { Length: > 0 } &&
            Path.GetFileName(state).StartsWith(".pgdata", StringComparison.Ordinal))
        {
            return "stop it with scripts/db.sh down";
        }

        var data = Path.Combine(state, "data");
        var pgCtl = await PgCtlOfAsync(data, cancellationToken) ?? "pg_ctl";
        return LocalServers.IsRoot
            ? $"stop it with runuser -u {LocalServers.ServerUser} -- {pgCtl} -D {data} stop"
            : $"stop it with {pgCtl} -D {data} stop";
    }

    /// <summary>The pg_ctl beside the postgres program that runs the cluster (its postmaster.opts names it).</summary>
    private static async Task<string?> PgCtlOfAsync(string data, CancellationToken cancellationToken)
    {
        var opts = Path.Combine(data, "postmaster.opts");
        if (!File.Exists(opts))
        {
            return null;
        }

        var text = await File.ReadAllTextAsync(opts, cancellationToken);
        var program = text.Split(' ', 2)[0].Trim('"');
        return Path.IsPathFullyQualified(program) ? Path.Combine(Path.GetDirectoryName(program)!, "pg_ctl") : null;
    }

    private static string Url(CourseDatabaseSettings settings, string password, int port) =>
        $"postgresql://{Uri.EscapeDataString(settings.User)}:{Uri.EscapeDataString(password)}@127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/{Uri.EscapeDataString(settings.Database)}";

    private static async Task MakeStateFolderAsync(string state, CancellationToken cancellationToken)
    {
        // As root the cluster runs as the postgres user, who owns its folder (as scripts/db.sh's make_state_dir does).
        await PostgresCluster.MakePrivateFolderAsync(state, cancellationToken);
        if (LocalServers.IsRoot && (await LocalServers.RunAsync("test", ["-x", state], asServerUser: true, password: null, cancellationToken)).ExitCode != 0)
        {
            throw new SetupException(
                $"Run as root, the private cluster runs as the {LocalServers.ServerUser} user, who may not enter {state} (a folder above it is closed to other users): " +
                "set PGVECTOR_MODULE_STATE to a folder below ones it may enter, or run the lesson as an ordinary user.", ExitCodes.Failed);
        }
    }

    /// <summary>One starter at a time per state folder: an exclusive lock file, waited for (a first initdb takes seconds).</summary>
    private static async Task<FileStream> TakeTurnAsync(string state, CancellationToken cancellationToken)
    {
        var path = Path.Combine(state, LockFileName);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None, Options = FileOptions.DeleteOnClose };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                return new FileStream(path, options);
            }
            catch (IOException) when (attempt < 1200)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    /// <summary>Makes the state folder and draws the superuser's password into it (for a container, which has no folder of its own).</summary>
    public static async Task<string> NewPasswordAsync(string state, CancellationToken cancellationToken)
    {
        await MakeStateFolderAsync(state, cancellationToken);
        return await WritePasswordAsync(state, cancellationToken);
    }

    /// <summary>The generated password kept in <paramref name="state"/>, or null when there is none.</summary>
    public static async Task<string?> ReadPasswordAsync(string state, CancellationToken cancellationToken)
    {
        var file = Path.Combine(state, PasswordFileName);
        return File.Exists(file) && (await File.ReadAllTextAsync(file, cancellationToken)).Trim() is { Length: > 0 } password ? password : null;
    }

    /// <summary>A new password (48 hex digits, as scripts/db.sh draws), written readable by its owner alone from the start.</summary>
    private static async Task<string> WritePasswordAsync(string state, CancellationToken cancellationToken)
    {
        var password = RandomNumberGenerator.GetHexString(48, lowercase: true);
        var file = Path.Combine(state, PasswordFileName);
        await PostgresCluster.WritePrivateAsync(file + ".new", password + "\n", cancellationToken);
        File.Move(file + ".new", file, overwrite: true);
        return password;
    }

    /// <summary>initdb with the course's user and password, then scripts/db.sh's settings block; a failed or stopped initdb leaves no half-made cluster.</summary>
    private static async Task InitAsync(PostgresCluster cluster, string state, CourseDatabaseSettings settings, string password, CancellationToken cancellationToken)
    {
        await cluster.InitAsync(settings.User, password, [], Path.Combine(state, "initdb.log"), cancellationToken);
        try
        {
            var port = FirstFreePort(settings.FirstPort);
            // The block scripts/db.sh appends (cluster.sh, local_init): loopback only, no Unix socket, room for the lessons.
            await File.AppendAllTextAsync(Path.Combine(cluster.DataDirectory, "postgresql.conf"), $"""

                # pgvector course module
                listen_addresses = '127.0.0.1'
                port = {port.ToString(CultureInfo.InvariantCulture)}
                unix_socket_directories = ''
                shared_preload_libraries = 'pg_stat_statements'
                max_connections = 200
                # Vector indexes are fastest when they fit in memory; the default 128MB holds a 100k x 384 HNSW index only in part.
                shared_buffers = 512MB

                """.ReplaceLineEndings("\n"), cancellationToken);
        }
        catch
        {
            // A cluster without the block would listen on PostgreSQL's defaults: the next run makes it afresh.
            Directory.Delete(cluster.DataDirectory, recursive: true);
            throw;
        }
    }

    private static async Task<int> ConfiguredPortAsync(string data, CancellationToken cancellationToken)
    {
        var port = CourseDatabaseSettings.DefaultPort;
        foreach (var line in await File.ReadAllLinesAsync(Path.Combine(data, "postgresql.conf"), cancellationToken))
        {
            if (line.StartsWith("port = ", StringComparison.Ordinal) &&
                int.TryParse(line["port = ".Length..].Split('#')[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var p))
            {
                port = p;
            }
        }

        return port;
    }

    private static async Task SetPortAsync(string data, int port, CancellationToken cancellationToken)
    {
        var conf = Path.Combine(data, "postgresql.conf");
        var lines = (await File.ReadAllLinesAsync(conf, cancellationToken))
            .Select(l => l.StartsWith("port = ", StringComparison.Ordinal) ? $"port = {port.ToString(CultureInfo.InvariantCulture)}" : l);
        // Written in place, so the file keeps its owner (the postgres user under root) and mode.
        await File.WriteAllLinesAsync(conf, lines, cancellationToken);
    }

    private static int FirstFreePort(int from)
    {
        for (var port = from; port < 65536; port++)
        {
            if (LocalServers.IsFree(port))
            {
                return port;
            }
        }

        throw new SetupException($"No free port from {from} up on 127.0.0.1 for the private cluster: set POSTGRES_PORT to a lower one.", ExitCodes.PortInUse);
    }


    /// <summary>Creates POSTGRES_DB on first use.</summary>
    private static async Task CreateDatabaseAsync(CourseDatabaseSettings settings, string password, int port, CancellationToken cancellationToken)
    {
        var admin = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = port, Username = settings.User, Password = password, Database = "postgres", Pooling = false, Timeout = 15,
        };
        try
        {
            await using var connection = new NpgsqlConnection(admin.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var exists = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = @name)", connection);
            exists.Parameters.AddWithValue("name", settings.Database);
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                await using var create = new NpgsqlCommand($"CREATE DATABASE \"{settings.Database.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", connection);
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidPassword)
        {
            throw new SetupException(
                $"The private cluster on 127.0.0.1:{port} refused the password {(settings.Password is null ? "in its state folder" : "in POSTGRES_PASSWORD")}: set POSTGRES_PASSWORD to its superuser's password, or run scripts/db.sh up once (it adopts a cluster made with the old fixed password).",
                ExitCodes.AuthenticationFailed, e);
        }
    }
}

/// <summary>A server the lesson host found or started.</summary>
/// <param name="Url">Its DATABASE_URL (the password inside; never printed).</param>
/// <param name="Source">Where it came from, as messages name it ("a private cluster", "a pgvector container").</param>
/// <param name="Description">The one line the lesson prints: what it is, where, and how to stop it.</param>
public sealed record CourseServer(string Url, string Source, string Description);
