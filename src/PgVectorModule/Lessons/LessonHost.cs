using PgVectorModule.Configuration;
using PgVectorModule.Data;
using Spectre.Console;

namespace PgVectorModule.Lessons;

/// <summary>What a caller other than <c>Main</c> (a test) can set; every value defaults to the real thing.</summary>
public sealed record LessonHostOptions
{
    public IAnsiConsole? Console { get; init; }
    public ModuleSettings? Settings { get; init; }

    /// <summary>Whether the user can answer a pause; null means "when standard input is a terminal".</summary>
    public bool? Interactive { get; init; }
}

/// <summary>
/// Runs a lesson the same way for <c>dotnet run</c> and for the tests: parse the switches, check the database,
/// give the lesson its schema, and turn any failure a user can fix into one paragraph and an exit code.
/// </summary>
public static class LessonHost
{
    public static async Task<int> RunAsync<TLesson>(string[] args, LessonHostOptions? options = null, CancellationToken cancellationToken = default)
        where TLesson : ILesson, new()
    {
        ArgumentNullException.ThrowIfNull(args);
        options ??= new LessonHostOptions();
        var console = options.Console ?? AnsiConsole.Console;
        var info = TLesson.Info;

        if (args.Any(a => a is "--help" or "-h"))
        {
            console.MarkupLine($"[bold]Lesson {info.Number}: {Markup.Escape(info.Title)}[/]");
            console.MarkupLine($"Usage: dotnet run --project lessons/{info.Folder} -- [[--step]] [[lesson arguments]]");
            console.MarkupLine("  --step   pause before each step (for walking a class through it; ignored when input is redirected)");
            return ExitCodes.Success;
        }

        var step = args.Contains("--step");
        var interactive = options.Interactive ?? !System.Console.IsInputRedirected;
        var arguments = args.Where(a => a != "--step").ToArray();

        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // let the lesson unwind: transactions roll back, connections go back to the pool
            cancellation.Cancel();
        };
        if (options.Console is null)
        {
            System.Console.CancelKeyPress += onCancel;
        }

        ModuleSettings? settings = null;
        try
        {
            settings = options.Settings ?? ModuleSettings.Load();
            console.Write(new Rule($"[bold green]Lesson {info.Number}[/] [bold]{Markup.Escape(info.Title)}[/]").LeftJustified().RuleStyle("green"));
            console.MarkupLine($"[grey]Rebuilds the Python module's {info.PythonCounterpart} in C#. Works in schema [bold]{info.Schema}[/] of {Markup.Escape(Where(settings))}.[/]");

            await DatabaseProblems.PreflightAsync(settings, info.NeedsVector, cancellation.Token);

            await using var dataSource = ModuleDataSource.Create(settings.ConnectionString(), info.Schema);
            await using (var command = dataSource.CreateCommand($"CREATE SCHEMA IF NOT EXISTS {info.Schema}"))
            {
                await command.ExecuteNonQueryAsync(cancellation.Token);
            }

            var lesson = new Lesson(info, console, settings, dataSource, arguments, pauseBeforeSteps: step && interactive);
            await new TLesson().RunAsync(lesson, cancellation.Token);

            console.WriteLine();
            console.MarkupLine($"[bold green]Lesson {info.Number} done[/] [grey]({lesson.StepCount} steps). Run it again: it resets only schema {info.Schema}.[/]");
            return ExitCodes.Success;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            console.MarkupLine("[yellow]Cancelled. Nothing half-done was committed.[/]");
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when ((e as SetupException ?? (settings is null ? null : DatabaseProblems.Explain(e, settings))) is { } problem)
        {
            console.WriteLine();
            console.MarkupLine($"[red]{Markup.Escape(problem.Message)}[/]");
            return problem.ExitCode;
        }
        finally
        {
            if (options.Console is null)
            {
                System.Console.CancelKeyPress -= onCancel;
            }
        }
    }

    private static string Where(ModuleSettings settings)
    {
        try
        {
            var cs = settings.ConnectionString();
            return $"{cs.Host}:{cs.Port}/{cs.Database}";
        }
        catch (SetupException)
        {
            return "DATABASE_URL";
        }
    }
}
