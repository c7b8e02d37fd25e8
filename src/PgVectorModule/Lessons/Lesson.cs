using Microsoft.EntityFrameworkCore.Diagnostics;
using PgVectorModule.Data;
using Spectre.Console;

namespace PgVectorModule.Lessons;

/// <summary>
/// The narrator of a running lesson: numbered steps, the SQL that was sent, results as tables, plans and narration,
/// each recorded in <see cref="Transcript"/> and drawn by <see cref="LessonConsole"/> (shortened or folded unless
/// <c>--verbose</c>). Where it works, the data source and the contexts over it, is its <see cref="Workspace"/>.
/// </summary>
public sealed partial class Lesson
{
    /// <summary>Parameters shown under a statement; the rest are folded into one line (the transcript keeps them all).</summary>
    public const int ShownParameters = 8;

    /// <summary>
    /// Lines of a statement, script or code block shown by default; a longer one shows its start and how many lines
    /// follow (<c>--verbose</c> shows it whole). Whole migration scripts, DDL and function bodies are for reading later.
    /// </summary>
    public const int ShownLines = 16;

    /// <summary>Lines of a plan shown by default: its key nodes (scans, sorts, limits, joins, aggregates, hashes, CTEs).</summary>
    public const int ShownPlanLines = 12;

    /// <summary>Rows of a result table shown by default.</summary>
    public const int ShownRows = 12;

    private readonly bool _pauseBeforeSteps;
    private readonly HashSet<string> _rendered = new(StringComparer.Ordinal);
    private readonly Lazy<(IAnsiConsole Console, LineCounter Lines)> _folded;
    private bool _echo = true;
    private int _quiet;
    private int _details;
    private bool _deepDive;

    internal Lesson(LessonInfo info, IAnsiConsole console, ModuleSettings settings, NpgsqlDataSource dataSource,
        string? question, bool pauseBeforeSteps, LessonTranscript? transcript = null, bool verbose = false)
    {
        Info = info;
        Console = console;
        Question = question;
        _pauseBeforeSteps = pauseBeforeSteps;
        Verbose = verbose;
        Transcript = transcript ?? new LessonTranscript();
        SqlEchoInterceptor = new SqlEcho(this);
        Workspace = new LessonWorkspace(info, settings, dataSource, SqlEchoInterceptor);
        _folded = new(() => LineCounter.Console(console.Profile.Width));
    }

    public LessonInfo Info { get; }
    public IAnsiConsole Console { get; }

    /// <summary>The settings, the data source and the contexts over it (<see cref="NewDbContext"/> and the others are its).</summary>
    public LessonWorkspace Workspace { get; }

    public ModuleSettings Settings => Workspace.Settings;
    public NpgsqlDataSource DataSource => Workspace.DataSource;

    /// <summary>
    /// Whether the console shows everything in full (<c>--verbose</c>); by default long statements, plans and tables are
    /// shortened to what the step is about. The transcript records everything either way.
    /// </summary>
    public bool Verbose { get; }

    /// <summary>The schema this lesson owns; unqualified table names resolve to it.</summary>
    public string Schema => Info.Schema;

    /// <summary>The question given on the command line (words, --question-file or standard input), or null for the lesson's own.</summary>
    public string? Question { get; }

    /// <summary>What the lesson did so far: steps, SQL sent and shown, tables, plans, notes.</summary>
    public LessonTranscript Transcript { get; }

    /// <summary>
    /// The EF Core interceptor that prints (and records) every command a context sends: add it to the options of a
    /// context the lesson builds itself (<c>.AddInterceptors(lesson.SqlEchoInterceptor)</c>).
    /// </summary>
    public IInterceptor SqlEchoInterceptor { get; }

    /// <summary>
    /// Whether commands sent through the lesson's contexts and <see cref="ExecuteAsync(string, CancellationToken)"/> are
    /// printed. Prefer <see cref="QuietSql"/>, which restores the echo by itself.
    /// </summary>
    public bool EchoSql
    {
        get => _echo;
        set => _echo = value;
    }

    /// <summary>Whether SQL is printed right now: the echo is on and no <see cref="QuietSql"/> scope is open.</summary>
    public bool ShowsSql => _echo && Volatile.Read(ref _quiet) == 0;

    /// <summary>
    /// Stops printing the SQL sent until the returned scope is disposed: <c>using (lesson.QuietSql()) { ... }</c>. For
    /// repeated statements (a measurement loop) or setup another lesson teaches. The transcript still records them.
    /// </summary>
    public IDisposable QuietSql()
    {
        Interlocked.Increment(ref _quiet);
        return new QuietScope(this);
    }

    /// <summary>How many steps have been announced so far.</summary>
    public int StepCount => Transcript.Steps.Count;

    /// <summary>A new context over the shared data source, echoing the SQL it sends.</summary>
    public CourseDbContext NewDbContext(params IInterceptor[] interceptors) => Workspace.NewDbContext(interceptors);

    /// <summary>A new vector-search context over the shared data source, echoing the SQL it sends.</summary>
    public Search.SearchDbContext NewSearchDbContext(Search.VectorStoreShape shape) => Workspace.NewSearchDbContext(shape);

    /// <summary>
    /// A context that applies migrations in this lesson's schema (history table included), echoing the SQL it sends.
    /// </summary>
    public CourseDbContext NewMigrationsDbContext(params IInterceptor[] interceptors) => Workspace.NewMigrationsDbContext(interceptors);

    /// <summary>
    /// Announces the next numbered step; with --step at a terminal, waits for Enter first. <paramref name="id"/> names the
    /// step for good (lower-case words joined by hyphens, unique in the lesson, like an EF Core docs sample's
    /// <c>#region</c> name): tests and the transcript find the step by it, so its title can be reworded and steps added or
    /// moved without breaking them.
    /// </summary>
    public void Step(string id, string title, string why) => Begin(id, title, why, deepDive: false);

    /// <summary>
    /// Announces the next numbered step as a deep dive: a step that goes further than the lesson's main line (index
    /// internals, a second technique, the last details of a production setting). By default the console shows its
    /// heading, its explanation and its narration (<see cref="Say"/>, which states what was found), and folds its SQL,
    /// code, plans and tables into one line saying how many lines <c>--verbose</c> shows. The step runs the same either
    /// way, and the transcript records all of it.
    /// </summary>
    public void DeepDive(string id, string title, string why) => Begin(id, title, why, deepDive: true);

    /// <summary>
    /// Folds what is shown until the returned scope is disposed (SQL, code, plans, tables and narration alike) into one
    /// line saying how many lines <c>--verbose</c> shows: <c>using (lesson.Detail()) { ... }</c>, for the part of an
    /// ordinary step a first reading can skip. The transcript records it all.
    /// </summary>
    public IDisposable Detail()
    {
        Interlocked.Increment(ref _details);
        return new DetailScope(this);
    }

    private void Begin(string id, string title, string why, bool deepDive)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(title);
        ArgumentNullException.ThrowIfNull(why);
        EndStep();
        Transcript.BeginStep(id, title, why, deepDive);
        _deepDive = deepDive;
        LessonConsole.StepHeading(Console, StepCount, id, deepDive, title, why);
        if (_pauseBeforeSteps)
        {
            LessonConsole.Pause(Console);
            while (Console.Input.ReadKey(intercept: true) is { Key: not ConsoleKey.Enter })
            {
            }

            Console.WriteLine();
        }
    }

    /// <summary>
    /// Ends the current step: a deep dive says how many lines it folded. Called by the next step and, after the last,
    /// by the host.
    /// </summary>
    internal void EndStep()
    {
        if (_deepDive)
        {
            SayFolded("of SQL, plans and tables in this deep dive");
        }

        _deepDive = false;
    }

    // Whether what is rendered now goes to the folded count instead of the console.
    private bool Folding => !Verbose && (_deepDive || Volatile.Read(ref _details) > 0);

    // Where a statement, code, plan or table goes now: the console, or the count of folded lines.
    private IAnsiConsole Output => Folding ? _folded.Value.Console : Console;

    // Says how many lines were folded since the last time, where they would have been.
    private void SayFolded(string? what)
    {
        var lines = _folded.IsValueCreated ? _folded.Value.Lines.Take() : 0;
        if (lines == 0)
        {
            return;
        }

        LessonConsole.Folded(Console, $"... {lines} more line{(lines == 1 ? "" : "s")}{(what is null ? "" : " " + what)} (--verbose)");
    }

    /// <summary>Shows a SQL statement (and its parameters) the way it is sent; the lesson sends it some other way.</summary>
    public void Sql(string sql, IReadOnlyList<string>? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(sql);
        Render(sql, parameters ?? []);
        Transcript.Add(new SqlEntry { Text = sql.Trim(), Parameters = parameters ?? [], Shown = true });
    }

    /// <summary>Shows code that is not SQL (C#, a shell command), titled by its language.</summary>
    public void Code(string code, string language = "C#")
    {
        ArgumentNullException.ThrowIfNull(code);
        LessonConsole.Code(Output, Shorten(code.Trim(), ShownLines), language);
        Transcript.Add(new CodeEntry { Language = language, Text = code.Trim() });
    }

    /// <summary>
    /// A line of narration, plain text (nothing in it is read as markup); <paramref name="tone"/> says what kind of line it
    /// is, and the console styles it by that. Shown in a deep dive too; folded inside <see cref="Detail"/>.
    /// </summary>
    public void Say(string text, Tone tone = Tone.Plain)
    {
        ArgumentNullException.ThrowIfNull(text);
        LessonConsole.Note(!Verbose && Volatile.Read(ref _details) > 0 ? _folded.Value.Console : Console, text, tone);
        Transcript.Add(new NoteEntry { Text = text, Tone = tone });
    }

    /// <summary>A line of narration and its tone as one value: <c>lesson.Say(ok ? ("Saved.", Tone.Good) : ("Not saved.", Tone.Bad))</c>.</summary>
    public void Say((string Text, Tone Tone) note) => Say(note.Text, note.Tone);

    /// <summary>Results as a table: one column per (header, value) pair. Long cells wrap; nothing is cut.</summary>
    public void Table<T>(IEnumerable<T> rows, params (string Header, Func<T, object?> Value)[] columns)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(columns);
        var (output, whole) = (Output, Verbose || Folding);
        var cells = rows.Select(row => columns.Select(c => Cell(c.Value(row))).ToArray()).ToList();
        // A long result shows its first rows; the transcript keeps every one.
        LessonConsole.Table(output, columns.Select(c => c.Header).ToList(), whole ? cells : cells.Take(ShownRows), cells.Count);
        var recorded = cells.Select(row => columns.Select((c, i) => (c.Header, row[i])).ToDictionary(p => p.Header, p => p.Item2, StringComparer.Ordinal)).ToList();
        Transcript.Add(new TableEntry { Columns = columns.Select(c => c.Header).ToList(), Rows = recorded });
    }

    /// <summary>Runs one SQL statement through the shared data source, showing it first.</summary>
    public Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken) => ExecuteAsync(sql, connection: null, cancellationToken);

    /// <summary>Runs one SQL statement on <paramref name="connection"/> (for SET LOCAL inside a transaction), or on a pooled one.</summary>
    public async Task<int> ExecuteAsync(string sql, NpgsqlConnection? connection, CancellationToken cancellationToken)
    {
        var (command, _) = Command(sql, connection, []);
        await using (command)
        {
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>Runs a query and returns its rows as dictionaries (column name to value), showing the SQL first.</summary>
    public Task<IReadOnlyList<IReadOnlyDictionary<string, object?>>> QueryAsync(string sql, CancellationToken cancellationToken) =>
        QueryAsync(sql, connection: null, [], cancellationToken);

    /// <summary>The same with parameters, on <paramref name="connection"/> when given.</summary>
    public async Task<IReadOnlyList<IReadOnlyDictionary<string, object?>>> QueryAsync(string sql, NpgsqlConnection? connection,
        IReadOnlyList<NpgsqlParameter> parameters, CancellationToken cancellationToken)
    {
        var (command, entry) = Command(sql, connection, parameters);
        await using (command)
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var rows = new List<IReadOnlyDictionary<string, object?>>();
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = new Dictionary<string, object?>(StringComparer.Ordinal);
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    row[reader.GetName(i)] = await reader.IsDBNullAsync(i, cancellationToken) ? null : reader.GetValue(i);
                }

                rows.Add(row);
            }

            entry.Rows = rows.Select(r => r.ToDictionary(p => p.Key, p => Cell(p.Value), StringComparer.Ordinal)).ToList();
            return rows;
        }
    }

    /// <summary>Runs EXPLAIN (ANALYZE) for a query and shows the plan; returns the plan text.</summary>
    public async Task<string> ExplainAsync(string sql, NpgsqlConnection? connection, IReadOnlyList<NpgsqlParameter> parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sql);
        ArgumentNullException.ThrowIfNull(parameters);
        const string explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)";
        Render(explain + "\n" + sql, SqlEcho.DescribeParameters(parameters));
        IReadOnlyList<IReadOnlyDictionary<string, object?>> rows;
        using (QuietSql())
        {
            rows = await QueryAsync(explain + " " + sql, connection, parameters.Select(p => p.Clone()).ToList(), cancellationToken);
        }

        // A vector parameter appears in the plan as its full literal (a bit string of one digit per dimension when
        // quantized): shorten it so the plan stays readable.
        var plan = System.Text.RegularExpressions.Regex.Replace(
            string.Join(Environment.NewLine, rows.Select(r => r["QUERY PLAN"])), @"'\[[-0-9.e,]{40,}\]'|'[01]{40,}'", "'[...]'");
        var folding = Folding;
        LessonConsole.Plan(folding ? _folded.Value.Console : Console, Verbose || folding ? plan : KeyPlanLines(plan, ShownPlanLines));
        Transcript.Add(new PlanEntry { Sql = sql.Trim(), Plan = plan });
        return plan;
    }

    /// <summary>Called by the EF Core interceptor for each command a context sends.</summary>
    internal void Sent(string sql, IReadOnlyList<string> parameters)
    {
        var shown = ShowsSql;
        if (shown)
        {
            Render(sql, parameters);
        }

        Transcript.Add(new SqlEntry { Text = sql.Trim(), Parameters = parameters, Sent = true, Shown = shown });
    }

    private (NpgsqlCommand Command, SqlEntry Entry) Command(string sql, NpgsqlConnection? connection, IReadOnlyList<NpgsqlParameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var described = SqlEcho.DescribeParameters(parameters);
        var shown = ShowsSql;
        if (shown)
        {
            Render(sql, described);
        }

        var entry = Transcript.Add(new SqlEntry { Text = sql.Trim(), Parameters = described, Sent = true, Shown = shown });
        var command = Workspace.Command(sql, connection);
        command.Parameters.AddRange(parameters.ToArray());
        return (command, entry);
    }

    private void Render(string sql, IReadOnlyList<string> parameters)
    {
        var text = sql.Trim();
        var folding = Folding;
        var again = false;
        // A folded statement was not seen: shown later, it is shown whole.
        if (!folding)
        {
            lock (_rendered)
            {
                again = !_rendered.Add(text);
            }
        }

        // A statement sent again (the same check before and after a change) shows its first line; its parameters still show.
        var shown = !Verbose && !folding && again && text.IndexOf('\n', StringComparison.Ordinal) is > 0 and var end
            ? text[..end] + "\n... the same statement as above (--verbose)"
            : folding ? text : Shorten(text, ShownLines);
        var lines = parameters.Count <= ShownParameters + 1
            ? parameters
            : [.. parameters.Take(ShownParameters), $"... and {parameters.Count - ShownParameters} more parameters"];
        LessonConsole.Sql(folding ? _folded.Value.Console : Console, shown, lines);
    }

    /// <summary>
    /// A long text as its first words and (with <paramref name="tail"/>) its last, the middle left out: for a cell of a
    /// table shown by default, next to a table in <see cref="Detail"/> (or a line) that keeps the text whole.
    /// </summary>
    public static string Excerpt(string text, int head, int tail = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length <= head + tail + 3)
        {
            return text;
        }

        // Cut between words: the start ends at the last space before head, the end begins after the first space in its part.
        var start = text.LastIndexOf(' ', head) is > 0 and var space ? space : head;
        var end = tail == 0 ? text.Length : text.IndexOf(' ', text.Length - tail) is >= 0 and var after ? after + 1 : text.Length - tail;
        return text[..start] + " …" + (end < text.Length ? " " + text[end..] : "");
    }

    /// <summary>Text of more than <paramref name="lines"/> lines as its first ones and how many follow; whole with --verbose.</summary>
    internal string Shorten(string text, int lines)
    {
        var all = text.Split('\n');
        // Two more lines than the limit are shown whole: a note in their place would save nothing.
        if (Verbose || Folding || all.Length <= lines + 2)
        {
            return text;
        }

        return string.Join('\n', all.Take(lines)) + $"\n... {all.Length - lines} more lines (--verbose)";
    }

    /// <summary>
    /// A plan's key lines: the first, and the nodes that say how rows are found and ordered (scans, sorts, limits, joins,
    /// aggregates, hashes, CTEs); their conditions and counters are left out, and how many lines were, said at the end.
    /// </summary>
    internal static string KeyPlanLines(string plan, int limit)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var all = plan.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (all.Count <= limit)
        {
            return plan;
        }

        var key = all.Where((line, i) => i == 0 || KeyPlanNode().IsMatch(line)).Take(limit).ToList();
        return string.Join('\n', key) + $"\n... {all.Count - key.Count} more lines (--verbose)";
    }

    // A node line ("->  Index Scan using ..."), a CTE's or subplan's heading; never a node's detail ("Sort Key: ...").
    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*->\s+[A-Za-z ]*(Scan|Sort|Limit|Join|Aggregate|Hash|Nested Loop|Append|Gather|WindowAgg|Unique|Materialize|Result)\b|^\s*CTE \w+\s*$|^\s*(InitPlan|SubPlan)\b")]
    private static partial System.Text.RegularExpressions.Regex KeyPlanNode();

    /// <summary>A value as a table cell shows it: text in full (the table wraps it), numbers and vectors as the echo writes them.</summary>
    internal static string Cell(object? value) => value switch
    {
        string s => s,
        _ => SqlEcho.Describe(value),
    };

    private sealed class DetailScope(Lesson lesson) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0 && Interlocked.Decrement(ref lesson._details) == 0 && !lesson._deepDive)
            {
                lesson.SayFolded(what: null);
            }
        }
    }

    private sealed class QuietScope(Lesson lesson) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref lesson._quiet);
            }
        }
    }
}
