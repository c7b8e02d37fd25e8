using PgVectorModule.Lessons;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Infrastructure;

/// <param name="Output">What the console showed (for sentences a user reads: errors, the closing line).</param>
/// <param name="Transcript">What the lesson did, step by step: the SQL it sent and showed, its tables by column, its plans.</param>
public sealed record LessonResult(int ExitCode, string Output, LessonTranscript Transcript);

/// <summary>Runs a lesson in-process, exactly as its Program.cs does, with the output captured.</summary>
public static class LessonRunner
{
    public static async Task<LessonResult> RunAsync<TLesson>(ModuleSettings settings, params string[] args)
        where TLesson : ILesson, new()
    {
        var console = new TestConsole().Width(160);
        var transcript = new LessonTranscript();
        var exit = await LessonHost.RunAsync<TLesson>(args,
            new LessonHostOptions { Console = console, Settings = settings, Interactive = false, Transcript = transcript },
            TestContext.Current.CancellationToken);
        return new LessonResult(exit, console.Output, transcript);
    }
}
