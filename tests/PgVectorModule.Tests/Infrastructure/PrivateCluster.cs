using System.Security.Cryptography;
using PgVectorModule.Servers;
using Testcontainers.PostgreSql;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL cluster of the test's own, for tests that stop the database under a running lesson: the
/// shared server must never be stopped. Made and run the way the lessons run theirs (<see cref="PostgresInstallation"/>
/// finds the programs, <see cref="PostgresCluster"/> runs initdb and pg_ctl, as the postgres user when the tests run
/// as root), on a free loopback port with password authentication, no Unix socket, and its data in a private temporary
/// folder deleted on dispose. Each cluster's superuser gets a random password: another user of the machine reaches the
/// loopback port too. Where there are no installed programs but a Docker engine answers, the cluster is a container of
/// <see cref="PostgresServer.Image"/> bound to a fixed host port, so stopping and starting it keeps its address.
/// </summary>
public sealed class PrivateCluster : IAsyncDisposable
{
    private readonly PostgresCluster? _cluster;
    private readonly string _root;
    private readonly PostgreSqlContainer? _container;
    private readonly IReadOnlyList<string> _serverSettings;

    private PrivateCluster(PostgresCluster? cluster, string root, int port, string password, IReadOnlyList<string> serverSettings, PostgreSqlContainer? container = null)
    {
        _cluster = cluster;
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
        ServerLanes.Lookup($"postgresql://postgres:{Password}@127.0.0.1:{Port}/postgres"), "test");

    /// <param name="serverSettings">name=value pairs given to the server at every start (-c), for tests that need a
    /// server configured differently from the shared one: max_connections, default_transaction_read_only...</param>
    public static Task<PrivateCluster> StartAsync(CancellationToken cancellationToken, params string[] serverSettings) =>
        StartInAsync(Path.GetTempPath(), cancellationToken, serverSettings);

    /// <summary>As <see cref="StartAsync"/>, with the cluster's folder made inside <paramref name="parent"/>.</summary>
    public static async Task<PrivateCluster> StartInAsync(string parent, CancellationToken cancellationToken, params string[] serverSettings)
    {
        var password = RandomNumberGenerator.GetHexString(32, lowercase: true);
        var installation = OperatingSystem.IsWindows() ? null : await FindProgramsAsync(cancellationToken);
        if (installation is null)
        {
            return await StartContainerAsync(password, serverSettings, cancellationToken);
        }

        // Private from the start: the folder is the owner's alone (the postgres user's under root), and so is the
        // password file initdb reads, which is deleted as soon as initdb has read it (and with the folder when anything fails).
        var root = Path.Combine(parent, "pgvm-cluster-" + Guid.NewGuid().ToString("N")[..12]);
        var cluster = new PrivateCluster(new PostgresCluster(installation.BinFolder, Path.Combine(root, "data")), root, LocalServers.FreePort(), password, serverSettings);
        try
        {
            await PostgresCluster.MakePrivateFolderAsync(root, cancellationToken);
            await cluster._cluster!.InitAsync("postgres", password, ["--no-sync"], log: null, cancellationToken);
            await cluster.StartServerAsync(cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The programs of the test run's server: PG_BINDIR when set (scripts/test.sh sets it to PostgreSQL 18's programs for
    /// its second lane), else the installed programs of the shared server's major, else any installed ones.
    /// </summary>
    private static async Task<PostgresInstallation?> FindProgramsAsync(CancellationToken cancellationToken)
    {
        var buildCache = Environment.GetEnvironmentVariable("PGVECTOR_MODULE_CACHE") is { Length: > 0 } cache ? cache : null;
        if (ServerLanes.ProgramsFolder is { } configured)
        {
            return await PostgresInstallation.FindAsync(configured, null, buildCache, cancellationToken);
        }

        return (PostgresServer.Major is { } major ? await PostgresInstallation.FindAsync(null, major, buildCache, cancellationToken) : null)
               ?? await PostgresInstallation.FindAsync(null, null, buildCache, cancellationToken);
    }

    private static async Task<PrivateCluster> StartContainerAsync(string password, IReadOnlyList<string> serverSettings, CancellationToken cancellationToken)
    {
        var port = LocalServers.FreePort();
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
            var looked = ServerLanes.ProgramsFolder is { } configured ? $"PG_BINDIR ({configured})" : PostgresInstallation.UsualPlaces;
            throw new InvalidOperationException(
                $"This test stops a database under a running lesson, so it needs a PostgreSQL server of its own: it found no PostgreSQL programs in {looked} " +
                $"and could not start {PostgresServer.Image} with Docker ({e.Message.Split('\n')[0].Trim()}). " +
                "Install PostgreSQL with pgvector (scripts/db.sh up does) or start Docker; the shared test server is never stopped.", e);
        }

        return new PrivateCluster(null, "", port, password, serverSettings, container);
    }

    public async Task StartServerAsync(CancellationToken cancellationToken)
    {
        if (_container is not null)
        {
            await _container.StartAsync(cancellationToken);
            return;
        }

        await _cluster!.StartAsync("test's private cluster", Path.Combine(_root, "log"), Port, ["fsync=off", .. _serverSettings], environment: null, cancellationToken);
    }

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

        Checked("pg_ctl stop", await _cluster!.StopAsync(immediate: false, cancellationToken));
        // Made by the server's own user, who owns the data folder.
        Checked("touch standby.signal", await LocalServers.RunAsync("touch", [Path.Combine(DataDirectory, "standby.signal")], asServerUser: true, password: null, cancellationToken));
        await StartServerAsync(cancellationToken);
    }

    /// <summary>Stops the server at once (<c>-m immediate</c>: sessions are cut, as when a machine goes away).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_container is not null)
        {
            await _container.StopAsync(cancellationToken);
            return;
        }

        Checked("pg_ctl stop", await _cluster!.StopAsync(immediate: true, cancellationToken));
    }

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

    private static void Checked(string what, ToolResult result)
    {
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{what} exited {result.ExitCode}: {result.Output.Trim()}");
        }
    }
}
