using PgVectorModule.Citus;

namespace PgVectorModule.Lessons.Lesson11;

/// <param name="Search">What was asked.</param>
/// <param name="Worker">The worker holding the shard it needs, or "every worker".</param>
/// <param name="Outcome">The rows it returned, or the one sentence of the error.</param>
public sealed record SearchOutcome(string Search, string Worker, string Outcome);

public sealed partial class ScaleOutLesson
{
    private static async Task WorkerStopsAsync(Lesson lesson, NpgsqlDataSource citus, CitusCluster? cluster, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("worker-stops", "A worker stops",
            "Each shard has one copy (citus.shard_replication_factor = 1): when the worker holding it stops, a query that needs that shard fails, and one that needs only shards on live workers still answers. " +
            "A search over all tenants needs every shard; a tenant's search needs its one. High availability is a standby per node (lesson 08), which Citus does not add by itself.");
        if (cluster is null)
        {
            lesson.Say("Skipped: the cluster is CITUS_URL's, and the lesson stops no node of a cluster it did not start.", Tone.Warning);
            return;
        }

        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        var owners = new Dictionary<int, string>();
        using (lesson.QuietSql())
        {
            for (var tenant = 1; tenant <= TenantCount; tenant++)
            {
                owners[tenant] = (string)(await lesson.QueryAsync(TenantPlacement, connection, [new NpgsqlParameter("tenant", tenant)], cancellationToken))[0]["node"]!;
            }
        }

        // The worker holding the large tenant stops; a tenant whose shard is elsewhere keeps being served.
        var stoppedAddress = owners[LargeTenant];
        var stopped = cluster.Workers.Single(w => stoppedAddress.EndsWith($":{w.Port}", StringComparison.Ordinal));
        var elsewhere = owners.First(o => o.Value != stoppedAddress).Key;
        lesson.Code($"pg_ctl -D {stopped.DataDirectory} -m immediate stop", "shell");
        await cluster.StopNodeAsync(stopped, cancellationToken);

        var outcomes = new List<SearchOutcome>
        {
            await TryAsync("vector search over all tenants", "every worker", () => IdsAsync(connection, AllTenantsSearch, question, cancellationToken)),
            await TryAsync($"tenant {LargeTenant}'s search", owners[LargeTenant], () => IdsAsync(connection, TenantSearch, question, cancellationToken, tenant: LargeTenant)),
            await TryAsync($"tenant {elsewhere}'s search", owners[elsewhere], () => IdsAsync(connection, TenantSearch, question, cancellationToken, tenant: elsewhere)),
            await TryAsync("hybrid search over all tenants", "every worker", () => RankAsync(connection, ReciprocalRankFusion(Bm25Global("@candidates")), JudgedQueries[0].Query, question, cancellationToken)),
        };
        // The two searches are steps 4 and 5's; an error is shown by its start here and whole in the line below the table.
        using (lesson.Detail())
        {
            lesson.Sql(AllTenantsSearch + ";\n" + TenantSearch + ";", [$"with {stopped.Name} ({stoppedAddress}) stopped"]);
        }

        lesson.Table(outcomes, ("search", o => o.Search), ("needs the shard on", o => o.Worker), ("what the application gets", o => Lesson.Excerpt(o.Outcome, head: 44)));

        await cluster.RestartNodeAsync(stopped, cancellationToken);
        var again = await TryAsync("vector search over all tenants, the worker started again", "every worker", () => IdsAsync(connection, AllTenantsSearch, question, cancellationToken));
        lesson.Say($"Started again, the worker serves its shards: {again.Outcome}.");
        var error = outcomes[0].Outcome;
        lesson.Say($"The error a learner gets, in one sentence: {error}. It names the worker that is gone; tenant {elsewhere}, whose shard lives on {owners[elsewhere]}, was served all along.");
    }

    /// <summary>A search's outcome as the application meets it: its row count, or the first line of the server's error.</summary>
    private static async Task<SearchOutcome> TryAsync(string search, string worker, Func<Task<IReadOnlyList<long>>> run)
    {
        try
        {
            var rows = await run();
            return new SearchOutcome(search, worker, $"{rows.Count} rows");
        }
        catch (PostgresException e)
        {
            return new SearchOutcome(search, worker, $"ERROR {e.SqlState}: {e.MessageText.Split('\n')[0].Trim()}");
        }
    }
}
