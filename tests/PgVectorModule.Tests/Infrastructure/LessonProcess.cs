using System.Diagnostics;
using PgVectorModule.Lessons;

namespace PgVectorModule.Tests.Infrastructure;

public sealed record ProcessResult(int ExitCode, string Output, int ProcessId);

/// <summary>
/// Runs a lesson as a learner's machine does (<c>scripts/lesson.sh</c> and <c>dotnet run</c> end in <c>dotnet</c> on the
/// lesson's own build output), with real command-line arguments, standard input and environment. Some faults live
/// only there: the process's command line, its native libraries, its exit code.
/// </summary>
public static class LessonProcess
{
    public static async Task<ProcessResult> RunAsync(LessonInfo lesson, string databaseUrl, IReadOnlyList<string> args,
        string? standardInput = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = RepositoryRoot.Path,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(AssemblyPath(lesson));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The test decides every setting: nothing from the developer's shell or .env may change what runs.
        foreach (var name in new[] { "EMBEDDING_PROVIDER", "OPENAI_API_KEY", "OPENAI_BASE_URL", "EMBEDDING_BATCH_SIZE", "EMBEDDING_LONG_TEXT" })
        {
            start.Environment[name] = "";
        }

        start.Environment["DATABASE_URL"] = databaseUrl;
        start.Environment["NO_COLOR"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new ProcessResult(process.ExitCode, await output + await errors, process.Id);
    }

    /// <summary>lessons/NN-Name/bin/CONFIGURATION/net10.0/LessonNN.Name.dll, built in the configuration the tests were built in.</summary>
    public static string AssemblyPath(LessonInfo lesson)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var (framework, configuration) = (testOutput.Name, testOutput.Parent!.Name);
        var folder = Path.Combine(RepositoryRoot.Path, "lessons", lesson.Folder);
        var project = Directory.GetFiles(folder, "*.csproj").Single();
        var path = Path.Combine(folder, "bin", configuration, framework, Path.GetFileNameWithoutExtension(project) + ".dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"Lesson {lesson.Number} is not built at {path}.", path);
    }
}
