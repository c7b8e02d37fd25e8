using PgVectorModule.Citus;
using PgVectorModule.Configuration;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson11;

/// <summary>
/// Lesson 11: past one machine with Citus, for real. A coordinator and two workers started on this machine (or the
/// cluster CITUS_URL names); documents distributed by tenant, co-located tables, a reference table, the HNSW index on
/// every shard; a tenant's search routed to one shard, a search over all tenants fanned out and merged, with its
/// recall; hybrid search with BM25's statistics per tenant and global; a third worker and a rebalance while searches
/// run; a worker stopped. Every server it starts, it stops; without Citus it says how to get it and skips the rest.
/// </summary>
public sealed partial class ScaleOutLesson : ILesson
{
    public static LessonInfo Info => LessonCatalog.Get("11");

    /// <summary>The schema of the distributed tables on the coordinator.</summary>
    public const string Schema = "lesson11";

    /// <summary>The schema of the single-server reference: the same articles in plain tables on the coordinator.</summary>
    public const string SingleServerSchema = "lesson11_single";

    public const int Workers = 2;

    public const string ClusterStep = "A Citus cluster on this machine";

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var settings = lesson.Settings.Operations;
        // Before any work: a CITUS_URL that cannot be used, or a CITUS_BINDIR that is not Citus, is one sentence.
        var given = await GivenCoordinatorAsync(settings.CitusUrl, cancellationToken);
        var installation = given is null ? await CitusInstallation.FindAsync(settings, cancellationToken) : null;

        lesson.Step("citus-cluster", ClusterStep,
            "Citus turns one PostgreSQL into a coordinator in front of workers: every node is an ordinary PostgreSQL server with the citus extension loaded at start. " +
            "The coordinator keeps the metadata (which shard of which table lives on which worker); the workers hold the shards, each an ordinary table.");
        if (given is null && installation is null)
        {
            lesson.Say($"Skipped: {CitusInstallation.HowToGetIt}", Tone.Warning);
            return;
        }

        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        // Every node the lesson starts runs under this object: disposing it stops them all, whether the lesson ends,
        // fails or is cancelled (and at process exit, for SIGTERM).
        await using var cluster = installation is null ? null : await StartClusterAsync(lesson, installation, cancellationToken);
        var coordinator = given ?? cluster!.ConnectionString();
        await using var citus = CoordinatorSource(coordinator, Schema);
        await ShowNodesAsync(lesson, citus, cluster, cancellationToken);

        var single = await SingleServerAsync(lesson, coordinator, embedder, cancellationToken);
        await DistributeAsync(lesson, citus, single.Articles, embedder.Dimensions, cancellationToken);
        var probes = Probes(single.Articles);
        await RoutedSearchAsync(lesson, citus, probes[0], cancellationToken);
        await FannedOutSearchAsync(lesson, citus, probes, cancellationToken);
        await HybridAsync(lesson, citus, single, embedder, cancellationToken);
        await RebalanceAsync(lesson, citus, cluster, probes, single, cancellationToken);
        await WorkerStopsAsync(lesson, citus, cluster, probes[0], cancellationToken);
    }

    /// <summary>
    /// A data source on the coordinator, in <paramref name="schema"/>. citus.propagate_set_commands = local: a SET LOCAL
    /// inside a transaction reaches the workers' connections too (hnsw.ef_search must be set where the shards are searched).
    /// </summary>
    public static NpgsqlDataSource CoordinatorSource(NpgsqlConnectionStringBuilder coordinator, string schema)
    {
        ArgumentNullException.ThrowIfNull(coordinator);
        var cs = new NpgsqlConnectionStringBuilder(coordinator.ConnectionString)
        {
            SearchPath = $"{schema}, public",
            Options = $"{coordinator.Options} -c citus.propagate_set_commands=local".Trim(),
            ApplicationName = "lesson11",
        };
        var builder = new NpgsqlDataSourceBuilder(cs.ConnectionString);
        builder.UseVector();
        return builder.Build();
    }

    private static async Task<CitusCluster> StartClusterAsync(Lesson lesson, CitusInstallation installation, CancellationToken cancellationToken)
    {
        lesson.Say($"Starting a coordinator and {Workers} workers with {installation.Version} from {installation.BinDirectory} (citus and pgvector installed there)...", Tone.Aside);
        var cluster = await CitusCluster.StartAsync(installation, "lesson11", Workers, cancellationToken);
        // How each server was made and started is the detail; the SQL shows each statement once, with the nodes it ran on.
        using (lesson.Detail())
        {
            lesson.Code(string.Join('\n', cluster.Commands.Where(c => !c.StartsWith("--", StringComparison.Ordinal))), "shell");
        }

        // Each statement once, under the nodes it ran on (in the order first sent).
        const string on = "-- on the ";
        var sent = cluster.Commands.Where(c => c.StartsWith(on, StringComparison.Ordinal)).Select(c => c.Split('\n', 2)).ToList();
        var nodes = sent.Select(c => c[0]).Distinct().Count();
        var groups = new List<(string Where, List<string> Statements)>();
        foreach (var statement in sent.GroupBy(c => c[1], c => c[0][on.Length..]))
        {
            var where = statement.Count() == nodes ? "-- on every node" : on + string.Join(", the ", statement.Order(StringComparer.Ordinal));
            var group = groups.FirstOrDefault(g => g.Where == where);
            if (group.Statements is null)
            {
                group = (where, []);
                groups.Add(group);
            }

            group.Statements.Add(statement.Key);
        }

        lesson.Sql(string.Join("\n", groups.SelectMany(g => g.Statements.Prepend(g.Where))));
        return cluster;
    }

    private static async Task ShowNodesAsync(Lesson lesson, NpgsqlDataSource citus, CitusCluster? cluster, CancellationToken cancellationToken)
    {
        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        IReadOnlyList<IReadOnlyDictionary<string, object?>> nodes;
        using (lesson.Detail())
        {
            nodes = await lesson.QueryAsync("""
                SELECT nodeid, nodename, nodeport, CASE WHEN groupid = 0 THEN 'coordinator' ELSE 'worker' END AS role, shouldhaveshards
                FROM pg_dist_node ORDER BY groupid
                """, connection, [], cancellationToken);
        }

        lesson.Table(nodes, ("node", r => r["nodeid"]), ("host:port", r => $"{r["nodename"]}:{r["nodeport"]}"), ("role", r => r["role"]), ("holds shards", r => r["shouldhaveshards"]));
        lesson.Say(cluster is null
            ? $"The cluster CITUS_URL names: the lesson uses it and stops none of its nodes."
            : $"Each node's password is new for this run and lives only in a pgpass file readable by its owner ({cluster.Folder}/pgpass): the servers read it for their connections to each other, the lesson for its own.", Tone.Aside);
    }

    /// <summary>Before any work: CITUS_URL, when set, must parse, answer, and be a Citus coordinator with a worker.</summary>
    public static async Task<NpgsqlConnectionStringBuilder?> GivenCoordinatorAsync(string? url, CancellationToken cancellationToken)
    {
        if (url is null)
        {
            return null;
        }

        NpgsqlConnectionStringBuilder citus;
        try
        {
            citus = DatabaseUrl.Parse(url);
        }
        catch (SetupException e)
        {
            throw new SetupException(e.Message.Replace("DATABASE_URL", "CITUS_URL", StringComparison.Ordinal), ExitCodes.InvalidInput);
        }

        var quick = new NpgsqlConnectionStringBuilder(citus.ConnectionString) { Timeout = Math.Min(citus.Timeout, 5), Pooling = false };
        long workers;
        try
        {
            await using var connection = new NpgsqlConnection(quick.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var check = new NpgsqlCommand("SELECT count(*) FROM pg_extension WHERE extname = 'citus'", connection);
            workers = -1;
            if ((long)(await check.ExecuteScalarAsync(cancellationToken))! > 0)
            {
                await using var count = new NpgsqlCommand("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive", connection);
                workers = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
            }
        }
        catch (NpgsqlException e) when (e is not PostgresException)
        {
            throw new SetupException($"CITUS_URL ({citus.Host}:{citus.Port}) does not answer ({e.Message.Split('\n')[0].TrimEnd('.')}): start it with scripts/db.sh citus up, or unset CITUS_URL and the lesson starts a cluster of its own.", ExitCodes.DatabaseUnavailable, e);
        }

        return workers switch
        {
            < 0 => throw new SetupException($"CITUS_URL ({citus.Host}:{citus.Port}) answers but is not a Citus coordinator (no citus extension in database {citus.Database}): point it at the coordinator scripts/db.sh citus up prints, or unset it.", ExitCodes.InvalidInput),
            0 => throw new SetupException($"CITUS_URL ({citus.Host}:{citus.Port}) is a Citus coordinator without an active worker: add one with citus_add_node, or unset CITUS_URL and the lesson starts a cluster of its own.", ExitCodes.InvalidInput),
            _ => citus,
        };
    }
}
