using System.Globalization;
using System.Text.RegularExpressions;
using PgVectorModule.Lessons.Lesson07;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

public class Lesson07Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Runs_end_to_end_twice_showing_pooling_bulk_load_quantization_maintenance_and_security()
    {
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<ProductionLesson>(database.Settings);
            var output = result.Output;

            Assert.True(result.ExitCode == 0, $"run {run} exited {result.ExitCode}:\n{output}");
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson07.vector_documents"));

            // Pooling: every search succeeds over no more connections than the pool allows; exhaustion is shown.
            var pool = Regex.Match(output, @"(\d+) of (\d+) searches returned 5 rows, in [\d,]+ ms, over (\d+) server connection");
            Assert.True(pool.Success, output);
            Assert.Equal(ProductionLesson.Searchers * ProductionLesson.SearchesPerTask, N(pool, 1));
            Assert.Equal(N(pool, 2), N(pool, 1));
            Assert.InRange(N(pool, 3), 1, ProductionLesson.SharedPoolSize);
            Assert.Contains("The connection pool has been exhausted", output, StringComparison.Ordinal);
            Assert.Contains("One context instance served all three uses", output, StringComparison.Ordinal);

            // Hot path: LINQ, compiled, compiled and prepared: three timings, the same rows.
            Assert.Contains("compiled + Max Auto Prepare", output, StringComparison.Ordinal);
            Assert.Contains("The same rows all three ways", output, StringComparison.Ordinal);

            // Bulk load: both methods measured on the same rows, COPY faster.
            var speed = Regex.Match(output, @"rows/s: INSERT ([\d,]+), COPY ([\d,]+)");
            Assert.True(speed.Success, output);
            Assert.True(N(speed, 2) > N(speed, 1), speed.Value);
            Assert.Contains("SET LOCAL maintenance_work_mem", output, StringComparison.Ordinal);
            Assert.Contains("pg_stat_progress_create_index", output, StringComparison.Ordinal);

            // Smaller vectors: the expression indexes are used, and re-ranking recovers the binary index's recall.
            Assert.Contains("Index Scan using bulk_vectors_halfvec_hnsw", output, StringComparison.Ordinal);
            Assert.Contains("Index Scan using bulk_vectors_bit_hnsw", output, StringComparison.Ordinal);
            Assert.True(await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_bit_hnsw')")
                        < await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_halfvec_hnsw')"));
            Assert.True(await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_halfvec_hnsw')")
                        < await database.ScalarAsync<long>("SELECT pg_relation_size('lesson07.bulk_vectors_hnsw')"));
            var binary = Recall(output, @"binary, Hamming.*?(\d\.\d\d)\s*│");
            var reranked = Recall(output, @"re-ranked by full.*?(\d\.\d\d)\s*│");
            Assert.True(reranked >= binary, $"re-ranked {reranked} < binary {binary}");
            Assert.True(reranked >= 0.9, $"re-ranked recall {reranked}");

            // Maintenance and monitoring.
            Assert.Contains("VACUUM ANALYZE bulk_vectors", output, StringComparison.Ordinal);
            Assert.Contains("REINDEX INDEX CONCURRENTLY bulk_vectors_hnsw", output, StringComparison.Ordinal);
            Assert.Contains("pg_total_relation_size", output, StringComparison.Ordinal);
            var scans = Regex.Match(output, @"idx_scan of bulk_vectors_hnsw: (\d+) before, (\d+) after 5 searches");
            Assert.True(scans.Success, output);
            Assert.True(N(scans, 2) >= N(scans, 1) + 5, scans.Value);
            var preload = await database.StringsAsync("SHOW shared_preload_libraries");
            Assert.Contains(preload[0].Contains("pg_stat_statements", StringComparison.Ordinal)
                ? "FROM public.pg_stat_statements"
                : "pg_stat_statements is not loaded on this server", output, StringComparison.Ordinal);

            // Security: a search as the read-only role, its INSERT refused, concatenation shown to leak.
            Assert.Contains("title (searched as the read-only role)", output, StringComparison.Ordinal);
            Assert.Contains("Refused: 42501 permission denied for table vector_documents", output, StringComparison.Ordinal);
            Assert.Contains($"Concatenated: {SampleCorpus.All.Count} rows. Parameterized: 0 rows.", output, StringComparison.Ordinal);
            Assert.DoesNotContain("injected", await database.StringsAsync("SELECT title FROM lesson07.vector_documents"));

            // Scaling: the partitioned table, and pruning to one partition.
            Assert.Equal(4, await database.ScalarAsync<long>(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'lesson07.documents_by_source'::regclass"));
            Assert.Matches(@"(Seq Scan|Index Scan using \S+) on documents_by_source_research", output);
            Assert.DoesNotContain("on documents_by_source_docs", output, StringComparison.Ordinal);
            Assert.Contains("Lesson 07 done (17 steps)", output, StringComparison.Ordinal);
        }

        // The role is the lesson's: gone after each run.
        var role = ProductionLesson.ReaderRole(database.Name);
        Assert.Equal(0, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"));
    }

    [Fact]
    public async Task On_a_server_without_pg_stat_statements_preloaded_the_lesson_says_so_and_finishes()
    {
        // A cluster of the test's own, started without shared_preload_libraries (the course cluster preloads it).
        await using var cluster = await PrivateCluster.StartAsync(TestContext.Current.CancellationToken);

        var result = await LessonRunner.RunAsync<ProductionLesson>(cluster.Settings);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("pg_stat_statements is not loaded on this server (shared_preload_libraries = '')", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("FROM public.pg_stat_statements", result.Output, StringComparison.Ordinal);
        Assert.Contains("Lesson 07 done (17 steps)", result.Output, StringComparison.Ordinal);
    }

    private static int N(Match match, int group) =>
        int.Parse(match.Groups[group].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);

    private static double Recall(string output, string pattern)
    {
        var match = Regex.Match(output, pattern, RegexOptions.Singleline);
        Assert.True(match.Success, pattern + "\n" + output);
        return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
