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

        Assert.True(first.ExitCode == 0, first.Output);
        Assert.True(first.Transcript.Completed);
        await AssertTableHoldsTheSampleDocumentsAsync();
        var run = first.Transcript;

        // Connect: the lesson's own data source and context reach the server.
        Assert.Contains(run.Step("connect").Code, c => c.Text.Contains("new NpgsqlDataSourceBuilder", StringComparison.Ordinal) && c.Text.Contains("create_engine", StringComparison.Ordinal));
        Assert.StartsWith("Connected to ", run.Step("connect").Note("Connected to "), StringComparison.Ordinal);

        // The DDL from GenerateCreateScript, shown; then the table created by the SQL EF sent.
        Assert.Contains(run.Step("model-ddl").Sql, s => s.Shown && !s.Sent && s.Text.Contains("title character varying(255) NOT NULL", StringComparison.Ordinal));
        var create = run.Step("create-table").SqlSent.Select(s => s.Text).ToList();
        Assert.Equal("DROP TABLE IF EXISTS documents", create[0]);
        Assert.Contains(create, s => s.StartsWith("CREATE TABLE documents", StringComparison.Ordinal));

        // One SaveChanges: one command holding five INSERTs, every parameter recorded although only some are shown.
        var insert = Assert.Single(run.Step("insert").SqlSent);
        Assert.Equal(5, System.Text.RegularExpressions.Regex.Count(insert.Text, "INSERT INTO documents"));
        Assert.Equal(35, insert.Parameters.Count);
        // On screen the first few, then a count: not 35 lines of parameters.
        Assert.Contains($"... and {35 - PgVectorModule.Lessons.Lesson.ShownParameters} more parameters", first.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(insert.Parameters[^1], first.Output, StringComparison.Ordinal);
        Assert.Equal("5 rows saved.", run.Step("insert").Notes[0][..13]);

        Assert.Equal(ExpectedTitles, run.Step("read-back").Table.Column("title").Order(StringComparer.Ordinal));
        var filter = run.Step("filter-to-query-string");
        Assert.Contains(filter.Sql, s => s.Shown && s.Text.Contains("WHERE d.source = @source", StringComparison.Ordinal));
        Assert.All(filter.Table.Column("source"), source => Assert.Equal("blog", source));
        Assert.Contains("title", run.Step("catalog").Table.Column("column_name"));
        Assert.Equal(8, run.Steps.Count);

        var second = await LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings);

        Assert.True(second.ExitCode == 0, second.Output);
        await AssertTableHoldsTheSampleDocumentsAsync();
        Assert.Equal(run.Steps.Select(s => s.Id), second.Transcript.Steps.Select(s => s.Id));
    }

    [Fact]
    public async Task Runs_as_a_process_and_records_the_same_steps()
    {
        var result = await LessonProcess.RunLessonAsync("01", new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString });

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.NotNull(result.Transcript);
        Assert.True(result.Transcript.Completed);
        Assert.Equal("connect", result.Transcript.Steps[0].Id);
        Assert.Equal(ExpectedTitles, result.Transcript.Step("read-back").Table.Column("title").Order(StringComparer.Ordinal));
        Assert.Contains("Lesson 01 done (8 steps)", result.Text, StringComparison.Ordinal);
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
        for (var i = 0; i < 8; i++)
        {
            console.Input.PushKey(ConsoleKey.Enter);
        }

        var exit = await PgVectorModule.Lessons.LessonHost.RunAsync<EfCoreBasicsLesson>(["--step"],
            new() { Console = console, Settings = database.Settings, Interactive = true }, TestContext.Current.CancellationToken);

        Assert.Equal(0, exit);
        Assert.Equal(8, System.Text.RegularExpressions.Regex.Count(console.Output, "Press Enter to run this step"));

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
