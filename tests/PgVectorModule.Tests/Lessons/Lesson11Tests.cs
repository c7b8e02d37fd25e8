using System.Globalization;
using System.Net;
using System.Net.Sockets;
using PgVectorModule.Citus;
using PgVectorModule.Configuration;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson11;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Lessons;

/// <summary>
/// Lesson 11 starts a Citus cluster of its own (PostgreSQL 18 with citus and pgvector, from the build cache; see
/// <see cref="CitusBuild"/>): a coordinator and two workers, then a third, moved shards and a stopped worker. Its runs
/// are checked on the transcript, and after each run no server it started may be running. One class: one at a time.
/// </summary>
public class Lesson11Tests(TestDatabase database, CitusBuild citus) : IClassFixture<TestDatabase>, IClassFixture<CitusBuild>
{
    /// <summary>A whole run: the cluster, the embeddings, the rebalance (the longest part) on a shared 2-core machine.</summary>
    private static readonly TimeSpan ProcessLimit = TimeSpan.FromMinutes(15);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ModuleSettings Settings => database.Settings with { Operations = CitusBuild.Settings };

    [Fact]
    public async Task Runs_in_process_distributing_routing_fanning_out_rebalancing_under_searches_and_surviving_a_stopped_worker()
    {
        citus.Require();
        var result = await LessonRunner.RunAsync<ScaleOutLesson>(Settings);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        AssertFullRun(result.Transcript);
        Assert.Empty(ServerProcesses.StartedBy("lesson11", Environment.ProcessId));
    }

    /// <summary>The same database as the in-process run: whichever of the two comes second is the run again (a new cluster, the same results).</summary>
    [Fact]
    public async Task Runs_as_a_process_and_leaves_no_server_running()
    {
        citus.Require();
        using var process = LessonProcess.StartLesson("11", new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString });
        var result = await LessonProcess.WaitAsync(process, ProcessLimit);

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        AssertFullRun(Assert.IsType<LessonTranscript>(result.Transcript));
        Assert.Empty(ServerProcesses.StartedBy("lesson11", result.ProcessId));
    }

    [Fact]
    public async Task With_CITUS_URL_it_searches_that_cluster_adds_and_stops_none_of_its_nodes()
    {
        await using var cluster = await CitusCluster.StartAsync(citus.Installation, "lesson11test", 2, Ct);
        var settings = Settings with { Operations = CitusBuild.Settings with { CitusUrl = cluster.ConnectionString().ConnectionString } };

        var result = await LessonRunner.RunAsync<ScaleOutLesson>(settings);

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        var run = result.Transcript;
        Assert.Equal(8, run.Steps.Count);
        Assert.Equal("The cluster CITUS_URL names: the lesson uses it and stops none of its nodes.", run.Step("citus-cluster").Note("The cluster CITUS_URL names"));
        Assert.Equal("1", run.Step("one-shard").Plans[0].Plan.Split('\n').Single(l => l.Contains("Task Count", StringComparison.Ordinal)).Split(':')[1].Trim());
        Assert.StartsWith("Skipped: the cluster is CITUS_URL's", run.Step("rebalance").Note("Skipped"), StringComparison.Ordinal);
        Assert.StartsWith("Skipped: the cluster is CITUS_URL's", run.Step("worker-stops").Note("Skipped"), StringComparison.Ordinal);
        // Every node of the given cluster still answers, and it still has only its two workers.
        foreach (var node in cluster.Nodes)
        {
            await using var connection = new NpgsqlConnection(cluster.ConnectionString(node).ConnectionString);
            await connection.OpenAsync(Ct);
        }

        await using var coordinator = new NpgsqlConnection(cluster.ConnectionString().ConnectionString);
        await coordinator.OpenAsync(Ct);
        await using var count = new NpgsqlCommand("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0", coordinator);
        Assert.Equal(2L, await count.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task Cancelled_once_its_cluster_runs_it_exits_130_and_stops_every_node()
    {
        citus.Require();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var console = new TestConsole().Width(160);
        var run = LessonHost.RunAsync<ScaleOutLesson>([], new LessonHostOptions { Console = console, Settings = Settings, Interactive = false }, cancel.Token);

        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
        while (ServerProcesses.StartedBy("lesson11", Environment.ProcessId).Count(c => c.Contains("bin/postgres ", StringComparison.Ordinal)) < 1 + ScaleOutLesson.Workers)
        {
            Assert.False(run.IsCompleted, "The lesson ended before its cluster started.");
            Assert.True(DateTime.UtcNow < deadline, "No cluster within five minutes.");
            await Task.Delay(50, Ct);
        }

        await cancel.CancelAsync();
        var exit = await run.WaitAsync(TimeSpan.FromSeconds(90), Ct);

        Assert.True(exit == ExitCodes.Cancelled, console.Output);
        Assert.Empty(ServerProcesses.StartedBy("lesson11", Environment.ProcessId));
    }

    [Fact]
    public async Task Stopped_by_SIGTERM_as_a_process_it_leaves_no_server_running()
    {
        citus.Require();
        using var process = LessonProcess.StartLesson("11", new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString });
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
        while (ServerProcesses.StartedBy("lesson11", process.Id).Count(c => c.Contains("bin/postgres ", StringComparison.Ordinal)) < 1 + ScaleOutLesson.Workers)
        {
            Assert.False(process.HasExited, "The lesson ended before its cluster started.");
            Assert.True(DateTime.UtcNow < deadline, "No cluster within five minutes.");
            await Task.Delay(50, Ct);
        }

        await LessonProcess.SignalAsync(process, "TERM");

        var result = await LessonProcess.WaitAsync(process, TimeSpan.FromSeconds(90));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Empty(ServerProcesses.StartedBy("lesson11", result.ProcessId));
    }

    [Fact]
    public async Task Without_Citus_it_says_how_to_get_it_in_one_sentence_and_skips_the_rest()
    {
        var nowhere = Directory.CreateTempSubdirectory("no-citus-cache-").FullName;
        try
        {
            var operations = new OperationsSettings { BuildCache = nowhere };
            // The machine's own folders (/usr/lib/postgresql/N/bin) are searched too: they must hold no Citus for this test.
            Assert.Null(await CitusInstallation.FindAsync(operations, Ct));

            var result = await LessonRunner.RunAsync<ScaleOutLesson>(database.Settings with { Operations = operations });

            Assert.True(result.ExitCode == 0, result.Output);
            Assert.Single(result.Transcript.Steps);
            Assert.Equal("Skipped: " + CitusInstallation.HowToGetIt, result.Transcript.Steps[0].Note("Skipped"));
            Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(nowhere, recursive: true);
        }
    }

    [Fact]
    public async Task A_CITUS_BINDIR_without_Citus_is_one_sentence_and_exit_16_before_any_work()
    {
        var result = await LessonRunner.RunAsync<ScaleOutLesson>(database.Settings with { Operations = new OperationsSettings { CitusBinDir = "/usr/bin" } });

        Assert.True(result.ExitCode == ExitCodes.ToolMissing, result.Output);
        Assert.Contains("CITUS_BINDIR is '/usr/bin', which is not the bin folder of a PostgreSQL with citus and pgvector installed", OneSentence.Flat(result.Output), StringComparison.Ordinal);
        Assert.Empty(result.Transcript.Steps);
    }

    [Fact]
    public async Task A_CITUS_URL_that_is_not_Citus_or_does_not_answer_is_refused_before_any_work()
    {
        var notCitus = await LessonRunner.RunAsync<ScaleOutLesson>(database.Settings with
        {
            Operations = new OperationsSettings { CitusUrl = database.ConnectionString.ConnectionString },
        });
        Assert.True(notCitus.ExitCode == ExitCodes.InvalidInput, notCitus.Output);
        Assert.Contains("answers but is not a Citus coordinator (no citus extension", OneSentence.Flat(notCitus.Output), StringComparison.Ordinal);
        Assert.Empty(notCitus.Transcript.Steps);

        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var nobody = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var silent = await LessonRunner.RunAsync<ScaleOutLesson>(database.Settings with
        {
            Operations = new OperationsSettings { CitusUrl = $"postgresql://postgres:x@127.0.0.1:{nobody}/agent_db" },
        });
        Assert.True(silent.ExitCode == ExitCodes.DatabaseUnavailable, silent.Output);
        Assert.Contains($"CITUS_URL (127.0.0.1:{nobody}) does not answer", OneSentence.Flat(silent.Output), StringComparison.Ordinal);
        Assert.Empty(silent.Transcript.Steps);
    }

    /// <summary>What every full run must show, read from its transcript.</summary>
    private static void AssertFullRun(LessonTranscript run)
    {
        Assert.True(run.Completed);
        Assert.Equal(8, run.Steps.Count);

        // The cluster: a coordinator and two workers, registered.
        var nodes = run.Step("citus-cluster").Table;
        Assert.Equal(["coordinator", "worker", "worker"], nodes.Column("role"));

        // Distribution: two tables by tenant_id in one co-location group, a reference table, an HNSW index on every shard.
        var distribute = run.Step("distribute");
        var tables = distribute.Tables[0];
        Assert.Equal("reference", tables.Row("table", "tenants")["type"]);
        Assert.Equal("tenant_id", tables.Row("table", "documents")["distributed by"]);
        Assert.Equal("tenant_id", tables.Row("table", "articles")["distributed by"]);
        Assert.Equal(tables.Row("table", "documents")["co-location group"], tables.Row("table", "articles")["co-location group"]);
        Assert.Equal(ScaleOutLesson.ShardCount.ToString(CultureInfo.InvariantCulture), tables.Row("table", "documents")["shards"]);
        // The shards on the two workers, none on the coordinator; a copy of the reference table on all three nodes.
        var placement = distribute.Tables[1];
        Assert.Equal(3, placement.Rows.Count);
        Assert.Equal(2, placement.Column("documents shards").Count(c => c != "0"));
        Assert.Equal(ScaleOutLesson.ShardCount, placement.Column("documents shards").Sum(c => int.Parse(c, CultureInfo.InvariantCulture)));
        Assert.All(placement.Column("tenants copies"), c => Assert.Equal("1", c));
        Assert.All(distribute.Tables[2].Rows, r => Assert.Equal(r["shards"], r["shards with an HNSW index"]));

        // A tenant's search: one task, on the worker holding the tenant, by the shard's HNSW index.
        var routed = run.Step("one-shard");
        Assert.Equal(1, ScaleOutLesson.TaskCount(routed.Plans[0].Plan));
        Assert.Contains("Index Scan using documents_hnsw_", routed.Plans[0].Plan, StringComparison.Ordinal);
        // The rows in full (the detail) and as shown, titles shortened: a tenant's rows only, both.
        Assert.Equal(2, routed.Tables.Count);
        Assert.All(routed.Tables.SelectMany(t => t.Column("tenant")), t => Assert.Equal("a large customer", t));

        // Over all tenants: a task per shard, every one an HNSW index scan on its shard, on both workers; recall against exact.
        var fanned = run.Step("all-shards");
        Assert.Equal(ScaleOutLesson.ShardCount, ScaleOutLesson.TaskCount(fanned.Plans[0].Plan));
        var tasks = Assert.Single(fanned.Tables[0].Rows);
        Assert.Equal("Index Scan using documents_hnsw_<shard>", tasks["what the shards ran"]);
        Assert.Equal(ScaleOutLesson.ShardCount.ToString(CultureInfo.InvariantCulture), tasks["tasks"]);
        Assert.Equal(2, tasks["on workers"].Split(", ").Length);
        Assert.True(double.Parse(fanned.Tables[1].Rows[0]["recall@10, mean"], CultureInfo.InvariantCulture) >= 0.95, fanned.Tables[1].Rows[0]["recall@10, mean"]);

        // Hybrid: global statistics give one server's answers exactly; per-tenant statistics do not.
        var hybrid = run.Step("hybrid-across-shards").Tables[1];
        var total = $"{ScaleOutLesson.JudgedQueries.Count} of {ScaleOutLesson.JudgedQueries.Count}";
        Assert.Equal(total, hybrid.Row("method", "BM25, Citus, global statistics")["same top 10 as one server"]);
        Assert.Equal(total, hybrid.Row("method", "RRF hybrid, Citus, global statistics")["same top 10 as one server"]);
        Assert.Equal(hybrid.Row("method", "BM25, one server")["nDCG@10"], hybrid.Row("method", "BM25, Citus, global statistics")["nDCG@10"]);
        Assert.NotEqual(total, hybrid.Row("method", "BM25, Citus, per-tenant statistics")["same top 10 as one server"]);
        Assert.True(double.Parse(hybrid.Row("method", "BM25, Citus, per-tenant statistics")["nDCG@10"], CultureInfo.InvariantCulture)
                    < double.Parse(hybrid.Row("method", "BM25, Citus, global statistics")["nDCG@10"], CultureInfo.InvariantCulture));

        // The rebalance: a third worker gets shards; every search answered while they moved; nothing lost or changed.
        var rebalance = run.Step("rebalance");
        var during = rebalance.Tables[1];
        Assert.All(during.Rows, r => Assert.Equal("0", r["failed"]));
        Assert.All(during.Rows, r => Assert.True(int.Parse(r["answered during the move"], CultureInfo.InvariantCulture) > 0, r["search"]));
        Assert.All(rebalance.Tables.Single(t => t.Columns.Contains("checksum before")).Rows, r => Assert.Equal("yes", r["same"]));
        Assert.All(rebalance.Tables.Single(t => t.Columns.Contains("same rows and checksum")).Rows, r => Assert.Equal("yes", r["same rows and checksum"]));
        var shardsAfter = rebalance.Tables.Single(t => t.Columns.Contains("documents shards"));
        Assert.Equal(3, shardsAfter.Rows.Count);
        Assert.All(shardsAfter.Column("documents shards"), c => Assert.True(int.Parse(c, CultureInfo.InvariantCulture) >= ScaleOutLesson.ShardCount / 3, c));
        Assert.Contains("searches give the same answer as before", rebalance.Note("The rebalance finished"), StringComparison.Ordinal);
        var same = rebalance.Note("The rebalance finished").Split("and ")[^1].Split(" searches")[0].Split(" of ");
        Assert.Equal(same[1], same[0]);

        // A worker stops: searches needing it fail with Citus's one sentence; a tenant elsewhere is served; back when restarted.
        var stops = run.Step("worker-stops");
        var outcomes = stops.Table;
        Assert.StartsWith("ERROR 08006: connection to the remote node", outcomes.Row("search", "vector search over all tenants")["what the application gets"], StringComparison.Ordinal);
        Assert.StartsWith("ERROR 08006:", outcomes.Row("search", "hybrid search over all tenants")["what the application gets"], StringComparison.Ordinal);
        Assert.StartsWith("ERROR 08006:", outcomes.Row("search", $"tenant {ScaleOutLesson.LargeTenant}'s search")["what the application gets"], StringComparison.Ordinal);
        Assert.Single(outcomes.Rows, r => r["what the application gets"] == "10 rows");
        Assert.Equal("Started again, the worker serves its shards: 10 rows.", stops.Note("Started again"));
    }
}
