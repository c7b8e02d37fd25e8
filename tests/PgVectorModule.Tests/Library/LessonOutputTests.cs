using System.Text.RegularExpressions;
using PgVectorModule.Lessons;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// What a learner reads by default: long scripts, plans and tables shortened to what the step is about, deep-dive steps
/// folded to their narration, with how much was left out and how to see it (--verbose); the transcript holds everything
/// either way.
/// </summary>
public partial class LessonOutputTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static readonly string Script = string.Join('\n', Enumerable.Range(1, 40).Select(i => $"CREATE INDEX ix_{i} ON t (c{i});"));

    private static readonly string Plan = string.Join('\n',
    [
        "Limit (actual rows=5 loops=1)",
        "  CTE vector_leg",
        "    ->  Limit (actual rows=20 loops=1)",
        "          ->  Index Scan using ix_hnsw on vector_documents (actual rows=20 loops=1)",
        "                Order By: (embedding <=> '[...]'::vector)",
        "  ->  Sort (actual rows=5 loops=1)",
        "        Sort Key: (score) DESC",
        "        Sort Method: top-N heapsort  Memory: 25kB",
        "        ->  Hash Full Join (actual rows=31 loops=1)",
        "              Hash Cond: (k.id = v.id)",
        .. Enumerable.Range(1, 20).Select(i => $"              Filter detail {i}"),
        "              ->  Bitmap Heap Scan on document_terms (actual rows=12 loops=1)",
        "                    Recheck Cond: (lexeme = ANY ('{vector}'::text[]))",
        "                    ->  Bitmap Index Scan on ix_terms (actual rows=12 loops=1)",
        "              ->  Hash (actual rows=20 loops=1)",
        "                    ->  CTE Scan on vector_leg v (actual rows=20 loops=1)",
    ]);

    private static (Lesson Lesson, TestConsole Console) NewLesson(bool verbose)
    {
        var console = new TestConsole().Width(120);
        var dataSource = NpgsqlDataSource.Create("Host=127.0.0.1;Database=unused"); // never opened by these tests
        var lesson = new Lesson(LessonCatalog.Get("01"), console, ModuleSettings.From(_ => null, "test"), dataSource, question: null,
            pauseBeforeSteps: false, transcript: null, verbose: verbose);
        lesson.Step("a-step", "A step", "why");
        return (lesson, console);
    }

    [Fact]
    public void A_long_script_shows_its_start_and_how_many_lines_follow_and_the_transcript_keeps_it_whole()
    {
        var (lesson, console) = NewLesson(verbose: false);

        lesson.Sql(Script);

        Assert.Contains("ix_16 ", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("ix_17 ", console.Output, StringComparison.Ordinal);
        Assert.Contains("... 24 more lines (--verbose)", console.Output, StringComparison.Ordinal);
        Assert.Equal(Script, lesson.Transcript.Step("a-step").Sql.Single().Text);
    }

    [Fact]
    public void A_statement_shown_again_shows_its_first_line_and_its_parameters()
    {
        var (lesson, console) = NewLesson(verbose: false);
        const string check = "SELECT count(*)\nFROM documents\nWHERE title = @title";

        lesson.Sql(check, ["@title = 'before'"]);
        lesson.Sql(check, ["@title = 'after'"]);

        Assert.Single(System.Text.RegularExpressions.Regex.Matches(console.Output, "FROM documents"));
        Assert.Contains("... the same statement as above (--verbose)", console.Output, StringComparison.Ordinal);
        Assert.Contains("@title = 'after'", console.Output, StringComparison.Ordinal);
        Assert.Equal(2, lesson.Transcript.Step("a-step").Sql.Count(s => s.Text == check));
    }

    [Fact]
    public void Verbose_shows_the_whole_script()
    {
        var (lesson, console) = NewLesson(verbose: true);

        lesson.Sql(Script);

        Assert.Contains("ix_40 ", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("more lines", console.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_long_plan_shows_its_key_nodes_only()
    {
        var shown = Lesson.KeyPlanLines(Plan, Lesson.ShownPlanLines).Split('\n');

        Assert.Equal(
        [
            "Limit (actual rows=5 loops=1)",
            "  CTE vector_leg",
            "    ->  Limit (actual rows=20 loops=1)",
            "          ->  Index Scan using ix_hnsw on vector_documents (actual rows=20 loops=1)",
            "  ->  Sort (actual rows=5 loops=1)",
            "        ->  Hash Full Join (actual rows=31 loops=1)",
            "              ->  Bitmap Heap Scan on document_terms (actual rows=12 loops=1)",
            "                    ->  Bitmap Index Scan on ix_terms (actual rows=12 loops=1)",
            "              ->  Hash (actual rows=20 loops=1)",
            "                    ->  CTE Scan on vector_leg v (actual rows=20 loops=1)",
            $"... {Plan.Split('\n').Length - 10} more lines (--verbose)",
        ], shown);
    }

    [Fact]
    public void A_short_plan_is_shown_whole() =>
        Assert.Equal("Limit\n  ->  Seq Scan on t\n        Filter: (a > 1)", Lesson.KeyPlanLines("Limit\n  ->  Seq Scan on t\n        Filter: (a > 1)", Lesson.ShownPlanLines));

    [Fact]
    public void A_long_table_shows_its_first_rows_and_records_them_all()
    {
        var (lesson, console) = NewLesson(verbose: false);

        lesson.Table(Enumerable.Range(1, 30), ("n", n => $"row-{n}"));

        Assert.Contains("row-12", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("row-13", console.Output, StringComparison.Ordinal);
        Assert.Contains("... 18 more rows (--verbose)", console.Output, StringComparison.Ordinal);
        Assert.Equal(30, lesson.Transcript.Step("a-step").Table.Rows.Count);
    }

    [Fact]
    public void A_deep_dive_shows_its_narration_and_folds_the_rest_into_one_line()
    {
        var (lesson, console) = NewLesson(verbose: false);
        lesson.DeepDive("deeper", "A deeper step", "why it goes further");
        lesson.Sql(Script);
        lesson.Say("What the step found.");
        lesson.Table(Enumerable.Range(1, 3), ("n", n => $"row-{n}"));
        lesson.Step("next", "The next step", "why");

        var deep = Between(console.Output, "A deeper step", "The next step");
        Assert.Contains("What the step found.", deep, StringComparison.Ordinal);
        Assert.DoesNotContain("ix_1 ", deep, StringComparison.Ordinal);
        Assert.DoesNotContain("row-1", deep, StringComparison.Ordinal);
        Assert.Single(FoldedLines().Matches(deep));
        Assert.True(lesson.Transcript.Step("deeper").DeepDive);
        Assert.Equal(Script, lesson.Transcript.Step("deeper").Sql.Single().Text);
        Assert.Equal(3, lesson.Transcript.Step("deeper").Table.Rows.Count);
    }

    [Fact]
    public void A_detail_scope_folds_what_it_shows_narration_included_and_says_so_where_it_was()
    {
        var (lesson, console) = NewLesson(verbose: false);
        lesson.Say("before");
        using (lesson.Detail())
        {
            lesson.Table(Enumerable.Range(1, 3), ("n", n => $"row-{n}"));
            lesson.Say("a side note");
        }

        lesson.Say("after");

        Assert.DoesNotContain("row-1", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("a side note", console.Output, StringComparison.Ordinal);
        Assert.Matches(@"before\s+\.\.\. \d+ more lines \(--verbose\)\s+after", console.Output);
        Assert.Equal(new[] { "before", "a side note", "after" }, lesson.Transcript.Step("a-step").Notes);
    }

    /// <summary>
    /// As a learner runs it: lesson 02's deep dive (optimistic concurrency) shows its narration by default and
    /// says how many lines it folded; with --verbose it shows exactly that many more, its SQL and table among them.
    /// </summary>
    [Fact]
    public async Task A_deep_dive_is_folded_by_default_and_whole_with_verbose_by_exactly_the_lines_it_says()
    {
        var environment = new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString };
        var folded = await LessonProcess.RunLessonAsync("02", environment);
        var whole = await LessonProcess.RunLessonAsync("02", environment, "--verbose");

        Assert.True(folded.ExitCode == 0, folded.Output);
        Assert.True(whole.ExitCode == 0, whole.Output);
        var step = folded.Transcript!.Step("optimistic-concurrency");
        Assert.True(step.DeepDive);
        var (foldedStep, wholeStep) = (StepLines(folded.Output, step.Number), StepLines(whole.Output, step.Number));
        // The heading: number, identifier, the deep-dive mark, and the title (on the line below when the console is too narrow).
        Assert.Contains($"Step {step.Number} [{step.Id}] (deep dive)", foldedStep[0], StringComparison.Ordinal);
        Assert.Contains(step.Title, foldedStep[0] + foldedStep[1], StringComparison.Ordinal);
        var shown = string.Join('\n', foldedStep);
        Assert.Contains("DbUpdateConcurrencyException", shown, StringComparison.Ordinal);
        Assert.Contains("Resolved", shown, StringComparison.Ordinal);
        Assert.DoesNotContain("╭", shown, StringComparison.Ordinal);   // no SQL panel, no table
        var count = int.Parse(Assert.Single(FoldedLines().Matches(shown)).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

        var all = string.Join('\n', wholeStep);
        Assert.Contains("WHERE id = @p3 AND xmin = @p4", all, StringComparison.Ordinal);
        Assert.Contains("Bob's rewritten content.", all, StringComparison.Ordinal);
        Assert.DoesNotMatch(FoldedLines(), all);
        Assert.Equal(foldedStep.Count - 1 + count, wholeStep.Count);
        // The same work either way: the transcript holds every statement of the step.
        Assert.Equal(whole.Transcript!.Step(step.Id).SqlSent.Count(), step.SqlSent.Count());
    }

    private static string Between(string output, string from, string to)
    {
        var start = output.IndexOf(from, StringComparison.Ordinal);
        return output[start..output.IndexOf(to, start, StringComparison.Ordinal)];
    }

    /// <summary>The lines of step <paramref name="number"/>, from its heading to the blank line before the next.</summary>
    private static List<string> StepLines(string output, int number)
    {
        var lines = output.ReplaceLineEndings("\n").Split('\n').ToList();
        var start = lines.FindIndex(l => l.StartsWith($"── Step {number} ", StringComparison.Ordinal));
        var end = lines.FindIndex(start + 1, l => l.StartsWith($"── Step {number + 1} ", StringComparison.Ordinal));
        Assert.True(start >= 0 && end > start, output);
        return lines[start..(end - 1)];
    }

    [GeneratedRegex(@"\.\.\. (\d+) more lines of SQL, plans and tables in this deep dive \(--verbose\)")]
    private static partial Regex FoldedLines();
}
