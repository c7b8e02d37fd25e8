using System.Security.Cryptography;
using PgVectorModule.Servers;

namespace PgVectorModule.Citus;

/// <param name="Name">coordinator, worker1, worker2...</param>
/// <param name="Port">Its port on 127.0.0.1.</param>
/// <param name="DataDirectory">Its data folder, inside the run's folder.</param>
public sealed record CitusNode(string Name, int Port, string DataDirectory);

/// <summary>
/// A Citus cluster on this machine, for as long as the object lives: a coordinator and workers on 127.0.0.1, each a
/// PostgreSQL server started with shared_preload_libraries = 'citus' and given the citus and vector extensions, the
/// workers registered with the coordinator. Its superuser password is new for every cluster, written only to a pgpass
/// file readable by its owner alone; the servers (for their connections to each other) and every client read it
/// there. Disposing stops every node and deletes the folder, whatever ended the run (see <see cref="LocalServers"/>).
/// </summary>
public sealed class CitusCluster : IAsyncDisposable
{
    /// <summary>The database Citus runs in on every node (the extension is per database).</summary>
    public const string Database = "postgres";
    public const string User = "postgres";

    /// <summary>
    /// Per node: Citus loaded at start; logical decoding, which an online shard move follows changes with; connections
    /// enough for a coordinator's fan-out to 32 shards from several clients at once; and the address a node uses for
    /// connections to itself (Citus's default, localhost, may resolve to ::1, where nothing listens).
    /// </summary>
    public static IReadOnlyList<string> ServerSettings { get; } =
        ["shared_preload_libraries=citus", "wal_level=logical", "max_connections=200", "shared_buffers=128MB", "citus.local_hostname=127.0.0.1"];

    private readonly LocalServers _servers;
    private readonly string _passFile;
    private readonly List<CitusNode> _nodes = [];

    private CitusCluster(LocalServers servers, CitusInstallation installation, string passFile)
    {
        _servers = servers;
        Installation = installation;
        _passFile = passFile;
    }

    public CitusInstallation Installation { get; }

    /// <summary>Every node started, the coordinator first.</summary>
    public IReadOnlyList<CitusNode> Nodes => _nodes;

    public CitusNode Coordinator => _nodes[0];

    public IEnumerable<CitusNode> Workers => _nodes.Skip(1);

    /// <summary>What starting the cluster ran: the shell commands and the SQL, in order, for a lesson to show.</summary>
    public List<string> Commands { get; } = [];

    /// <summary>The folder of this run's nodes (their logs are there too).</summary>
    public string Folder => _servers.Folder;

    /// <summary>
    /// Starts a coordinator and <paramref name="workers"/> workers with <paramref name="installation"/>'s programs,
    /// registers them (citus_set_coordinator_host, citus_add_node) and returns the cluster. The run's folder is named
    /// after <paramref name="owner"/> and this process, so what a killed run left is found and stopped by the next.
    /// </summary>
    public static async Task<CitusCluster> StartAsync(CitusInstallation installation, string owner, int workers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(installation);
        var servers = await LocalServers.StartAsync(installation.BinDirectory, owner, cancellationToken);
        try
        {
            var passFile = Path.Combine(servers.Folder, "pgpass");
            var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
            // Written 0600 before anything reads it; the servers run as the server user, who must own it.
            await servers.WriteFileAsync(passFile, $"*:*:*:{User}:{password}\n", cancellationToken);
            var cluster = new CitusCluster(servers, installation, passFile);
            try
            {
                var names = new[] { "coordinator" }.Concat(Enumerable.Range(1, workers).Select(i => $"worker{i}")).ToList();
                var nodes = await Task.WhenAll(names.Select(name => cluster.InitAsync(name, password, cancellationToken)));
                cluster._nodes.AddRange(nodes);
                await Task.WhenAll(nodes.Select(node => cluster.StartNodeAsync(node, cancellationToken)));
                await cluster.SqlAsync(cluster.Coordinator, $"SELECT citus_set_coordinator_host('127.0.0.1', {cluster.Coordinator.Port})", cancellationToken);
                foreach (var worker in cluster.Workers)
                {
                    await cluster.SqlAsync(cluster.Coordinator, $"SELECT citus_add_node('127.0.0.1', {worker.Port})", cancellationToken);
                }

                return cluster;
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
        }
        catch
        {
            await servers.DisposeAsync();
            throw;
        }
    }

    /// <summary>A connection string for <paramref name="node"/> (the coordinator when null): the password comes from the pgpass file.</summary>
    public NpgsqlConnectionStringBuilder ConnectionString(CitusNode? node = null) => new()
    {
        Host = "127.0.0.1",
        Port = (node ?? Coordinator).Port,
        Username = User,
        Database = Database,
        Passfile = _passFile,
        ApplicationName = "pgvector-module-citus",
        // A busy machine may take more than the default 15 s to open a connection (TLS, SCRAM) while nodes start.
        Timeout = 60,
    };

    /// <summary>Starts one more worker and registers it; its shards come only when a rebalance moves some there.</summary>
    public async Task<CitusNode> AddWorkerAsync(CancellationToken cancellationToken)
    {
        var password = await ReadPasswordAsync(cancellationToken);
        var node = await InitAsync($"worker{_nodes.Count}", password, cancellationToken);
        _nodes.Add(node);
        await StartNodeAsync(node, cancellationToken);
        await SqlAsync(Coordinator, $"SELECT citus_add_node('127.0.0.1', {node.Port})", cancellationToken);
        return node;
    }

    /// <summary>Stops a node at once (-m immediate: sessions are cut, as when a machine goes away).</summary>
    public async Task StopNodeAsync(CitusNode node, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        await new PostgresCluster(_servers.PgBin, node.DataDirectory).StopAsync(immediate: true, cancellationToken);
    }

    /// <summary>Starts a node stopped by <see cref="StopNodeAsync"/> again, on its port.</summary>
    public async Task RestartNodeAsync(CitusNode node, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        await _servers.StartPostgresAsync($"Citus {node.Name}", node.DataDirectory, node.Port, ServerSettings, ServerEnvironment, cancellationToken);
    }

    public ValueTask DisposeAsync() => _servers.DisposeAsync();

    private Dictionary<string, string> ServerEnvironment => new() { ["PGPASSFILE"] = _passFile };

    private async Task<CitusNode> InitAsync(string name, string password, CancellationToken cancellationToken)
    {
        // The node's own folder, the server user's: its data folder and the log pg_ctl writes beside it (the run's folder
        // itself the server user may only pass through).
        var data = Path.Combine(await _servers.NewFolderAsync(name, cancellationToken), "data");
        await new PostgresCluster(_servers.PgBin, data).InitAsync(User, password, ["--no-sync"], log: null, cancellationToken);
        lock (Commands)
        {
            Commands.Add($"initdb -D {data} -U {User} --pwfile=<file> --auth=scram-sha-256");
        }

        return new CitusNode(name, LocalServers.Port($"the Citus {name}'s port", null), data);
    }

    private async Task StartNodeAsync(CitusNode node, CancellationToken cancellationToken)
    {
        var command = await _servers.StartPostgresAsync($"Citus {node.Name}", node.DataDirectory, node.Port, ServerSettings, ServerEnvironment, cancellationToken);
        lock (Commands)
        {
            Commands.Add("PGPASSFILE=<pgpass> " + command);
        }

        await SqlAsync(node, "CREATE EXTENSION IF NOT EXISTS citus", cancellationToken);
        await SqlAsync(node, "CREATE EXTENSION IF NOT EXISTS vector", cancellationToken);
    }

    private async Task SqlAsync(CitusNode node, string sql, CancellationToken cancellationToken)
    {
        var cs = ConnectionString(node);
        cs.Pooling = false;
        await using var connection = new NpgsqlConnection(cs.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
        lock (Commands)
        {
            Commands.Add($"-- on the {node.Name} ({node.Port})\n{sql};");
        }
    }

    private async Task<string> ReadPasswordAsync(CancellationToken cancellationToken)
    {
        var line = (await File.ReadAllTextAsync(_passFile, cancellationToken)).Trim();
        return line[(line.LastIndexOf(':') + 1)..];
    }
}
