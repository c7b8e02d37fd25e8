using System.Globalization;
using System.Text.RegularExpressions;
using PgVectorModule.Lessons.Lesson06;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

public class Lesson06Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Runs_end_to_end_twice_and_fusion_beats_both_of_its_parts()
    {
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<HybridSearchLesson>(database.Settings);

            Assert.True(result.ExitCode == 0, $"run {run} exited {result.ExitCode}:\n{result.Output}");
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson06.vector_documents"));
            var (notes, shown) = (result.Transcript.AllNotes(), result.Transcript.ShownSql());
            Assert.Contains("tsquery: 'error' & '42p01' & 'mean'", notes, StringComparison.Ordinal);
            Assert.Contains("Nothing: no document holds every one of those words", notes, StringComparison.Ordinal);
            Assert.Contains("lexemes: 42p01 error mean", notes, StringComparison.Ordinal);
            Assert.Contains(result.Transcript.Plans, p => p.Plan.Contains("Bitmap Index Scan on ix_vector_documents_content_tsv", StringComparison.Ordinal));
            Assert.Contains("ts_rank_cd(d.content_tsv, q.query, 32)", shown, StringComparison.Ordinal);
            Assert.Contains("1.0 / (@k + v.rank)", shown, StringComparison.Ordinal);

            // The tally of right first results on the showcase queries: each fusion method beats both of its parts.
            var tally = Regex.Match(notes, @"keyword (\d+), vector (\d+), weighted (\d+), RRF (\d+)");
            Assert.True(tally.Success, notes);
            var (keyword, vector, weighted, rrf) = (N(tally, 1), N(tally, 2), N(tally, 3), N(tally, 4));
            Assert.True(weighted > keyword && weighted > vector, tally.Value);
            Assert.True(rrf > keyword && rrf > vector, tally.Value);
        }
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

    private static int N(Match match, int group) => int.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);
}
