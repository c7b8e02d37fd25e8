using PgVectorModule.Lessons;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Library;

/// <summary>The lesson host's narration: what it records, what it folds, and what it never cuts.</summary>
public class LessonTranscriptTests
{
    private static (Lesson Lesson, TestConsole Console) NewLesson()
    {
        var console = new TestConsole().Width(80);
        var dataSource = NpgsqlDataSource.Create("Host=127.0.0.1;Database=unused"); // never opened by these tests
        var lesson = new Lesson(LessonCatalog.Get("01"), console, ModuleSettings.From(_ => null, "test"), dataSource, question: null, pauseBeforeSteps: false);
        return (lesson, console);
    }

    [Fact]
    public void Table_cells_wrap_in_full_and_are_recorded_by_column()
    {
        var (lesson, console) = NewLesson();
        var title = "Recall Loss in Filtered Approximate Nearest Neighbor Queries and What Iterative Index Scans Do About It";
        lesson.Step("a-step", "A step", "why");

        lesson.Table([(title, 0.5)], ("title", r => r.Item1), ("score", r => r.Item2));

        var table = lesson.Transcript.Step("a-step").Table;
        Assert.Equal(title, table.Rows[0]["title"]);
        Assert.Equal("0.5", table.Rows[0]["score"]);
        Assert.DoesNotContain("...", console.Output, StringComparison.Ordinal);
        Assert.All(title.Split(' '), word => Assert.Contains(word, console.Output, StringComparison.Ordinal));
    }

    [Fact]
    public void Quiet_scopes_nest_and_leave_the_echo_property_as_it_was()
    {
        var (lesson, _) = NewLesson();

        using (lesson.QuietSql())
        {
            Assert.False(lesson.ShowsSql);
            // Code written against EchoSql (save, switch off, restore) keeps working inside a quiet scope.
            var echo = lesson.EchoSql;
            lesson.EchoSql = false;
            using (lesson.QuietSql())
            {
                Assert.False(lesson.ShowsSql);
            }

            lesson.EchoSql = echo;
            Assert.False(lesson.ShowsSql);
        }

        Assert.True(lesson.ShowsSql);
        Assert.True(lesson.EchoSql);
    }

    [Fact]
    public void Long_parameter_lists_are_folded_on_screen_and_kept_whole_in_the_transcript()
    {
        var (lesson, console) = NewLesson();
        var parameters = Enumerable.Range(0, 35).Select(i => $"@p{i} = {i}").ToList();

        lesson.Sql("INSERT INTO documents ...", parameters);

        Assert.Contains("@p7 = 7", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("@p8 = 8", console.Output, StringComparison.Ordinal);
        Assert.Contains($"... and {35 - Lesson.ShownParameters} more parameters", console.Output, StringComparison.Ordinal);
        Assert.Equal(parameters, lesson.Transcript.Preamble.Sql.Single().Parameters);
    }

    [Fact]
    public void Narration_is_plain_text_brackets_and_all_and_its_tone_is_kept_beside_it()
    {
        var (lesson, console) = NewLesson();
        lesson.Step("first", "First", "why first");
        const string text = "vectors[i] and [bold]not markup[/]: shown as written";

        lesson.Say(text, Tone.Warning);
        var saved = lesson.StepCount == 0;
        lesson.Say(saved ? ("never", Tone.Good) : ("A branch's own tone.", Tone.Bad));

        Assert.Contains(text, console.Output, StringComparison.Ordinal);
        var notes = lesson.Transcript.Step("first").Entries.OfType<NoteEntry>().ToList();
        Assert.Equal([(text, Tone.Warning), ("A branch's own tone.", Tone.Bad)], notes.Select(n => (n.Text, n.Tone)));
    }

    [Fact]
    public void The_transcript_survives_a_round_trip_through_json()
    {
        var (lesson, _) = NewLesson();
        lesson.Step("first", "First", "why first");
        lesson.Say("12 rows.", Tone.Good);
        lesson.Code("var x = 1;");
        lesson.Step("second", "Second", "why second");
        lesson.Table([("a", 1)], ("name", r => r.Item1), ("value", r => r.Item2));

        var copy = LessonTranscript.FromJson(lesson.Transcript.ToJson());

        Assert.Equal(["First", "Second"], copy.Steps.Select(s => s.Title));
        Assert.Equal("12 rows.", copy.Step("first").Note("12"));
        Assert.Equal(Tone.Good, copy.Step("first").Entries.OfType<NoteEntry>().Single().Tone);
        Assert.Equal("C#", copy.Step("first").Code.Single().Language);
        Assert.Equal("1", copy.Step("second").Table.Row("name", "a")["value"]);
    }

    [Fact]
    public void Step_titles_longer_than_the_console_is_wide_are_shown_in_full()
    {
        var (lesson, console) = NewLesson();
        var title = "Filters and the index: iterative scans, strict and relaxed order, and what bounds the extra work";

        lesson.Step("long-title", title, "why");

        // The heading names the step by its number and its identifier, which the READMEs use.
        Assert.Contains("Step 1 [long-title]", console.Output, StringComparison.Ordinal);
        Assert.Contains(title, OneSentence.Flat(console.Output), StringComparison.Ordinal);
        Assert.DoesNotContain("\u2026", console.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void One_word_headers_wider_than_their_column_are_folded_not_cut()
    {
        var (lesson, console) = NewLesson();
        lesson.Step("a-step", "A step", "why");

        lesson.Table([(1, 2, 3, 4, 5, 6, 7)], ("database", r => r.Item1), ("cl_active", r => r.Item2), ("cl_waiting", r => r.Item3), ("sv_active", r => r.Item4),
            ("sv_idle", r => r.Item5), ("maxwait_us_and_then_some", r => r.Item6), ("pool_mode_of_the_pool", r => r.Item7));

        Assert.DoesNotContain("\u2026", console.Output, StringComparison.Ordinal);
        Assert.Contains("maxwait_us_and_then_some", string.Concat(console.Output.Split('\n').Select(l => l.Split('\u2502').Length > 6 ? l.Split('\u2502')[6].Trim() : "")), StringComparison.Ordinal);
    }
}
