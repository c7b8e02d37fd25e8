using System.Globalization;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson07;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Lessons;

[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Lesson07Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Runs_end_to_end_in_process_then_as_a_process_showing_pooling_bulk_load_memory_quantization_maintenance_and_security()
    {
        var inProcess = await LessonRunner.RunAsync<ProductionLesson>(database.Settings);
        Assert.True(inProcess.ExitCode == 0, $"in process: exit {inProcess.ExitCode}:\n{inProcess.Output}");
        Assert.True(inProcess.Transcript.Completed);
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson07.vector_documents"));
        await AssertTeachesAsync(inProcess.Transcript);

        // Again, as a learner starts it, on the same database: the same teaching, nothing of the first run in the way.
        var process = await LessonProcess.RunAsync(ProductionLesson.Info, database.ConnectionString.ConnectionString, []);
        Assert.True(process.ExitCode == 0, $"as a process: exit {process.ExitCode}:\n{process.Output}");
        var transcript = Assert.IsType<LessonTranscript>(process.Transcript);
        Assert.True(transcript.Completed);
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson07.vector_documents"));
        await AssertTeachesAsync(transcript);

        // The role is the lesson's: gone after each run, with its default privileges.
        var role = ProductionLesson.ReaderRole("lesson07", database.Name);
        Assert.Equal(0, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"));
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM pg_default_acl WHERE defaclnamespace = 'lesson07'::regnamespace"));
    }

    private async Task AssertTeachesAsync(LessonTranscript run)
    {
        // Pooling: every search succeeds over no more connections than the pool allows; exhaustion is shown.
        var pool = run.Step("concurrent-searches");
        var figures = pool.Tables[0].Rows.Single();
        Assert.Equal((ProductionLesson.Searchers * ProductionLesson.SearchesPerTask).ToString(CultureInfo.InvariantCulture), figures["searches"]);
        Assert.Equal(figures["searches"], figures["returned 5 rows"]);
        Assert.InRange(int.Parse(figures["server connections used"], CultureInfo.InvariantCulture), 1, ProductionLesson.SharedPoolSize);
        Assert.Equal("pool_size + max_overflow", pool.Tables[1].Row("connection-string keyword", "Maximum Pool Size")["SQLAlchemy's create_engine"]);
        Assert.Contains("session state", pool.Tables[1].Row("connection-string keyword", "Multiplexing")["what it does"], StringComparison.Ordinal);
        Assert.Contains(pool.Code, c => c.Text.Contains("max_overflow=10", StringComparison.Ordinal) && c.Text.Contains("Maximum Pool Size=30", StringComparison.Ordinal));
        Assert.StartsWith("The connection pool has been exhausted", pool.Note("The connection pool has been exhausted"), StringComparison.Ordinal);
        Assert.Equal(["1", "2", "3"], run.Step("context-pooling").Table.Column("lease"));
        Assert.Single(run.Step("context-pooling").Table.Column("context instance").Distinct());
        Assert.Equal("C#", Assert.Single(run.Step("context-pooling").Code).Language);

        // Hot path: LINQ, compiled, compiled and prepared: three timings, the same rows.
        var hot = run.Step("hot-path").Table;
        Assert.Equal(3, hot.Rows.Count);
        Assert.Single(hot.Column("ids found").Distinct());

        // Bulk load: both methods measured, COPY faster.
        var bulkStep = run.Step("bulk-load");
        var bulk = bulkStep.Table;
        double Rate(string method) => double.Parse(bulk.Row("method", method)["rows/s"], NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
        Assert.True(Rate("binary COPY, one transaction") > Rate("INSERT, row by row"), $"{Rate("binary COPY, one transaction")} <= {Rate("INSERT, row by row")}");
        // The ratio names its baseline, and the bench's ratios name theirs.
        Assert.Contains("faster here than one INSERT per row", bulkStep.Note("COPY was"), StringComparison.Ordinal);
        Assert.Contains("47x faster than one EF SaveChanges per row", bulkStep.Note("COPY was"), StringComparison.Ordinal);

        // The index build: pgvector's notice at 1MB of maintenance_work_mem, none at 256MB; progress polled.
        var build = run.Step("index-build");
        Assert.Contains("hnsw graph no longer fits into maintenance_work_mem", build.Tables[0].Row("maintenance_work_mem", "1MB")["server notice"], StringComparison.Ordinal);
        Assert.Equal("", build.Tables[0].Row("maintenance_work_mem", "256MB")["server notice"]);
        Assert.Contains(build.Sql, s => s.Text.StartsWith("SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index", StringComparison.Ordinal));

        // max_parallel_maintenance_workers: no worker at 0, one at 1, at most two at 2 (pgvector's own count).
        var parallel = build.Tables[^1];
        Assert.Equal(["0", "1", "2"], parallel.Column("max_parallel_maintenance_workers"));
        Assert.Equal("0", parallel.Row("max_parallel_maintenance_workers", "0")["workers launched"]);
        Assert.Equal("1", parallel.Row("max_parallel_maintenance_workers", "1")["workers launched"]);
        Assert.InRange(int.Parse(parallel.Row("max_parallel_maintenance_workers", "2")["workers launched"], CultureInfo.InvariantCulture), 1, 2);

        // Slow inserts: both ways timed on the table that already had its index, and the index is back.
        var inserts = run.Step("slow-inserts");
        Assert.Equal(["COPY with the index in place", "DROP INDEX, COPY, CREATE INDEX"], inserts.Table.Column("way"));
        Assert.Contains(inserts.SqlSent, s => s.Text == "DROP INDEX bulk_vectors_hnsw");
        Assert.Equal(1, await database.ScalarAsync<long>("SELECT count(*) FROM pg_indexes WHERE schemaname = 'lesson07' AND indexname = 'bulk_vectors_hnsw'"));

        // work_mem: the same sort spills at 64kB and stays in memory at 32MB.
        var memory = run.Step("work-mem").Tables[0];
        Assert.StartsWith("Sort Method: external merge", memory.Row("work_mem", "64kB")["the plan's sort"], StringComparison.Ordinal);
        Assert.StartsWith("Sort Method: quicksort", memory.Row("work_mem", "32MB")["the plan's sort"], StringComparison.Ordinal);

        // Smaller vectors: the expression indexes are used and smaller; re-ranking recovers the binary index's recall.
        var smaller = run.Step("smaller-vectors");
        Assert.Contains(smaller.Plans, p => p.Plan.Contains("Index Scan using bulk_vectors_halfvec_hnsw", StringComparison.Ordinal));
        Assert.Contains(smaller.Plans, p => p.Plan.Contains("Index Scan using bulk_vectors_bit_hnsw", StringComparison.Ordinal));
        Assert.True(await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_bit_hnsw')")
                    < await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_halfvec_hnsw')"));
        Assert.True(await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_halfvec_hnsw')")
                    < await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_hnsw')"));
        double Recall(string search) => double.Parse(smaller.Tables[0].Row("search", search)["recall@10 vs exact (20 queries)"], CultureInfo.InvariantCulture);
        var reranked = Recall($"binary top {ProductionLesson.RerankCandidates}, re-ranked by full vector");
        Assert.True(reranked >= Recall("binary, Hamming only"), $"re-ranked {reranked} < binary {Recall("binary, Hamming only")}");
        Assert.True(reranked >= 0.9, $"re-ranked recall {reranked}");

        // Over 2,000 dimensions: pgvector's refusal for vector(3072), then a halfvec expression index that the search uses,
        // and vectors cut to 1,536 dimensions in a plain index; both measured against exact search of the full vectors.
        Assert.Contains("column cannot have more than 2000 dimensions for hnsw index", smaller.Note("PostgreSQL:"), StringComparison.Ordinal);
        Assert.Contains(smaller.Plans, p => p.Plan.Contains("Index Scan using large_vectors_halfvec_hnsw", StringComparison.Ordinal));
        var wide = smaller.Tables[1];
        Assert.Equal(["large_vectors_halfvec_hnsw", "shortened_vectors_hnsw"], wide.Column("index"));
        Assert.True(double.Parse(wide.Rows[0][wide.Columns[^1]], CultureInfo.InvariantCulture) >= 0.9, wide.Rows[0][wide.Columns[^1]]);
        Assert.InRange(double.Parse(wide.Rows[1][wide.Columns[^1]], CultureInfo.InvariantCulture), 0.0, 1.0);
        Assert.True(await database.ScalarAsync<long>("SELECT pg_table_size('lesson07.shortened_vectors')")
                    < await database.ScalarAsync<long>("SELECT pg_table_size('lesson07.large_vectors')"));

        // Maintenance and monitoring.
        var sql = run.SentSql();
        Assert.Contains("VACUUM ANALYZE bulk_vectors", sql, StringComparison.Ordinal);
        Assert.Contains("REINDEX INDEX CONCURRENTLY bulk_vectors_hnsw", sql, StringComparison.Ordinal);
        Assert.Contains("pg_total_relation_size", run.Step("sizes").Table.Columns);
        var scans = run.Step("index-usage").Table.Rows.Single();
        Assert.True(long.Parse(scans["idx_scan after 5 searches"], CultureInfo.InvariantCulture) >= long.Parse(scans["idx_scan before"], CultureInfo.InvariantCulture) + 5);
        var preload = await database.StringsAsync("SHOW shared_preload_libraries");
        var statements = run.Step("pg-stat-statements");
        if (preload[0].Contains("pg_stat_statements", StringComparison.Ordinal))
        {
            Assert.Contains("FROM public.pg_stat_statements", statements.SentSql(), StringComparison.Ordinal);
        }
        else
        {
            Assert.StartsWith("pg_stat_statements is not loaded on this server", statements.Notes.Single(), StringComparison.Ordinal);
        }

        // The extension's version: shown before and after ALTER EXTENSION vector UPDATE, a no-op on a current install.
        var extension = run.Step("extension-version");
        var installed = (await database.StringsAsync("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))[0];
        var versions = extension.Table.Rows.Single();
        Assert.Equal(installed, versions["extversion after UPDATE"]);
        Assert.Equal((await database.StringsAsync("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"))[0], versions["default_version (the installed package)"]);
        Assert.Equal(["SELECT extversion FROM pg_extension WHERE extname = 'vector'", "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'",
                      "ALTER EXTENSION vector UPDATE", "SELECT extversion FROM pg_extension WHERE extname = 'vector'"], extension.SqlSent.Select(s => s.Text));
        Assert.StartsWith($"Already at {installed}: the UPDATE was a no-op.", extension.Notes.Single(), StringComparison.Ordinal);

        // Security: settings beside pydantic's; the reader searches, reads a table made after the grants, is refused an INSERT.
        Assert.Contains(run.Step("sslmode").Code, c => c.Text.Contains("BaseSettings", StringComparison.Ordinal));
        Assert.StartsWith("tries plain text first", run.Step("sslmode").Tables[0].Row("sslmode", "allow")["what it checks"], StringComparison.Ordinal);
        var reader = run.Step("read-only-role");
        Assert.Contains(reader.SqlSent, s => s.Text == "GRANT SELECT ON ALL TABLES IN SCHEMA lesson07 TO " + ProductionLesson.ReaderRole("lesson07", database.Name));
        Assert.Contains(reader.SqlSent, s => s.Text == "ALTER DEFAULT PRIVILEGES IN SCHEMA lesson07 GRANT SELECT ON TABLES TO " + ProductionLesson.ReaderRole("lesson07", database.Name));
        Assert.Equal(3, reader.Tables[0].Rows.Count);
        Assert.Equal("release_notes, read as the reader: 3 rows.", reader.Note("release_notes, read as the reader"));
        Assert.Equal("Refused: 42501 permission denied for table vector_documents", reader.Note("Refused"));
        Assert.StartsWith($"Concatenated: {SampleCorpus.All.Count} rows. Parameterized: 0 rows.", run.Step("parameters").Notes.Single(), StringComparison.Ordinal);
        Assert.DoesNotContain("injected", await database.StringsAsync("SELECT title FROM lesson07.vector_documents"));

        // Scaling: the partitioned table, and pruning to one partition.
        Assert.Equal(4, await database.ScalarAsync<long>(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'lesson07.documents_by_source'::regclass"));
        var plan = Assert.Single(run.Step("partitions").Plans).Plan;
        Assert.Matches(@"(Seq Scan|Index Scan using \S+) on documents_by_source_research", plan);
        Assert.DoesNotContain("on documents_by_source_docs", plan, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_a_server_without_pg_stat_statements_preloaded_the_step_says_so_and_returns()
    {
        // A cluster of the test's own, started without shared_preload_libraries (the course cluster preloads it); the
        // step alone, as the lesson runs it (the steps before it do not change what it finds).
        await using var cluster = await PrivateCluster.StartAsync(TestContext.Current.CancellationToken);
        await using var dataSource = NpgsqlDataSource.Create(cluster.Settings.ConnectionString());
        var lesson = StepsOnly(cluster.Settings, dataSource);

        await ProductionLesson.PgStatStatementsAsync(lesson, TestContext.Current.CancellationToken);

        var statements = lesson.Transcript.Step("pg-stat-statements");
        Assert.StartsWith("pg_stat_statements is not loaded on this server (shared_preload_libraries = '')", statements.Notes.Single(), StringComparison.Ordinal);
        Assert.Equal(["SHOW shared_preload_libraries"], statements.SqlSent.Select(s => s.Text));
    }

    [Fact]
    public async Task A_role_that_does_not_own_the_extension_is_told_the_update_was_skipped_and_the_step_returns()
    {
        await database.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS vector");
        await using var role = await TestRole.CreateAsync(database);
        await using var dataSource = NpgsqlDataSource.Create(role.DatabaseUrl);
        var lesson = StepsOnly(role.Settings, dataSource);

        await ProductionLesson.ExtensionVersionAsync(lesson, TestContext.Current.CancellationToken);

        var step = lesson.Transcript.Step("extension-version");
        Assert.Contains(step.SqlSent, s => s.Text == "ALTER EXTENSION vector UPDATE");
        Assert.StartsWith("Skipped: must be owner of extension vector. ALTER EXTENSION vector UPDATE needs the extension's owner or a superuser",
            step.Note("Skipped"), StringComparison.Ordinal);
        Assert.Equal((await database.StringsAsync("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))[0], step.Table.Rows.Single()["extversion (this database)"]);
    }

    /// <summary>The lesson with nothing run yet, for a test that calls one step's method by itself.</summary>
    private static Lesson StepsOnly(ModuleSettings settings, NpgsqlDataSource dataSource) =>
        new(ProductionLesson.Info, new TestConsole().Width(100), settings, dataSource, question: null, pauseBeforeSteps: false);
}
