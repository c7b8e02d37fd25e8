using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Citus;

namespace PgVectorModule.Lessons.Lesson11;

/// <param name="Name">Which search: one tenant's, over all tenants, hybrid over all tenants.</param>
/// <param name="Answered">Searches that returned their rows while the shards moved.</param>
/// <param name="Failed">Searches that ended in an error.</param>
/// <param name="FirstError">The first error's message, if any.</param>
/// <param name="SlowestMs">The slowest search, in milliseconds.</param>
public sealed record SearchesDuringMove(string Name, int Answered, int Failed, string? FirstError, double SlowestMs);

public sealed partial class ScaleOutLesson
{
    /// <summary>The pause between two searches of one searcher while the shards move.</summary>
    public static readonly TimeSpan SearchPause = TimeSpan.FromMilliseconds(20);

    /// <summary>Rows and an order-free checksum (the sum of a 64-bit hash of every whole row) of each distributed table.</summary>
    public const string RowsAndChecksums = """
        SELECT 'documents' AS table_name, count(*) AS row_count, sum(hashtextextended(d::text, 0)) AS checksum FROM documents d
        UNION ALL
        SELECT 'articles', count(*), sum(hashtextextended(a::text, 0)) FROM articles a
        UNION ALL
        SELECT 'article_terms', count(*), sum(hashtextextended(t::text, 0)) FROM article_terms t
        """;

    /// <summary>Which worker holds how many shards of documents (its co-located tables' shards go with them).</summary>
    public const string ShardsPerWorker = """
        SELECT nodename || ':' || nodeport AS node, count(*) AS documents_shards, pg_size_pretty(sum(shard_size)) AS size
        FROM citus_shards WHERE table_name = 'documents'::regclass
        GROUP BY nodename, nodeport ORDER BY nodeport
        """;

    private static async Task RebalanceAsync(Lesson lesson, NpgsqlDataSource citus, CitusCluster? cluster, IReadOnlyList<Vector> probes, SingleServer single, CancellationToken cancellationToken)
    {
        lesson.Step("rebalance", "A third worker, and shards moved while searching",
            "citus_add_node registers a new worker; it holds no shards until a rebalance moves some there. citus_rebalance_start moves shard groups (a shard with its co-located shards) in the background: " +
            "each is copied, then kept up to date by logical replication, then switched over in a moment, so reads never stop. Searches run throughout; rows, checksums and answers are compared before and after.");
        if (cluster is null)
        {
            lesson.Say("Skipped: the cluster is CITUS_URL's, and the lesson adds no node to a cluster it did not start. Unset CITUS_URL to run this step on a cluster of the lesson's own.", Tone.Warning);
            return;
        }

        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        // Counted again after the move, and shown there.
        IReadOnlyList<IReadOnlyDictionary<string, object?>> before;
        using (lesson.QuietSql())
        {
            before = await lesson.QueryAsync(RowsAndChecksums, connection, [], cancellationToken);
        }

        var answersBefore = await AnswersAsync(connection, probes, cancellationToken);

        var worker = await cluster.AddWorkerAsync(cancellationToken);
        lesson.Sql(cluster.Commands[^1].Split('\n', 2)[1], [$"{worker.Name}: a new PostgreSQL server with citus, started on 127.0.0.1:{worker.Port}"]);
        IReadOnlyList<IReadOnlyDictionary<string, object?>> plan;
        using (lesson.Detail())
        {
            plan = await lesson.QueryAsync("""
                SELECT sourceport, targetport, count(*) AS shards
                FROM get_rebalance_table_shards_plan() GROUP BY sourceport, targetport ORDER BY sourceport
                """, connection, [], cancellationToken);
            lesson.Table(plan, ("from worker on port", r => r["sourceport"]), ("to worker on port", r => r["targetport"]), ("shards (of every co-located table)", r => r["shards"]));
        }


        using var stopSearching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var searches = new[]
        {
            SearchWhileMovingAsync(citus, "one tenant's vector search", (c, i) => IdsAsync(c, TenantSearch, probes[i % probes.Count], stopSearching.Token, tenant: 1 + (i % TenantCount)), stopSearching.Token),
            SearchWhileMovingAsync(citus, "vector search over all tenants", (c, i) => IdsAsync(c, AllTenantsSearch, probes[i % probes.Count], stopSearching.Token), stopSearching.Token),
            SearchWhileMovingAsync(citus, "hybrid search over all tenants", (c, i) => RankAsync(c, ReciprocalRankFusion(Bm25Global("@candidates")), JudgedQueries[i % JudgedQueries.Count].Query, single.Articles[i % single.Articles.Count].Embedding, stopSearching.Token), stopSearching.Token),
        };

        var moving = Stopwatch.StartNew();
        var job = await lesson.QueryAsync("SELECT citus_rebalance_start() AS job_id", connection, [], cancellationToken);
        string state;
        using (lesson.QuietSql())
        {
            // citus_rebalance_wait() would block this connection; polling shows the job as it goes and lets Ctrl+C in.
            do
            {
                await Task.Delay(500, cancellationToken);
                state = (string)(await lesson.QueryAsync("SELECT state::text AS state FROM citus_rebalance_status()", connection, [], cancellationToken))[0]["state"]!;
            }
            while (state is not ("finished" or "failed" or "cancelled"));
        }

        moving.Stop();
        await stopSearching.CancelAsync();
        var during = await Task.WhenAll(searches);
        using (lesson.Detail())
        {
            lesson.Sql("SELECT state FROM citus_rebalance_status();  -- every half second, until the job is done", [$"job {job[0]["job_id"]}: {state} after {moving.Elapsed.TotalSeconds:N0} s"]);
        }

        lesson.Table(during, ("search", d => d.Name), ("answered during the move", d => d.Answered), ("failed", d => d.Failed),
            ("slowest ms", d => d.SlowestMs.ToString("N0", CultureInfo.InvariantCulture)), ("first error", d => d.FirstError ?? ""));

        IReadOnlyList<IReadOnlyDictionary<string, object?>> after, placement;
        using (lesson.Detail())
        {
            after = await lesson.QueryAsync(RowsAndChecksums, connection, [], cancellationToken);
            placement = await lesson.QueryAsync(ShardsPerWorker, connection, [], cancellationToken);
            lesson.Table(before.Zip(after),
                ("table", p => p.First["table_name"]),
                ("rows before", p => p.First["row_count"]), ("rows after", p => p.Second["row_count"]),
                ("checksum before", p => p.First["checksum"]), ("checksum after", p => p.Second["checksum"]),
                ("same", p => Same(p.First, p.Second)));
        }

        // Shown: the rows, and whether rows and checksum are the same; the checksums themselves are in the table above.
        lesson.Table(before.Zip(after),
            ("table", p => p.First["table_name"]), ("rows before", p => p.First["row_count"]), ("rows after", p => p.Second["row_count"]),
            ("same rows and checksum", p => Same(p.First, p.Second)));
        var answersAfter = await AnswersAsync(connection, probes, cancellationToken);
        var same = answersBefore.Zip(answersAfter).Count(p => p.First.SequenceEqual(p.Second));
        lesson.Table(placement, ("worker", r => r["node"]), ("documents shards", r => r["documents_shards"]), ("their size", r => r["size"]));
        var failed = during.Sum(d => d.Failed);
        lesson.Say(state == "finished" && failed == 0
            ? ($"The rebalance {state} in {moving.Elapsed.TotalSeconds:N0} s while {during.Sum(d => d.Answered):N0} searches ran, none failed; every table has its rows and checksum, and {same} of {answersBefore.Count} searches give the same answer as before.", Tone.Good)
            : ($"The rebalance ended '{state}' with {failed} failed searches. {same} of {answersBefore.Count} answers are as before.", Tone.Bad));
    }

    /// <summary>The answers compared before and after the move: every probe over all tenants, for one tenant, and hybrid.</summary>
    private static async Task<IReadOnlyList<IReadOnlyList<long>>> AnswersAsync(NpgsqlConnection connection, IReadOnlyList<Vector> probes, CancellationToken cancellationToken)
    {
        var answers = new List<IReadOnlyList<long>>();
        for (var i = 0; i < probes.Count; i++)
        {
            answers.Add(await IdsAsync(connection, AllTenantsSearch, probes[i], cancellationToken));
            answers.Add(await IdsAsync(connection, TenantSearch, probes[i], cancellationToken, tenant: 1 + (i % TenantCount)));
        }

        foreach (var judged in JudgedQueries)
        {
            answers.Add(await RankAsync(connection, Bm25Global("@limit"), judged.Query, null, cancellationToken));
        }

        return answers;
    }

    /// <summary>Runs one search again and again, each time on a connection from the pool, until told to stop.</summary>
    private static async Task<SearchesDuringMove> SearchWhileMovingAsync(NpgsqlDataSource citus, string name,
        Func<NpgsqlConnection, int, Task<IReadOnlyList<long>>> search, CancellationToken stop)
    {
        var errors = new ConcurrentQueue<string>();
        var (answered, failed, slowest) = (0, 0, 0.0);
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            var watch = Stopwatch.StartNew();
            try
            {
                await using var connection = await citus.OpenConnectionAsync(stop);
                var rows = await search(connection, i);
                answered += rows.Count > 0 ? 1 : 0;
                failed += rows.Count > 0 ? 0 : 1;
                slowest = Math.Max(slowest, watch.Elapsed.TotalMilliseconds);
                // A steady stream, not a flood: on two cores searches flat out would starve the move itself.
                await Task.Delay(SearchPause, stop);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                // Stopped mid-search: not a failure of the search.
            }
            catch (NpgsqlException e)
            {
                failed++;
                errors.Enqueue(e.Message.Split('\n')[0]);
            }
        }

        return new SearchesDuringMove(name, answered, failed, errors.TryPeek(out var first) ? first : null, slowest);
    }

    private static string Same(IReadOnlyDictionary<string, object?> before, IReadOnlyDictionary<string, object?> after) =>
        Equals(before["row_count"], after["row_count"]) && Equals(before["checksum"], after["checksum"]) ? "yes" : "NO";
}
