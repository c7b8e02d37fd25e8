using Microsoft.EntityFrameworkCore.Diagnostics;
using PgVectorModule.Configuration;
using PgVectorModule.Data;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace PgVectorModule.Lessons;

/// <summary>
/// What a running lesson works with: the database (one pooled data source, in the lesson's own schema),
/// the console, and the narration helpers: numbered steps, the SQL that was sent, results as tables.
/// </summary>
public sealed class Lesson
{
    private readonly bool _pauseBeforeSteps;
    private int _step;

    internal Lesson(LessonInfo info, IAnsiConsole console, ModuleSettings settings, NpgsqlDataSource dataSource,
        string? question, bool pauseBeforeSteps)
    {
        Info = info;
        Console = console;
        Settings = settings;
        DataSource = dataSource;
        Question = question;
        _pauseBeforeSteps = pauseBeforeSteps;
    }

    public LessonInfo Info { get; }
    public IAnsiConsole Console { get; }
    public ModuleSettings Settings { get; }
    public NpgsqlDataSource DataSource { get; }

    /// <summary>The schema this lesson owns; unqualified table names resolve to it.</summary>
    public string Schema => Info.Schema;

    /// <summary>The question given on the command line (words, --question-file or standard input), or null for the lesson's own.</summary>
    public string? Question { get; }

    /// <summary>Whether commands sent through <see cref="NewDbContext"/> and <see cref="ExecuteAsync"/> are printed.</summary>
    public bool EchoSql { get; set; } = true;

    /// <summary>How many steps have been announced so far.</summary>
    public int StepCount => _step;

    /// <summary>A new context over the shared data source, echoing the SQL it sends.</summary>
    public CourseDbContext NewDbContext(params IInterceptor[] interceptors) =>
        new(CourseDbContext.CreateOptions(DataSource, [new SqlEcho(this), .. interceptors]));

    /// <summary>A new vector-search context over the shared data source, echoing the SQL it sends.</summary>
    public Search.SearchDbContext NewSearchDbContext(Search.VectorStoreShape shape) =>
        new(Search.SearchDbContext.CreateOptions(DataSource, new SqlEcho(this)), shape);

    /// <summary>
    /// A context that applies migrations in this lesson's schema (history table included), echoing the SQL it sends.
    /// </summary>
    public CourseDbContext NewMigrationsDbContext(params IInterceptor[] interceptors) =>
        new(CourseDbContext.CreateMigrationOptions(DataSource, Schema, [new SqlEcho(this), .. interceptors]));

    /// <summary>Announces the next numbered step; with --step at a terminal, waits for Enter first.</summary>
    public void Step(string title, string why)
    {
        _step++;
        Console.WriteLine();
        Console.Write(new Rule($"[bold yellow]Step {_step}[/] [bold]{Markup.Escape(title)}[/]").LeftJustified());
        Console.MarkupLine($"[grey]{Markup.Escape(why)}[/]");
        if (_pauseBeforeSteps)
        {
            Console.Markup("[grey]Press Enter to run this step...[/]");
            while (Console.Input.ReadKey(intercept: true) is { Key: not ConsoleKey.Enter })
            {
            }

            Console.WriteLine();
        }
    }

    /// <summary>Shows a SQL statement (and its parameters) the way it is sent.</summary>
    public void Sql(string sql, IReadOnlyList<string>? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(sql);
        IRenderable body = new Text(sql.Trim(), new Style(Color.Aqua));
        if (parameters is { Count: > 0 })
        {
            body = new Rows(body, new Text(string.Join(Environment.NewLine, parameters), new Style(Color.Grey)));
        }

        Console.Write(new Panel(body).Header("SQL").Border(BoxBorder.Rounded).BorderColor(Color.Grey).Expand());
    }

    /// <summary>A plain line of narration (Spectre markup allowed).</summary>
    public void Say(string markup) => Console.MarkupLine(markup);

    /// <summary>Results as a table: one column per (header, value) pair.</summary>
    public void Table<T>(IEnumerable<T> rows, params (string Header, Func<T, object?> Value)[] columns)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var (header, _) in columns)
        {
            table.AddColumn(new TableColumn($"[bold]{Markup.Escape(header)}[/]"));
        }

        var count = 0;
        foreach (var row in rows)
        {
            table.AddRow(columns.Select(c => (IRenderable)new Text(SqlEcho.Describe(c.Value(row)).Trim('\''))).ToArray());
            count++;
        }

        table.Caption($"[grey]{count} row{(count == 1 ? "" : "s")}[/]");
        Console.Write(table);
    }

    /// <summary>Runs one SQL statement through the shared data source, showing it first.</summary>
    public Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken) => ExecuteAsync(sql, connection: null, cancellationToken);

    /// <summary>Runs one SQL statement on <paramref name="connection"/> (for SET LOCAL inside a transaction), or on a pooled one.</summary>
    public async Task<int> ExecuteAsync(string sql, NpgsqlConnection? connection, CancellationToken cancellationToken)
    {
        await using var command = Command(sql, connection, []);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Runs a query and returns its rows as dictionaries (column name to value), showing the SQL first.</summary>
    public Task<IReadOnlyList<IReadOnlyDictionary<string, object?>>> QueryAsync(string sql, CancellationToken cancellationToken) =>
        QueryAsync(sql, connection: null, [], cancellationToken);

    /// <summary>The same with parameters, on <paramref name="connection"/> when given.</summary>
    public async Task<IReadOnlyList<IReadOnlyDictionary<string, object?>>> QueryAsync(string sql, NpgsqlConnection? connection,
        IReadOnlyList<NpgsqlParameter> parameters, CancellationToken cancellationToken)
    {
        await using var command = Command(sql, connection, parameters);
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

        return rows;
    }

    /// <summary>Runs EXPLAIN (ANALYZE) for a query and shows the plan; returns the plan text.</summary>
    public async Task<string> ExplainAsync(string sql, NpgsqlConnection? connection, IReadOnlyList<NpgsqlParameter> parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var echo = EchoSql;
        EchoSql = false;
        try
        {
            const string explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)";
            Sql(explain + "\n" + sql, SqlEcho.DescribeParameters(parameters));
            var rows = await QueryAsync(explain + " " + sql, connection,
                parameters.Select(p => p.Clone()).ToList(), cancellationToken);
            // A vector parameter appears in the plan as its full literal: shorten it so the plan stays readable.
            var plan = System.Text.RegularExpressions.Regex.Replace(
                string.Join(Environment.NewLine, rows.Select(r => r["QUERY PLAN"])), @"'\[[-0-9.e,]{40,}\]'", "'[...]'");
            Console.Write(new Panel(new Text(plan, new Style(Color.Yellow))).Header("plan").Border(BoxBorder.Rounded).BorderColor(Color.Grey).Expand());
            return plan;
        }
        finally
        {
            EchoSql = echo;
        }
    }

    private NpgsqlCommand Command(string sql, NpgsqlConnection? connection, IReadOnlyList<NpgsqlParameter> parameters)
    {
        if (EchoSql)
        {
            Sql(sql, SqlEcho.DescribeParameters(parameters));
        }

        var command = connection is null ? DataSource.CreateCommand(sql) : new NpgsqlCommand(sql, connection);
        command.Parameters.AddRange(parameters.ToArray());
        return command;
    }
}
