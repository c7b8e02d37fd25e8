using PgVectorModule.Lessons.Lesson06;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// Odd questions given to the lessons that take text (05 and 06): each ends with exit 0 and results, or with one
/// clear sentence and its exit code; never a crash or a PostgreSQL syntax error. (Library-level cases are in
/// SearchTests; lesson 06's tsquery punctuation and lesson 05's empty question are in their own lesson tests.)
/// </summary>
public class HostileInputTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    public static TheoryData<string, string> Questions { get; } = new()
    {
        { "05", "データベース 🐘 索引 поиск" },
        { "05", "'; DROP TABLE vector_documents; -- \"unbalanced (paren" },
        { "05", "a & b | !c :* (d" },
        { "06", "データベース 🐘 索引 поиск" },
        { "06", "'; DROP TABLE vector_documents; -- \"unbalanced (paren" },
        { "06", "   " },
        { "06", "\t" },
    };

    [Theory]
    [MemberData(nameof(Questions))]
    public async Task Odd_questions_get_results_or_one_clear_message(string lesson, string question)
    {
        var result = await Run(lesson, question);

        if (string.IsNullOrWhiteSpace(question))
        {
            Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
            Assert.Contains("The search query is empty", result.Output, StringComparison.Ordinal);
        }
        else
        {
            Assert.True(result.ExitCode == 0, result.Output);
            Assert.Contains($"Lesson {lesson} done", result.Output, StringComparison.Ordinal);
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>($"SELECT count(*) FROM lesson{lesson}.vector_documents"));
        }

        Assert.DoesNotContain("syntax error", result.Output, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("05")]
    [InlineData("06")]
    public async Task A_100000_character_question_is_cut_to_the_limit_and_the_lesson_says_so(string lesson)
    {
        var question = string.Concat(Enumerable.Repeat("vector index recall ", 5_000));
        Assert.Equal(100_000, question.Length);

        var result = await Run(lesson, question);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains($"The question was {question.Length:N0} characters; only the first {SearchInput.MaxQueryLength:N0} are searched", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_question_whose_last_character_straddles_the_limit_is_cut_before_it_and_searched_as_a_process()
    {
        // 1,999 letters and an emoji: the emoji's two UTF-16 code units straddle the 2,000th.
        var question = new string('a', SearchInput.MaxQueryLength - 1) + "🐘";

        var result = await LessonProcess.RunAsync(HybridSearchLesson.Info, database.ConnectionString.ConnectionString, [question]);

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        Assert.Contains($"The question was 2,001 characters; only the first {SearchInput.MaxQueryLength:N0} are searched.", result.Text, StringComparison.Ordinal);
        Assert.Contains("Lesson 06 done", result.Output, StringComparison.Ordinal);
        Assert.True(Assert.IsType<PgVectorModule.Lessons.LessonTranscript>(result.Transcript).Completed);
        OneSentence.AssertNoCrash(result.Output);
    }

    private Task<LessonResult> Run(string lesson, string question) => lesson == "05"
        ? LessonRunner.RunAsync<VectorSearchLesson>(database.Settings, question)
        : LessonRunner.RunAsync<HybridSearchLesson>(database.Settings, question);
}
