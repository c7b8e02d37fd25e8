using System.Globalization;
using System.Text.RegularExpressions;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson06;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Lesson06Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    /// <summary>The most lines the default run of the lesson may print.</summary>
    private const int DefaultRunLines = 360;

    private const string HnswScan = $"Index Scan using {VectorDocumentConfiguration.HnswIndex}";
    private const string PostingsScan = $"Index Only Scan using {DocumentTermConfiguration.LexemeIndex}";

    [Fact]
    public async Task Runs_end_to_end_twice_teaching_fusion_BM25_its_triggers_sparse_vectors_and_both_indexes()
    {
        List<string>? tablesAfterFirstRun = null;
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<HybridSearchLesson>(database.Settings);

            Assert.True(result.ExitCode == 0, $"run {run} exited {result.ExitCode}:\n{result.Output}");
            Assert.True(result.Transcript.Completed);
            AssertTeaches(result.Transcript);
            AssertDefaultQuestion(result.Transcript);

            // Nothing left behind: the corpus as loaded, the rolled-back document and its postings gone, the IVFFlat index
            // dropped only inside a rolled-back transaction, the sparse tables temporary, the same tables as the run before.
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson06.vector_documents"));
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT sum(document_count) FROM lesson06.bm25_corpus"));
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(DISTINCT document_id) FROM lesson06.document_terms"));
            Assert.Equal(0, await database.ScalarAsync<long>(
                $"SELECT count(*) FROM lesson06.vector_documents WHERE title = '{HybridSearchLesson.NewTitle}'"));
            Assert.Equal(1, await database.ScalarAsync<long>(
                $"SELECT count(*) FROM pg_indexes WHERE schemaname = 'lesson06' AND indexname = '{VectorDocumentConfiguration.IvfFlatIndex}'"));
            Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname IN ('lexicon', 'bm25_vectors')"));
            var tables = await database.StringsAsync("SELECT tablename FROM pg_tables WHERE schemaname = 'lesson06' ORDER BY tablename");
            Assert.Equal(tablesAfterFirstRun ?? tables, tables);
            tablesAfterFirstRun = tables;
        }
    }

    [Fact]
    public async Task Runs_as_a_process_with_a_question_and_proves_the_same_on_it()
    {
        const string question = "how do I keep a spare server ready if the main one dies?";

        var result = await LessonProcess.RunLessonAsync("06", new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString }, question);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.True(result.Transcript!.Completed);
        AssertTeaches(result.Transcript);
        Assert.Contains(question, result.Transcript.SentSql(), StringComparison.Ordinal);
        Assert.Equal(question, result.Transcript.Step("side-by-side").Table.Rows[^1]["query"]);
        // Read in one sitting by default: its deep dives and details are folded (the default run prints about 300 lines at
        // 80 columns, this question about 320, --verbose over 2,000); the limit leaves room for a longer question's rows.
        Assert.InRange(result.Output.ReplaceLineEndings("\n").Split('\n').Length, 100, DefaultRunLines);
        Assert.Contains("(deep dive)", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("!!! ( & | :* '")]
    [InlineData("how do I keep a spare server ready if the main one dies and nobody is awake to switch over by hand at three in the morning?")]
    public async Task Odd_and_long_questions_get_results_not_errors(string question)
    {
        var result = await LessonRunner.RunAsync<HybridSearchLesson>(database.Settings, question);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.True(result.Transcript.Completed);
        Assert.DoesNotContain("syntax error", result.Output, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>What every run proves, whatever the question.</summary>
    private static void AssertTeaches(LessonTranscript run)
    {
        // The smallest hybrid search is written in the lesson: two CTEs, a bound query vector, a FULL JOIN of ranks. On a
        // search-box word it is a real fusion: documents only one leg found are listed beside one both legs found.
        var minimal = run.Step("smallest-hybrid");
        var minimalSql = minimal.SqlSent.First().Text;
        Assert.Equal(HybridSearchLesson.MinimalRrf.Trim(), minimalSql);
        Assert.Contains("ORDER BY embedding <=> @embedding", minimalSql, StringComparison.Ordinal);
        Assert.Contains("websearch_to_tsquery('english', @query)", minimalSql, StringComparison.Ordinal);
        Assert.Contains("FULL OUTER JOIN keyword k", minimalSql, StringComparison.Ordinal);
        var fusion = minimal.Tables[0].Rows;
        Assert.Contains(fusion, r => r["keyword rank"] == "NULL" && r["vector rank"] != "NULL");
        Assert.Contains(fusion, r => r["keyword rank"] == "1");
        var both = fusion.Single(r => r["keyword rank"] == "1");
        Assert.Equal(1.0 / (60 + Int(both["vector rank"])) + 1.0 / 61, Double(both["RRF score"]), 4);

        // BM25 is computed in the lesson's own SQL over the postings table; the sparse vectors' inner products equal it.
        Assert.Contains(run.Step("bm25").SqlSent, s => s.Text == HybridSearchLesson.Bm25.Trim());
        var sparse = run.Step("sparse-vectors");
        Assert.Contains("::sparsevec", sparse.SentSql(), StringComparison.Ordinal);
        Assert.Contains("ORDER BY v.weights <#> question.weights", sparse.SentSql(), StringComparison.Ordinal);
        var scores = sparse.Tables[0];
        Assert.All(scores.Rows, r =>
        {
            var postings = Double(r["BM25 over the postings (this lesson's SQL)"]);
            Assert.Equal(postings, Double(r["sparsevec inner product"]), 1e-6);
            Assert.Equal(postings, Double(r["SearchSql.Keyword (the library's)"]), 1e-6);
        });

        // The triggers: the new document found by BM25 inside the transaction, then gone with its postings and counts.
        var writes = run.Step("bm25-triggers");
        Assert.Contains("INSERT INTO document_terms", Assert.Single(writes.Code).Text, StringComparison.Ordinal);
        var states = writes.Tables[1];
        var (before, during, after) = (states.Row("when", "before"), states.Row("when", "after the INSERT, same transaction"), states.Row("when", "after ROLLBACK"));
        var rank = $"BM25 rank for \"{HybridSearchLesson.NewDocumentQuery}\"";
        Assert.Equal(("0", "0", "not found"), (before["documents titled so"], before["its postings"], before[rank]));
        Assert.Equal(("1", "1"), (during["documents titled so"], during[rank]));
        Assert.True(Int(during["its postings"]) > 0 && Double(during["BM25"]) > 0, string.Join(", ", during));
        Assert.Equal(Int(before["bm25_corpus documents"]) + 1, Int(during["bm25_corpus documents"]));
        Assert.All(states.Columns.Where(c => c != "when"), column => Assert.Equal(before[column], after[column]));

        // The library's fused queries keep both indexes; the same RRF statement with its inputs in a CTE loses HNSW.
        var plans = run.Step("one-plan").Plans;
        Assert.Equal(3, plans.Count);
        Assert.Equal(SearchSql.ReciprocalRankFusion.Trim(), plans[0].Sql);
        Assert.Equal(SearchSql.Weighted.Trim(), plans[1].Sql);
        Assert.All(plans.Take(2), p =>
        {
            Assert.Contains(HnswScan, p.Plan, StringComparison.Ordinal);
            Assert.Contains(PostingsScan, p.Plan, StringComparison.Ordinal);
        });
        Assert.Contains("ORDER BY embedding <=> q.e", plans[2].Sql, StringComparison.Ordinal);
        Assert.DoesNotContain(VectorDocumentConfiguration.HnswIndex, plans[2].Plan, StringComparison.Ordinal);
        Assert.Contains("Seq Scan on vector_documents", plans[2].Plan, StringComparison.Ordinal);
        Assert.Contains(PostingsScan, plans[2].Plan, StringComparison.Ordinal);

        // Fused results carry each leg's rank; the side-by-side table has every showcase query and the question.
        var fused = run.Step("refined-hybrid").Tables;
        Assert.Equal(["title", "source", "RRF score", "vector rank", "keyword rank"], fused[0].Columns);
        Assert.Equal(HybridSearchLesson.Showcase.Count + 1, run.Step("side-by-side").Table.Rows.Count);
    }

    /// <summary>What the default question shows: AND finds nothing, BM25 and ts_rank_cd disagree, fusion beats its parts.</summary>
    private static void AssertDefaultQuestion(LessonTranscript run)
    {
        var minimal = run.Step("smallest-hybrid");
        Assert.All(minimal.Tables[1].Column("keyword rank"), r => Assert.Equal("NULL", r));
        Assert.Contains("'error' & '42p01' & 'mean'", minimal.Note("Your question: the keyword leg found nothing"), StringComparison.Ordinal);

        var bm25 = run.Step("bm25");
        var terms = bm25.Tables[0];
        Assert.Equal("42p01", terms.Rows[0]["lexeme"]);
        Assert.Equal("1", terms.Rows[0]["df (documents holding it)"]);
        var versus = bm25.Tables[2].Row("title", "The Day 42P01 undefined_table Broke Our Deploy");
        Assert.Equal("1", versus["BM25 rank"]);
        Assert.True(Int(versus["ts_rank_cd rank"]) > 1, string.Join(", ", versus));

        // The tally of right first results on the showcase queries: each fusion method beats both of its parts.
        var tally = Regex.Match(run.Step("side-by-side").Note("Right first result"), @"keyword (\d+), vector (\d+), weighted (\d+), RRF (\d+)");
        Assert.True(tally.Success);
        var (keyword, vector, weighted, rrf) = (N(tally, 1), N(tally, 2), N(tally, 3), N(tally, 4));
        Assert.True(weighted > keyword && weighted > vector, tally.Value);
        Assert.True(rrf > keyword && rrf > vector, tally.Value);
    }

    private static int N(Match match, int group) => Int(match.Groups[group].Value);

    private static int Int(string text) => int.Parse(text, CultureInfo.InvariantCulture);

    private static double Double(string text) => double.Parse(text, CultureInfo.InvariantCulture);
}
