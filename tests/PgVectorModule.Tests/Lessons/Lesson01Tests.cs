using Spectre.Console.Testing;
using PgVectorModule.Lessons.Lesson01;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

public class Lesson01Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static readonly string[] ExpectedTitles =
        EfCoreBasicsLesson.SampleDocuments.Select(d => d.Title).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task Runs_end_to_end_and_again_without_piling_up_rows()
    {
        var first = await LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings);

        Assert.Equal(0, first.ExitCode);
        await AssertTableHoldsTheSampleDocumentsAsync();
        // The narration: the DDL from GenerateCreateScript, the INSERT batch, the rows read back.
        Assert.Contains("CREATE TABLE documents", first.Output, StringComparison.Ordinal);
        Assert.Contains("title character varying(255) NOT NULL", first.Output, StringComparison.Ordinal);
        Assert.Contains("INSERT INTO documents", first.Output, StringComparison.Ordinal);
        Assert.Contains("WHERE d.source = @source", first.Output, StringComparison.Ordinal);
        Assert.Contains("5 rows saved", first.Output, StringComparison.Ordinal);
        Assert.All(ExpectedTitles, title => Assert.Contains(title, first.Output, StringComparison.Ordinal));
        Assert.Contains("Step 7", first.Output, StringComparison.Ordinal);
        Assert.Contains("Lesson 01 done", first.Output, StringComparison.Ordinal);

        var second = await LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings);

        Assert.Equal(0, second.ExitCode);
        await AssertTableHoldsTheSampleDocumentsAsync();
        Assert.Contains("DROP TABLE IF EXISTS documents", second.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Works_only_in_its_own_schema()
    {
        await LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings);

        var tables = await database.StringsAsync(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')");

        Assert.Equal(["lesson01.documents"], tables);
    }

    [Fact]
    public async Task The_app_stamps_created_and_updated_at()
    {
        var before = await database.ScalarAsync<DateTime>("SELECT now()");
        await LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings);

        var stale = await database.ScalarAsync<long>(
            $"SELECT count(*) FROM lesson01.documents WHERE created_at < '{before:O}'::timestamptz - interval '5 seconds' OR updated_at <> created_at");

        Assert.Equal(0, stale);
        Assert.Equal(5, await database.ScalarAsync<long>("SELECT count(*) FROM lesson01.documents WHERE created_at IS NOT NULL"));
    }

    [Fact]
    public async Task Step_mode_waits_for_enter_at_a_terminal_but_never_when_input_is_redirected()
    {
        var console = new TestConsole().Width(160);
        for (var i = 0; i < 7; i++)
        {
            console.Input.PushKey(ConsoleKey.Enter);
        }

        var exit = await PgVectorModule.Lessons.LessonHost.RunAsync<EfCoreBasicsLesson>(["--step"],
            new() { Console = console, Settings = database.Settings, Interactive = true }, TestContext.Current.CancellationToken);

        Assert.Equal(0, exit);
        Assert.Equal(7, System.Text.RegularExpressions.Regex.Count(console.Output, "Press Enter to run this step"));

        var redirected = await LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings, "--step");
        Assert.Equal(0, redirected.ExitCode);
        Assert.DoesNotContain("Press Enter", redirected.Output, StringComparison.Ordinal);
    }

    private async Task AssertTableHoldsTheSampleDocumentsAsync()
    {
        var titles = await database.StringsAsync("SELECT title FROM lesson01.documents ORDER BY title COLLATE \"C\"");
        Assert.Equal(ExpectedTitles, titles);
    }
}
