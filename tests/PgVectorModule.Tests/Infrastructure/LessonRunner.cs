using PgVectorModule.Configuration;
using PgVectorModule.Lessons;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Infrastructure;

public sealed record LessonResult(int ExitCode, string Output);

/// <summary>Runs a lesson in-process, exactly as its Program.cs does, with the output captured.</summary>
public static class LessonRunner
{
    public static async Task<LessonResult> RunAsync<TLesson>(ModuleSettings settings, params string[] args)
        where TLesson : ILesson, new()
    {
        var console = new TestConsole().Width(160);
        var exit = await LessonHost.RunAsync<TLesson>(args,
            new LessonHostOptions { Console = console, Settings = settings, Interactive = false },
            TestContext.Current.CancellationToken);
        return new LessonResult(exit, console.Output);
    }
}
