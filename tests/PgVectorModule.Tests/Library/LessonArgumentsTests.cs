using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson01;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// A lesson's command line on its own, before any database: the forms a learner types, each command line that cannot
/// work refused with one sentence that ends with the usage, and the help System.CommandLine writes.
/// </summary>
public sealed class LessonArgumentsTests
{
    private static readonly LessonInfo Search = LessonCatalog.Get("05");
    private static readonly LessonInfo Plain = LessonCatalog.Get("01");

    private static Task<LessonArguments> ParseAsync(LessonInfo info, string[] args, string standardInput = "") =>
        LessonArguments.ParseAsync(args, info, new StringReader(standardInput), TestContext.Current.CancellationToken);

    [Fact]
    public async Task No_arguments_run_the_lesson_with_its_own_question()
    {
        Assert.Equal(new LessonArguments(Step: false, Help: false, Question: null), await ParseAsync(Search, []));
        Assert.Equal(new LessonArguments(Step: false, Help: false, Question: null), await ParseAsync(Plain, []));
    }

    [Theory]
    [InlineData("--step --verbose how do indexes work?", true, true, "how do indexes work?")]
    [InlineData("how --step do -v indexes", true, true, "how do indexes")]
    [InlineData("--verbose", false, true, null)]
    [InlineData("@mentions in postgres", false, false, "@mentions in postgres")]
    [InlineData("05 scripts/lesson.sh", false, false, "05 scripts/lesson.sh")]
    [InlineData("-- -5 degrees --step", false, false, "-5 degrees --step")]
    [InlineData("-- --step=true is a question", false, false, "--step=true is a question")]
    public async Task Switches_and_question_words_mix_in_any_order(string line, bool step, bool verbose, string? question)
    {
        var parsed = await ParseAsync(Search, line.Split(' '));

        Assert.Equal(new LessonArguments(step, Help: false, question, verbose), parsed);
    }

    [Fact]
    public async Task One_argument_with_spaces_is_the_whole_question()
    {
        Assert.Equal("how do indexes work?", (await ParseAsync(Search, ["how do indexes work?"])).Question);
    }

    [Fact]
    public async Task A_lesson_without_a_question_takes_its_switches()
    {
        Assert.Equal(new LessonArguments(Step: true, Help: false, Question: null, Verbose: true), await ParseAsync(Plain, ["-v", "--step"]));
    }

    [Fact]
    public async Task The_question_comes_from_standard_input_with_a_dash()
    {
        var parsed = await ParseAsync(Search, ["--step", "-"], "what does error 40P01 mean?\n");

        Assert.Equal(new LessonArguments(Step: true, Help: false, "what does error 40P01 mean?\n"), parsed);
    }

    [Fact]
    public async Task The_question_comes_from_a_file()
    {
        var file = Path.Combine(Path.GetTempPath(), $"question-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, "deadlock detected 40P01", TestContext.Current.CancellationToken);
        try
        {
            Assert.Equal("deadlock detected 40P01", (await ParseAsync(Search, ["--question-file", file])).Question);
            Assert.Equal("deadlock detected 40P01", (await ParseAsync(Search, [$"--question-file={file}", "--verbose"])).Question);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task The_word_after_question_file_is_its_path_even_when_it_starts_with_a_dash()
    {
        var refused = await Assert.ThrowsAsync<SetupException>(() => ParseAsync(Search, ["--question-file", "-no-such-question.txt"]));

        Assert.Equal(ExitCodes.InvalidInput, refused.ExitCode);
        Assert.StartsWith("Cannot read the question file '-no-such-question.txt' (", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("how do indexes work? --help")]
    [InlineData("--nope --help")]
    [InlineData("--question-file q.txt -h")]
    public async Task Help_wins_over_everything_else_on_the_line(string line)
    {
        Assert.True((await ParseAsync(Search, line.Split(' '))).Help);
    }

    [Theory]
    [InlineData("05", "--nope", "'--nope' is not one of its options (a question that starts with - goes after --)")]
    [InlineData("05", "how do --nope", "'--nope' is not one of its options (a question that starts with - goes after --)")]
    [InlineData("05", "-x", "'-x' is not one of its options (a question that starts with - goes after --)")]
    [InlineData("05", "--question-file", "--question-file needs a path after it")]
    [InlineData("05", "--question-file a.txt --question-file b.txt", "--question-file takes one path")]
    [InlineData("05", "two ways -", "give the question one way only: as words, with --question-file, or on standard input with -")]
    [InlineData("05", "words --question-file q.txt", "give the question one way only: as words, with --question-file, or on standard input with -")]
    [InlineData("05", "- --question-file q.txt", "give the question one way only: as words, with --question-file, or on standard input with -")]
    [InlineData("05", "--step=true how do indexes work?", "--step is a switch and takes no value, and was given '--step=true' (write it alone)")]
    [InlineData("05", "how -v=1", "-v is a switch and takes no value, and was given '-v=1' (write it alone)")]
    [InlineData("01", "--verbose=false", "--verbose is a switch and takes no value, and was given '--verbose=false' (write it alone)")]
    [InlineData("01", "why", "it takes no arguments, and was given 'why'")]
    [InlineData("01", "why not", "it takes no arguments, and was given 2 ('why' first)")]
    [InlineData("01", "-", "it takes no arguments, and was given '-'")]
    [InlineData("01", "--nope", "'--nope' is not one of its options")]
    [InlineData("01", "--question-file q.txt", "'--question-file' is not one of its options")]
    public async Task A_command_line_that_cannot_work_is_one_sentence_with_the_usage_and_exit_64(string number, string line, string why)
    {
        var info = LessonCatalog.Get(number);

        var refused = await Assert.ThrowsAsync<SetupException>(() => ParseAsync(info, line.Split(' '), "from standard input"));

        Assert.Equal(ExitCodes.Usage, refused.ExitCode);
        Assert.Equal($"Lesson {number} cannot run this way: {why}. Usage: {LessonArguments.Usage(info)}", refused.Message);
    }

    [Fact]
    public async Task A_missing_question_file_is_named_with_exit_8()
    {
        var file = Path.Combine(Path.GetTempPath(), $"question-{Guid.NewGuid():N}.txt");

        var refused = await Assert.ThrowsAsync<SetupException>(() => ParseAsync(Search, ["--question-file", file]));

        Assert.Equal(ExitCodes.InvalidInput, refused.ExitCode);
        Assert.StartsWith($"Cannot read the question file '{file}' (", refused.Message, StringComparison.Ordinal);
        Assert.EndsWith("): give the path of a text file holding the question.", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_question_file_over_the_limit_is_refused_with_exit_8()
    {
        var file = Path.Combine(Path.GetTempPath(), $"question-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, new string('q', LessonArguments.MaxQuestionFileCharacters + 1), TestContext.Current.CancellationToken);
        try
        {
            var refused = await Assert.ThrowsAsync<SetupException>(() => ParseAsync(Search, ["--question-file", file]));

            Assert.Equal(ExitCodes.InvalidInput, refused.ExitCode);
            Assert.Equal($"The question in '{file}' is over 1,000,000 characters: a question is not a document; put the question itself in the file.", refused.Message);
        }
        finally
        {
            File.Delete(file);
        }

        var exactly = Path.Combine(Path.GetTempPath(), $"question-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(exactly, new string('q', LessonArguments.MaxQuestionFileCharacters), TestContext.Current.CancellationToken);
        try
        {
            Assert.Equal(LessonArguments.MaxQuestionFileCharacters, (await ParseAsync(Search, ["--question-file", exactly])).Question?.Length);
        }
        finally
        {
            File.Delete(exactly);
        }
    }

    [Fact]
    public void The_help_of_a_lesson_that_searches_lists_its_options_and_the_question()
    {
        var help = LessonArguments.HelpText(Search, 200);

        Assert.Contains($"Lesson 05: {Search.Title}", help, StringComparison.Ordinal);
        Assert.Contains("dotnet run --project lessons/05-VectorSearch -- [options]", help, StringComparison.Ordinal);
        Assert.Contains("scripts/lesson.sh 05 [<question>...] [options]", help, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^\s+<question>\s+What to search for", help);
        Assert.Matches(@"(?m)^\s+--step\s+Pause before each step", help);
        Assert.Matches(@"(?m)^\s+-v, --verbose\s+Show everything in full", help);
        Assert.Matches(@"(?m)^\s+--question-file <PATH>\s+Read the question from a file", help);
        Assert.Matches(@"(?m)^\s+-h, --help\s+\S", help);
    }

    [Fact]
    public void The_help_of_a_lesson_without_a_question_lists_only_its_switches()
    {
        var help = LessonArguments.HelpText(Plain, 200);

        Assert.Contains("scripts/lesson.sh 01 [options]", help, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^\s+--step\s+Pause before each step", help);
        Assert.Matches(@"(?m)^\s+-v, --verbose\s+Show everything in full", help);
        Assert.DoesNotContain("--question-file", help, StringComparison.Ordinal);
        Assert.DoesNotContain("<question>", help, StringComparison.Ordinal);
    }

    /// <summary>Settings that point nowhere: a run that got past the command line would fail on them, not pass.</summary>
    private static readonly ModuleSettings Nowhere = ModuleSettings.From(name => name == "DATABASE_URL" ? "postgresql://nobody:none@127.0.0.1:1/none" : null);

    [Fact]
    public async Task The_host_prints_the_help_and_succeeds_without_a_database()
    {
        var console = new TestConsole().Width(160);

        var exit = await LessonHost.RunAsync<VectorSearchLesson>(["--help"], new() { Console = console, Settings = Nowhere }, TestContext.Current.CancellationToken);

        Assert.Equal(ExitCodes.Success, exit);
        Assert.Contains("--question-file <PATH>", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", console.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_host_refuses_a_bad_command_line_in_one_sentence_before_the_database()
    {
        var console = new TestConsole().Width(160);

        var exit = await LessonHost.RunAsync<EfCoreBasicsLesson>(["--nope"], new() { Console = console, Settings = Nowhere }, TestContext.Current.CancellationToken);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains($"Lesson 01 cannot run this way: '--nope' is not one of its options. Usage: {LessonArguments.Usage(Plain)}", OneSentence.Flat(console.Output), StringComparison.Ordinal);
        OneSentence.AssertNoCrash(console.Output);
    }
}
