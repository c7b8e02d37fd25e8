using PgVectorModule.Problems;
using Spectre.Console;

namespace PgVectorModule.Hosting;

/// <summary>
/// How every program of the course (each lesson, the bench) ends: run the work under one cancellation that Ctrl+C,
/// SIGTERM and SIGHUP trigger (<see cref="StopSignals"/>); a stop asked for is one line and
/// <see cref="ExitCodes.Cancelled"/>; a failure a user can fix is one red sentence with the fix and its exit code
/// (<see cref="UserProblems"/>). Anything else is a bug and keeps its stack trace.
/// </summary>
public static class ConsoleHost
{
    /// <param name="console">Where the closing line goes.</param>
    /// <param name="settings">The settings as far as the work has read them (null until then): a database failure is
    /// explained against them.</param>
    /// <param name="body">The work; its result is the exit code when it ends on its own.</param>
    /// <param name="hookSignals">Whether the process's stop signals cancel the work: yes for a program, no for a test
    /// running one in process (a signal is the test runner's).</param>
    /// <param name="cancelled">The line shown when the work was stopped.</param>
    public static async Task<int> RunAsync(
        IAnsiConsole console,
        Func<ModuleSettings?> settings,
        Func<CancellationToken, Task<int>> body,
        bool hookSignals,
        string cancelled = "Cancelled.",
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(body);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // The run unwinds on any stop: transactions roll back, connections go back to the pool, and what it started on
        // this machine (lesson 08's servers, a bench's folders) is stopped or removed by its own finally blocks.
        using var signals = hookSignals ? StopSignals.Cancel(cancellation) : null;
        try
        {
            return await body(cancellation.Token);
        }
        catch (Exception) when (cancellation.IsCancellationRequested)
        {
            // Whatever the cancelled call threw (OperationCanceledException, or a client's wrapper of it), the user asked to stop.
            console.MarkupLine($"[yellow]{Markup.Escape(cancelled)}[/]");
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when (UserProblems.Explain(e, settings() is { } read ? read.DatabaseTarget : null) is { } problem)
        {
            // A blank line parts the sentence from the output of the step or command it ended.
            console.WriteLine();
            console.MarkupLine($"[red]{Markup.Escape(problem.Message)}[/]");
            return problem.ExitCode;
        }
    }
}
