using PgVectorModule.Configuration;
using PgVectorModule.Lessons;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// What a learner reads by default: long scripts, plans and tables shortened to what the step is about, with how much
/// was left out and how to see it (--verbose); the transcript holds everything either way.
/// </summary>
public class LessonOutputTests
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
        lesson.Step("A step", "why");
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
        Assert.Equal(Script, lesson.Transcript.Step("A step").Sql.Single().Text);
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
        Assert.Equal(2, lesson.Transcript.Step("A step").Sql.Count(s => s.Text == check));
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
        Assert.Equal(30, lesson.Transcript.Step("A step").Table.Rows.Count);
    }
}
