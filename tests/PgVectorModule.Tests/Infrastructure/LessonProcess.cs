using System.Diagnostics;
using PgVectorModule.Lessons;

namespace PgVectorModule.Tests.Infrastructure;

/// <param name="Output">Standard output then standard error, as a user at a terminal would read them.</param>
/// <param name="Transcript">What a lesson recorded (LESSON_TRANSCRIPT), or null for the bench and for a run that wrote none.</param>
/// <param name="TranscriptMode">The permissions the transcript file was written with, when there is one.</param>
/// <param name="TranscriptJson">The transcript file as written, for searching what it must not hold.</param>
public sealed record ProcessResult(int ExitCode, string Output, int ProcessId, LessonTranscript? Transcript = null, UnixFileMode? TranscriptMode = null, string? TranscriptJson = null)
{
    /// <summary>The output with Spectre's line wrapping (80 columns when redirected) undone, for matching sentences.</summary>
    public string Text => OneSentence.Flat(Output);
}

/// <summary>
/// Runs a lesson as a learner's machine does (<c>scripts/lesson.sh</c> and <c>dotnet run</c> end in <c>dotnet</c> on the
/// lesson's own build output), with real command-line arguments, standard input and environment. Some faults live
/// only there: the process's command line, its native libraries, its exit code. The bench runs the same way.
/// The test decides every setting: the module's variables are taken out of the inherited environment, and the
/// process runs in an empty temporary folder, so neither the developer's shell nor a .env can change what runs.
/// </summary>
public static class LessonProcess
{
    private const string TranscriptFile = "transcript.json";

    private static readonly string[] ModuleVariables =
        ["DATABASE_URL", "TEST_DATABASE_URL", "EMBEDDING_PROVIDER", "EMBEDDING_BATCH_SIZE", "EMBEDDING_LONG_TEXT", "EMBEDDING_CACHE", "EMBEDDING_CACHE_DIR", "LOCAL_EMBEDDING_MODEL"];

    public static async Task<ProcessResult> RunAsync(LessonInfo lesson, string databaseUrl, IReadOnlyList<string> args,
        string? standardInput = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var settings = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>()) { ["DATABASE_URL"] = databaseUrl };
        using var process = Start(AssemblyPath(lesson), settings, args);
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput.AsMemory(), TestContext.Current.CancellationToken);
        }

        process.StandardInput.Close();
        return await WaitAsync(process, TimeSpan.FromMinutes(3));
    }

    /// <summary>Runs lesson <paramref name="number"/> with exactly these settings (DATABASE_URL among them).</summary>
    public static async Task<ProcessResult> RunLessonAsync(string number, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = StartLesson(number, environment, args);
        return await WaitAsync(process, TimeSpan.FromMinutes(3));
    }

    /// <summary>Runs a lesson in a folder holding <paramref name="dotEnv"/> as its .env file (which the module reads from there).</summary>
    public static async Task<ProcessResult> RunLessonWithDotEnvAsync(string number, string dotEnv, IReadOnlyDictionary<string, string> environment)
    {
        using var process = Start(AssemblyPath(LessonCatalog.Get(number)), Nullable(environment), [], dotEnv);
        return await WaitAsync(process, TimeSpan.FromMinutes(3));
    }

    /// <summary>Runs a built program from wherever it is (a copy of a lesson's output folder) with exactly these settings.</summary>
    public static async Task<ProcessResult> RunAssemblyAsync(string assembly, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = Start(assembly, Nullable(environment), args);
        process.StandardInput.Close();
        return await WaitAsync(process, TimeSpan.FromMinutes(3));
    }

    public static async Task<ProcessResult> RunBenchAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = Start(Built(Path.Combine(RepositoryRoot.Path, "src", "PgVectorModule.Bench"), "PgVectorModule.Bench"), Nullable(environment), args);
        return await WaitAsync(process, TimeSpan.FromMinutes(3));
    }

    /// <summary>Starts a lesson without waiting (for tests that interrupt it); the caller disposes the process.</summary>
    public static Process StartLesson(string number, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var process = Start(AssemblyPath(LessonCatalog.Get(number)), Nullable(environment), args);
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Starts the bench without waiting (for tests that interrupt it); the caller disposes the process.</summary>
    public static Process StartBench(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var process = Start(Built(Path.Combine(RepositoryRoot.Path, "src", "PgVectorModule.Bench"), "PgVectorModule.Bench"), Nullable(environment), args);
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Waits for a started process, collects what it wrote, and removes its working folder.</summary>
    public static async Task<ProcessResult> WaitAsync(Process process, TimeSpan limit)
    {
        ArgumentNullException.ThrowIfNull(process);
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{string.Join(' ', process.StartInfo.ArgumentList)} did not end within {limit.TotalSeconds:0} s.");
        }
        LessonTranscript? transcript = null;
        UnixFileMode? mode = null;
        string? json = null;
        try
        {
            var file = Path.Combine(process.StartInfo.WorkingDirectory, TranscriptFile);
            if (File.Exists(file))
            {
                json = await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken);
                transcript = LessonTranscript.FromJson(json);
                mode = OperatingSystem.IsWindows() ? null : File.GetUnixFileMode(file);
            }
        }
        finally
        {
            if (process.HasExited)
            {
                Directory.Delete(process.StartInfo.WorkingDirectory, recursive: true);
            }
        }

        return new ProcessResult(process.ExitCode, await output + await errors, process.Id, transcript, mode, json);
    }

    /// <summary>Sends SIGINT, what Ctrl+C at a terminal sends on Linux and macOS.</summary>
    public static Task InterruptAsync(Process process) => SignalAsync(process, "INT");

    /// <summary>
    /// Sends a POSIX signal by name with kill(1), the same on Linux and macOS: TERM is what kill, an IDE's stop button, CI
    /// cancellation and docker stop send; HUP what a closed terminal or a dropped SSH session sends. Windows has no
    /// signals: Ctrl+C is sent there with GenerateConsoleCtrlEvent, which reaches every process attached to the sender's
    /// console (the test runner's own included), so a test that sends one is skipped on Windows, saying so.
    /// </summary>
    public static async Task SignalAsync(Process process, string signal)
    {
        ArgumentNullException.ThrowIfNull(process);
        Assert.SkipWhen(OperatingSystem.IsWindows(),
            $"SIG{signal} is a POSIX signal; on Windows Ctrl+C (GenerateConsoleCtrlEvent) would reach every process on the test runner's console, the runner included.");
        using var kill = Process.Start(new ProcessStartInfo("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            ?? throw new InvalidOperationException("kill did not start.");
        await kill.WaitForExitAsync();
    }

    /// <summary>lessons/NN-Name/bin/CONFIGURATION/net10.0/LessonNN.Name.dll, built in the configuration the tests were built in.</summary>
    public static string AssemblyPath(LessonInfo lesson)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var folder = Path.Combine(RepositoryRoot.Path, "lessons", lesson.Folder);
        var project = Directory.GetFiles(folder, "*.csproj").Single();
        return Built(folder, Path.GetFileNameWithoutExtension(project));
    }

    private static string Built(string projectFolder, string assembly)
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var (framework, configuration) = (testOutput.Name, testOutput.Parent!.Name);
        var path = Path.Combine(projectFolder, "bin", configuration, framework, assembly + ".dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"{assembly} is not built at {path}.", path);
    }

    private static Process Start(string assembly, IReadOnlyDictionary<string, string?> environment, IReadOnlyList<string> args, string? dotEnv = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Directory.CreateTempSubdirectory("lesson-process-").FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(assembly);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("OPENAI_", StringComparison.Ordinal) || k.StartsWith("LOCAL_EMBEDDING_MODEL_", StringComparison.Ordinal)
                     || ModuleVariables.Contains(k)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["NO_COLOR"] = "1";
        // Every lesson process writes what it did to its working folder; WaitAsync reads it back.
        start.Environment[LessonTranscript.FileVariable] = Path.Combine(start.WorkingDirectory, TranscriptFile);
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        if (dotEnv is not null)
        {
            File.WriteAllText(Path.Combine(start.WorkingDirectory, ".env"), dotEnv);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
    }

    private static Dictionary<string, string?> Nullable(IReadOnlyDictionary<string, string> environment) =>
        environment.ToDictionary(p => p.Key, p => (string?)p.Value);
}
