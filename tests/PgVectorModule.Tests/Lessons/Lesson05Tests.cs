using System.Globalization;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Lesson05Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Runs_end_to_end_twice_showing_operators_plans_and_knobs()
    {
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings);

            Assert.True(result.ExitCode == 0, $"run {run} exited {result.ExitCode}:\n{result.Output}");
            Assert.True(result.Transcript.Completed);
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson05.vector_documents"));
            AssertTeaches(result.Transcript);
        }

        // The IVFFlat index was dropped only inside rolled-back transactions.
        Assert.Equal(1, await database.ScalarAsync<long>(
            $"SELECT count(*) FROM pg_indexes WHERE schemaname = 'lesson05' AND indexname = '{VectorDocumentConfiguration.IvfFlatIndex}'"));
    }

    private static void AssertTeaches(LessonTranscript run)
    {
        // The three distances, written in the lesson, sent as <=>, <-> and <#>.
        Assert.Contains("ORDER BY v.embedding <=> @query", Assert.Single(run.Step("cosine").SqlSent).Text, StringComparison.Ordinal);
        var others = run.Step("l2-inner-product").SqlSent.Select(s => s.Text).ToList();
        Assert.Contains(others, s => s.Contains("ORDER BY v.embedding <-> @query", StringComparison.Ordinal));
        Assert.Contains(others, s => s.Contains("ORDER BY v.embedding <#> @query", StringComparison.Ordinal));
        // Unit vectors: every metric gives the same cosine similarities, in the same order.
        var similarities = run.Step("l2-inner-product").Tables.Select(t => t.Column("cosine similarity")).ToList();
        Assert.Equal(run.Step("cosine").Table.Column("cosine similarity"), similarities[0]);
        Assert.Equal(similarities[0], similarities[1]);
        Assert.Contains("WHERE v.source = @source", run.Step("filter").SentSql(), StringComparison.Ordinal);
        Assert.All(run.Step("filter").Table.Column("source"), source => Assert.Equal("research", source));

        // The threshold: the k nearest first (LIMIT inside), the threshold outside, and the plan keeps the HNSW index.
        var threshold = run.Step("threshold");
        var sent = threshold.SqlSent.First().Text;
        Assert.True(sent.IndexOf("LIMIT @p", StringComparison.Ordinal) < sent.IndexOf("< @maxDistance", StringComparison.Ordinal), sent);
        Assert.All(threshold.Tables[0].Column("cosine distance"), d => Assert.True(double.Parse(d, CultureInfo.InvariantCulture) < VectorSearchLesson.MaxDistance, d));
        Assert.Equal($"\"{VectorSearchLesson.OffTopicQuestion}\": 0 documents within the threshold.", threshold.Note($"\"{VectorSearchLesson.OffTopicQuestion}\""));
        var thresholdPlan = Assert.Single(threshold.Plans).Plan;
        Assert.Contains("Index Scan using ix_vector_documents_embedding_hnsw", thresholdPlan, StringComparison.Ordinal);
        Assert.True(thresholdPlan.IndexOf("Filter:", StringComparison.Ordinal) < thresholdPlan.IndexOf("Limit", StringComparison.Ordinal), thresholdPlan);

        // Metadata: a join over the foreign key, @> on JSONB, answered by the GIN index.
        var metadata = run.Step("metadata");
        var search = metadata.SqlSent.Single(s => s.Text.Contains("<=>", StringComparison.Ordinal)).Text;
        Assert.Contains("INNER JOIN collections AS c ON p.collection_id = c.id", search, StringComparison.Ordinal);
        Assert.Contains("p.metadata @> @metadata", search, StringComparison.Ordinal);
        Assert.Contains("FOREIGN KEY (collection_id) REFERENCES collections (id)", metadata.SentSql(), StringComparison.Ordinal);
        Assert.All(metadata.Tables[0].Column("collection"), c => Assert.Equal("handbook", c));
        Assert.All(metadata.Tables[0].Column("metadata"), m => Assert.Contains("\"year\": 2024", m, StringComparison.Ordinal));
        Assert.Contains("Bitmap Index Scan on ix_passages_metadata", Assert.Single(metadata.Plans).Plan, StringComparison.Ordinal);

        // The plans: an exact scan by default, the HNSW index when the planner is steered to it.
        var plans = run.Step("explain").Plans;
        Assert.Contains("Seq Scan on vector_documents", plans[0].Plan, StringComparison.Ordinal);
        Assert.Contains("Index Scan using ix_vector_documents_embedding_hnsw", plans[1].Plan, StringComparison.Ordinal);

        // ef_search below the LIMIT caps the rows; on 180 rows every row returned is a true nearest (step 10 shows the misses on 5,000).
        var cap = run.Step("ef-search-cap").Table;
        Assert.Equal(["1", "5", "10", "10"], cap.Column("rows returned (LIMIT 10)"));
        Assert.Equal(cap.Column("rows returned (LIMIT 10)"), cap.Column("of them in the exact top 10"));

        // A real approximate miss: recall below 1 at a small ef_search, recovered by a larger one, on the index.
        var miss = run.Step("recall");
        Assert.Contains("Index Scan using random_vectors_hnsw", Assert.Single(miss.Plans).Plan, StringComparison.Ordinal);
        var recall = miss.Table.Rows.ToDictionary(r => r["hnsw.ef_search"], r => double.Parse(r["recall@10"], CultureInfo.InvariantCulture));
        Assert.True(recall["10"] < 0.9, $"recall at ef_search 10: {recall["10"]}");
        Assert.True(recall["200"] > recall["10"] + 0.2, $"recall {recall["10"]} -> {recall["200"]}");
        Assert.Contains(recall["40"].ToString("F3", CultureInfo.InvariantCulture), miss.Note("At the default ef_search = 40"), StringComparison.Ordinal);

        // IVFFlat: fewer lists read more rows and find more; more probes recover recall.
        var lists = run.Step("ivfflat-lists").Table.Rows;
        double Recall(int row) => double.Parse(lists[row]["recall@10"], CultureInfo.InvariantCulture);
        Assert.Equal(["10", "50", "250", "250"], lists.Select(r => r["lists"]));
        Assert.True(Recall(0) > Recall(2), $"lists 10: {Recall(0)}, lists 250: {Recall(2)}");
        Assert.True(Recall(3) > Recall(2), $"probes 10: {Recall(3)}, probes 1: {Recall(2)}");

        // Iterative scans: short without, full with; relaxed order re-sorted by the materialized CTE.
        var iterativeStep = run.Step("iterative-scans");
        var iterative = iterativeStep.Tables[0];
        int Rows(string setting) => int.Parse(iterative.Row("index, iterative_scan (SET LOCAL)", setting)["rows (LIMIT 10)"], CultureInfo.InvariantCulture);
        Assert.True(Rows("HNSW, off (default)") < 10);
        Assert.Equal(10, Rows("HNSW, strict_order"));
        Assert.Equal(10, Rows("HNSW, relaxed_order"));
        Assert.Equal("yes", iterative.Row("index, iterative_scan (SET LOCAL)", "HNSW, relaxed_order + CTE re-sort (+ 0)")["in distance order"]);
        Assert.Equal("yes", iterative.Row("index, iterative_scan (SET LOCAL)", "HNSW, strict_order")["in distance order"]);
        Assert.True(Rows("IVFFlat (lists 250), off (default)") < 10);
        Assert.Equal(10, Rows("IVFFlat, relaxed_order"));
        // relaxed_order is the mode that finds more of the true nearest; max_scan_tuples bounds the scan, so it finds no more of them.
        int Found(string setting) => int.Parse(iterative.Row("index, iterative_scan (SET LOCAL)", setting)["in the exact filtered top 10"], CultureInfo.InvariantCulture);
        Assert.True(Found("HNSW, relaxed_order") >= Found("HNSW, strict_order"), $"relaxed {Found("HNSW, relaxed_order")} < strict {Found("HNSW, strict_order")}");
        Assert.True(Found("HNSW, relaxed_order, max_scan_tuples 50") <= Found("HNSW, relaxed_order"),
            $"max_scan_tuples 50 found {Found("HNSW, relaxed_order, max_scan_tuples 50")}, unbounded {Found("HNSW, relaxed_order")}");
        var iterativeSql = iterativeStep.SentSql();
        Assert.Contains("WITH relaxed AS MATERIALIZED (SELECT id, embedding <=> @q AS distance FROM random_vectors WHERE category = 3", iterativeSql, StringComparison.Ordinal);
        Assert.Contains("FROM relaxed ORDER BY distance + 0", iterativeSql, StringComparison.Ordinal);

        // The re-sort holds over all 50 queries, and its plan keeps a Sort above the CTE, which no planner can skip.
        var disorder = iterativeStep.Tables[1];
        Assert.Equal("0", disorder.Row("HNSW, category = 3, each of the 50 random queries", "relaxed_order, ORDER BY distance + 0 over the CTE")["queries whose rows came out of distance order"]);
        var resortPlans = iterativeStep.Plans;
        Assert.Equal(2, resortPlans.Count);
        Assert.EndsWith("ORDER BY distance", resortPlans[0].Sql, StringComparison.Ordinal);
        Assert.EndsWith("ORDER BY distance + 0", resortPlans[1].Sql, StringComparison.Ordinal);
        Assert.StartsWith("Sort", resortPlans[1].Plan, StringComparison.Ordinal);
        Assert.Contains("Sort Key: ((relaxed.distance + '0'::double precision))", resortPlans[1].Plan, StringComparison.Ordinal);
        Assert.Contains("Index Scan using random_vectors_hnsw", resortPlans[1].Plan, StringComparison.Ordinal);
        Assert.Contains("+ 0 is needed for Postgres 17+", iterativeStep.Note("The two re-sorts"), StringComparison.Ordinal);
        Assert.Contains("SET LOCAL hnsw.max_scan_tuples = 50", iterativeSql, StringComparison.Ordinal);
        Assert.Contains("SET LOCAL ivfflat.iterative_scan = relaxed_order", iterativeSql, StringComparison.Ordinal);

        // Pitfalls: each shape reads every row even with sequential scans discouraged.
        var pitfalls = run.Step("pitfalls").Plans;
        Assert.Equal(3, pitfalls.Count);
        Assert.All(pitfalls, p => Assert.Contains("Seq Scan on vector_documents", p.Plan, StringComparison.Ordinal));
        Assert.Equal(13, run.Steps.Count);
    }

    [Fact]
    public async Task Runs_as_a_process_with_a_question_and_records_what_it_found()
    {
        var result = await LessonProcess.RunLessonAsync("05", new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString },
            "which index should I use for a million vectors?");

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.True(result.Transcript!.Completed);
        Assert.StartsWith("\"which index should I use for a million vectors?\"", result.Transcript.Step("embed-question").Why, StringComparison.Ordinal);
        Assert.Equal(5, result.Transcript.Step("cosine").Table.Rows.Count);
    }

    [Fact]
    public async Task A_question_longer_than_the_model_reads_is_chunked_and_the_lesson_says_so()
    {
        var longQuestion = string.Join(' ', Enumerable.Repeat("how does an HNSW index find the nearest vectors quickly?", 40));

        var result = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings, longQuestion);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("it was embedded in overlapping chunks and their vectors averaged", result.Transcript.Step("embed-question").Notes.Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Takes_the_question_from_the_command_line_and_refuses_an_empty_one()
    {
        var asked = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings, "how", "do", "I", "pool", "connections?");
        Assert.Equal(0, asked.ExitCode);
        Assert.StartsWith("\"how do I pool connections?\" becomes a vector", asked.Transcript.Step("embed-question").Why, StringComparison.Ordinal);

        var empty = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings, "   ");
        Assert.Equal(ExitCodes.InvalidInput, empty.ExitCode);
        Assert.Contains("The search query is empty", empty.Output, StringComparison.Ordinal);
        Assert.Empty(empty.Transcript.Steps);
    }
}
