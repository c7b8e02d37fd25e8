using PgVectorModule.Lessons;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// Lessons run as processes with the command lines users type: a question too long for comfort, a question in a file
/// or on standard input, and arguments a lesson does not take. Each ends with exit 0 or one sentence and its exit
/// code, never a runtime crash.
/// </summary>
public partial class CommandLineTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    /// <summary>
    /// Longer than any question is searched, and as long as the system lets a command line be: Linux and macOS take
    /// 120,000 characters in one argument, Windows no more than 32,767 in the whole command line (CreateProcess's limit).
    /// </summary>
    private static readonly int LongLength = OperatingSystem.IsWindows() ? 30_000 : 120_000;

    private static readonly string LongQuestion = new('x', LongLength);

    [Fact]
    public async Task A_question_as_long_as_the_command_line_allows_is_cut_and_searched()
    {
        // ORT_DISABLE_TELEMETRY=0 from the user's shell must not bring the crash back.
        var result = await LessonProcess.RunAsync(LessonCatalog.Get("05"), database.ConnectionString.ConnectionString, [LongQuestion],
            environment: new Dictionary<string, string?> { ["ORT_DISABLE_TELEMETRY"] = "0" });

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        Assert.Contains($"The question was {LongLength:N0} characters; only the first {SearchInput.MaxQueryLength:N0} are searched.", Flatten(result.Output), StringComparison.Ordinal);
        Assert.Contains("Lesson 05 done", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("CLR error", result.Output, StringComparison.Ordinal);
        // ONNX Runtime's telemetry client (which read the command line and crashed on a long one) never started: it
        // would have written its log as /tmp/mat-debug-PID.log.
        Assert.False(File.Exists($"/tmp/mat-debug-{result.ProcessId}.log"), "ONNX Runtime's telemetry client ran");
    }

    [Theory]
    [InlineData("01")]
    [InlineData("04")]
    public async Task A_lesson_that_takes_no_question_refuses_one_before_it_starts(string number)
    {
        var lesson = LessonCatalog.Get(number);

        var result = await LessonProcess.RunAsync(lesson, database.ConnectionString.ConnectionString, [LongQuestion]);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        var text = Flatten(result.Output);
        Assert.Contains($"Lesson {number} cannot run this way: it takes no arguments, and was given 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' ({LongLength:N0} characters).", text, StringComparison.Ordinal);
        Assert.Contains($"Usage: dotnet run --project lessons/{lesson.Folder} -- [--step]", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", result.Output, StringComparison.Ordinal);
        Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_namespace WHERE nspname = '{lesson.Schema}'"));
    }

    // Lesson 06 says the question's lexemes (what to_tsvector made of it) on the console, and records them.
    private static void AssertSearched(ProcessResult result, params string[] lexemes)
    {
        Assert.Contains("The question's lexemes, rarest first:", result.Output, StringComparison.Ordinal);
        var said = result.Transcript!.Step("bm25").Note("The question's lexemes");
        Assert.Equal(lexemes.Order(StringComparer.Ordinal), LexemeOf().Matches(said).Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal));
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"(\S+) \(df ")]
    private static partial System.Text.RegularExpressions.Regex LexemeOf();

    [Fact]
    public async Task A_question_read_from_standard_input_is_the_one_searched()
    {
        var result = await LessonProcess.RunAsync(LessonCatalog.Get("06"), database.ConnectionString.ConnectionString, ["-"],
            standardInput: "what does error 40P01 mean?\n");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        AssertSearched(result, "40p01", "error", "mean");
    }

    [Fact]
    public async Task A_question_file_is_read_and_a_missing_one_is_named()
    {
        var file = Path.Combine(Path.GetTempPath(), $"question-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, "deadlock detected 40P01", TestContext.Current.CancellationToken);
        try
        {
            var found = await LessonProcess.RunAsync(LessonCatalog.Get("06"), database.ConnectionString.ConnectionString, ["--question-file", file]);
            Assert.True(found.ExitCode == 0, $"exit {found.ExitCode}:\n{found.Output}");
            AssertSearched(found, "40p01", "deadlock", "detect");
        }
        finally
        {
            File.Delete(file);
        }

        var missing = await LessonProcess.RunAsync(LessonCatalog.Get("06"), database.ConnectionString.ConnectionString, ["--question-file", file]);
        Assert.Equal(ExitCodes.InvalidInput, missing.ExitCode);
        Assert.Contains($"Cannot read the question file '{file}'", Flatten(missing.Output), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--question-file")]
    [InlineData("two ways", "-")]
    public async Task A_command_line_that_cannot_work_is_refused_with_the_usage(params string[] args)
    {
        var lesson = LessonCatalog.Get("05");

        var parse = () => LessonArguments.ParseAsync(args, lesson, new StringReader("from standard input"), TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<SetupException>(parse);
        Assert.Equal(ExitCodes.Usage, refused.ExitCode);
        Assert.EndsWith($"Usage: {LessonArguments.Usage(lesson)}", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Standard_input_over_the_limit_is_refused_without_reading_it_all()
    {
        var input = new StringReader(new string('y', LessonArguments.MaxQuestionFileCharacters + 10));

        var refused = await Assert.ThrowsAsync<SetupException>(() =>
            LessonArguments.ParseAsync(["-"], LessonCatalog.Get("06"), input, TestContext.Current.CancellationToken));

        Assert.Equal(ExitCodes.InvalidInput, refused.ExitCode);
        Assert.Contains("over 1,000,000 characters", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>The console wraps long sentences at its width: compare them as one line.</summary>
    private static string Flatten(string output) => string.Join(' ', output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
}
