using Spectre.Console;
using Spectre.Console.Rendering;

namespace PgVectorModule.Lessons;

/// <summary>
/// How a lesson looks on the console: the one place that decides how a step's heading, a line of narration, a SQL
/// statement, a code block, a plan and a table are drawn. It draws what it is given, whole: what to shorten or fold is
/// the narrator's (<see cref="Lesson"/>) decision, and the transcript holds the same entries as plain data.
/// </summary>
internal static class LessonConsole
{
    /// <summary>
    /// A step's heading (its number, its identifier, marked when it is a deep dive, and its title) and why it is there:
    /// "Step 5 [explain] Is the index used?". The READMEs and the tests name a step by its identifier, which stays when
    /// steps are added or their titles reworded.
    /// </summary>
    public static void StepHeading(IAnsiConsole console, int number, string id, bool deepDive, string title, string why)
    {
        console.WriteLine();
        var label = $"Step {number} [{id}]";
        if (deepDive)
        {
            Heading(console, $"[bold yellow]{Markup.Escape(label)}[/] [yellow](deep dive)[/]", label + " (deep dive)", title, Style.Plain);
        }
        else
        {
            Heading(console, $"[bold yellow]{Markup.Escape(label)}[/]", label, title, Style.Plain);
        }

        console.WriteLine(why, new Style(Color.Grey));
    }

    /// <summary>
    /// A rule with the label and title in it; a title too long for the console's width goes on the line below in full,
    /// since a rule cuts its title short.
    /// </summary>
    public static void Heading(IAnsiConsole console, string labelMarkup, string label, string title, Style ruleStyle)
    {
        // A rule keeps a few columns for its own line on each side of the title.
        if (label.Length + 1 + title.Length + 6 <= console.Profile.Width)
        {
            console.Write(new Rule($"{labelMarkup} [bold]{Markup.Escape(title)}[/]").LeftJustified().RuleStyle(ruleStyle));
            return;
        }

        console.Write(new Rule(labelMarkup).LeftJustified().RuleStyle(ruleStyle));
        console.MarkupLine($"[bold]{Markup.Escape(title)}[/]");
    }

    /// <summary>A line of narration, styled by its tone; the text is shown as written (no markup is read in it).</summary>
    public static void Note(IAnsiConsole console, string text, Tone tone) => console.WriteLine(text, StyleOf(tone));

    /// <summary>What the lesson asks of the learner: press Enter to run the next step.</summary>
    public static void Pause(IAnsiConsole console) => console.Write("Press Enter to run this step...", new Style(Color.Grey));

    /// <summary>Where lines were folded, and how many: "... 24 more lines (--verbose)".</summary>
    public static void Folded(IAnsiConsole console, string text) => console.WriteLine(text, new Style(Color.Grey));

    /// <summary>A statement as it is sent, with its parameters (already shortened as the narrator chose) below it.</summary>
    public static void Sql(IAnsiConsole console, string sql, IReadOnlyList<string> parameters)
    {
        IRenderable body = new Text(sql, new Style(Color.Aqua));
        if (parameters.Count > 0)
        {
            body = new Rows(body, new Text(string.Join(Environment.NewLine, parameters), new Style(Color.Grey)));
        }

        console.Write(Panel(body, "SQL"));
    }

    /// <summary>Code that is not SQL (C#, a shell command), titled by its language.</summary>
    public static void Code(IAnsiConsole console, string code, string language) =>
        console.Write(Panel(new Text(code, new Style(Color.Wheat1)), language));

    /// <summary>A query plan from EXPLAIN.</summary>
    public static void Plan(IAnsiConsole console, string plan) =>
        console.Write(Panel(new Text(plan, new Style(Color.Yellow)), "plan"));

    /// <summary>
    /// Results as a table: the rows given (perhaps the first of more), a caption with how many there are in all, and a line
    /// of its own for those not shown (a caption is as narrow as the table and would wrap).
    /// </summary>
    public static void Table(IAnsiConsole console, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> shownRows, int totalRows)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var header in headers)
        {
            // Headers fold as cells do: a one-word header wider than its column is broken, never cut short.
            table.AddColumn(new TableColumn(new Text(header, new Style(decoration: Decoration.Bold)).Overflow(Overflow.Fold)));
        }

        foreach (var row in shownRows)
        {
            // Long cells wrap; nothing is cut.
            table.AddRow(row.Select(c => (IRenderable)new Text(c)).ToArray());
        }

        table.Caption($"[grey]{totalRows} row{(totalRows == 1 ? "" : "s")}[/]");
        console.Write(table);
        if (totalRows > table.Rows.Count)
        {
            Folded(console, $"... {totalRows - table.Rows.Count} more rows (--verbose)");
        }
    }

    private static Panel Panel(IRenderable body, string header) =>
        new Panel(body).Header(header).Border(BoxBorder.Rounded).BorderColor(Color.Grey).Expand();

    private static Style StyleOf(Tone tone) => tone switch
    {
        Tone.Aside => new Style(Color.Grey),
        Tone.Good => new Style(Color.Green),
        Tone.Warning => new Style(Color.Yellow),
        Tone.Bad => new Style(Color.Red),
        Tone.Key => new Style(decoration: Decoration.Bold),
        _ => Style.Plain,
    };
}

/// <summary>What a line of narration is, which is how the console styles it; the transcript keeps it beside the text.</summary>
public enum Tone
{
    /// <summary>The lesson's own telling.</summary>
    Plain,

    /// <summary>A side remark: where the library does the same, what another lesson shows, how to look further.</summary>
    Aside,

    /// <summary>What the step set out to show, and it happened: rows saved, a write refused as it should be.</summary>
    Good,

    /// <summary>Something to watch: a step skipped on this server, an input cut short, an error the lesson expected.</summary>
    Warning,

    /// <summary>What should not have happened, or the error a step demonstrates failing.</summary>
    Bad,

    /// <summary>The line a step comes down to.</summary>
    Key,
}
