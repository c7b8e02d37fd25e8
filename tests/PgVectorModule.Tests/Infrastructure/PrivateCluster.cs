using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using PgVectorModule.Configuration;
using Testcontainers.PostgreSql;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL cluster of the test's own, for tests that stop the database under a running lesson: the
/// shared server must never be stopped. Built from the local PostgreSQL binaries (initdb, pg_ctl; run as the
/// postgres user when the tests run as root), on a free loopback port with password authentication, no Unix socket,
/// and its data in a private temporary folder deleted on dispose. pgvector must be installed for those binaries.
/// Each cluster's superuser gets a random password: another user of the machine reaches the loopback port too.
/// Where there are no local binaries but a Docker engine answers, the cluster is a container of
/// <see cref="PostgresServer.Image"/> bound to a fixed host port, so stopping and starting it keeps its address.
/// </summary>
public sealed class PrivateCluster : IAsyncDisposable
{
    private const string PasswordFile = "initdb-password";

    /// <summary>
    /// PG_BINDIR first (scripts/test.sh sets it to the programs of the server the run tests, PostgreSQL 18's for its second
    /// lane), then the distribution's folders, newest first.
    /// </summary>
    private static readonly string[] BinDirectories =
    [
        .. Environment.GetEnvironmentVariable("PG_BINDIR") is { Length: > 0 } configured ? [configured] : Array.Empty<string>(),
        "/usr/lib/postgresql/18/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
    ];

    private readonly string _bin;
    private readonly string _root;
    private readonly PostgreSqlContainer? _container;

    private readonly IReadOnlyList<string> _serverSettings;

    private PrivateCluster(string bin, string root, int port, string password, IReadOnlyList<string> serverSettings, PostgreSqlContainer? container = null)
    {
        _bin = bin;
        _root = root;
        Port = port;
        Password = password;
        _serverSettings = serverSettings;
        _container = container;
    }

    public int Port { get; }

    /// <summary>The superuser's password, drawn for this cluster alone.</summary>
    public string Password { get; }

    /// <summary>The folder holding the cluster's data and log (empty for a container).</summary>
    public string Root => _root;
    public string DataDirectory => Path.Combine(_root, "data");

    /// <summary>Settings that point the module at this cluster's postgres database.</summary>
    public ModuleSettings Settings => ModuleSettings.From(
        n => n == "DATABASE_URL" ? $"postgresql://postgres:{Password}@127.0.0.1:{Port}/postgres" : null, "test");

    /// <param name="serverSettings">name=value pairs given to the server at every start (-c), for tests that need a
    /// server configured differently from the shared one: max_connections, default_transaction_read_only...</param>
    public static Task<PrivateCluster> StartAsync(CancellationToken cancellationToken, params string[] serverSettings) =>
        StartInAsync(Path.GetTempPath(), cancellationToken, serverSettings);

    /// <summary>As <see cref="StartAsync"/>, with the cluster's folder made inside <paramref name="parent"/>.</summary>
    public static async Task<PrivateCluster> StartInAsync(string parent, CancellationToken cancellationToken, params string[] serverSettings)
    {
        var password = RandomNumberGenerator.GetHexString(32, lowercase: true);
        var bin = BinDirectories.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")));
        if (bin is null)
        {
            return await StartContainerAsync(password, serverSettings, cancellationToken);
        }

        // Private from the start: the folder is the owner's alone, and so is the password file initdb reads, which is
        // deleted as soon as initdb has read it (and with the folder when anything fails).
        var root = Path.Combine(parent, "pgvm-cluster-" + Guid.NewGuid().ToString("N")[..12]);
        CreatePrivateDirectory(root);
        var cluster = new PrivateCluster(bin, root, FreePort(), password, serverSettings);
        var passwordFile = Path.Combine(root, PasswordFile);
        try
        {
            await using (var file = new FileStream(passwordFile, PrivateNewFile()))
            {
                await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(password), cancellationToken);
            }

            if (Environment.UserName == "root")
            {
                await RunAsync("chown", ["-R", "postgres:postgres", root], cancellationToken);
            }

            try
            {
                await cluster.PgAsync("initdb", ["-D", cluster.DataDirectory, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=" + passwordFile, "--no-sync"], cancellationToken);
            }
            finally
            {
                File.Delete(passwordFile);
            }

            await cluster.StartServerAsync(cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private static async Task<PrivateCluster> StartContainerAsync(string password, IReadOnlyList<string> serverSettings, CancellationToken cancellationToken)
    {
        var port = FreePort();
        var container = new PostgreSqlBuilder(PostgresServer.Image)
            .WithUsername("postgres").WithPassword(password).WithDatabase("postgres")
            .WithPortBinding(port, 5432)
            .WithCommand(serverSettings.SelectMany(setting => new[] { "-c", setting }).ToArray())
            .Build();
        try
        {
            await container.StartAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await container.DisposeAsync();
            throw new InvalidOperationException(
                "This test stops a database under a running lesson, so it needs a PostgreSQL server of its own: it found no initdb in " +
                string.Join(", ", BinDirectories) + $" and could not start {PostgresServer.Image} with Docker ({e.Message.Split('\n')[0].Trim()}). " +
                "Install PostgreSQL with pgvector (scripts/db.sh up does) or start Docker; the shared test server is never stopped.", e);
        }

        return new PrivateCluster("", "", port, password, serverSettings, container);
    }

    public Task StartServerAsync(CancellationToken cancellationToken) =>
        _container is not null ? _container.StartAsync(cancellationToken) :
        PgAsync("pg_ctl", ["-D", DataDirectory, "-l", Path.Combine(_root, "log"), "-w", "-t", "30",
            "-o", $"-p {Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off{string.Concat(_serverSettings.Select(s => " -c " + s))}", "start"],
            cancellationToken);

    /// <summary>
    /// Restarts the server as a standby (standby.signal, no primary to follow): it recovers to where it stopped and
    /// stays in recovery, serving read-only sessions, or none when started with hot_standby=off.
    /// </summary>
    public async Task BecomeStandbyAsync(CancellationToken cancellationToken)
    {
        if (_container is not null)
        {
            await _container.ExecAsync(["touch", "/var/lib/postgresql/data/standby.signal"], cancellationToken);
            await _container.StopAsync(cancellationToken);
            await _container.StartAsync(cancellationToken);
            return;
        }

        await PgAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "stop"], cancellationToken);
        await (Environment.UserName == "root"
            ? RunAsync("runuser", ["-u", "postgres", "--", "touch", Path.Combine(DataDirectory, "standby.signal")], cancellationToken)
            : RunAsync("touch", [Path.Combine(DataDirectory, "standby.signal")], cancellationToken));
        await StartServerAsync(cancellationToken);
    }

    /// <summary>Stops the server at once (<c>-m immediate</c>: sessions are cut, as when a machine goes away).</summary>
    public Task StopAsync(CancellationToken cancellationToken) =>
        _container is not null ? _container.StopAsync(cancellationToken) :
        PgAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "stop"], cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
            return;
        }

        try
        {
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                await StopAsync(CancellationToken.None);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private Task PgAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        Environment.UserName == "root"
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. arguments], cancellationToken)
            : RunAsync(Path.Combine(_bin, tool), arguments, cancellationToken);

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetTempPath() };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited {process.ExitCode}: {await error} {await output}");
        }
    }

    // Windows has no Unix modes; there the temporary folder is the user's own already.
    private static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static FileStreamOptions PrivateNewFile()
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return options;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
