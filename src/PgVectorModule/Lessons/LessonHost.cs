using PgVectorModule.Data;
using PgVectorModule.Hosting;
using PgVectorModule.Problems;
using PgVectorModule.Servers;
using Spectre.Console;

namespace PgVectorModule.Lessons;

/// <summary>What a caller other than <c>Main</c> (a test) can set; every value defaults to the real thing.</summary>
public sealed record LessonHostOptions
{
    public IAnsiConsole? Console { get; init; }
    public ModuleSettings? Settings { get; init; }

    /// <summary>Whether the user can answer a pause; null means "when standard input is a terminal".</summary>
    public bool? Interactive { get; init; }

    /// <summary>Where a question given as <c>-</c> is read from; null means standard input.</summary>
    public TextReader? Input { get; init; }

    /// <summary>Where the lesson records what it does (a test reads it afterwards); null means a transcript of its own.</summary>
    public LessonTranscript? Transcript { get; init; }
}

/// <summary>
/// Runs a lesson the same way for <c>dotnet run</c> and for the tests: parse the command line
/// (<see cref="LessonArguments"/>), check the database, give the lesson its schema, and keep its transcript; stopping
/// and failures a user can fix end as every program of the course ends them (<see cref="ConsoleHost"/>).
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
        var interactive = options.Interactive ?? !System.Console.IsInputRedirected;

        ModuleSettings? settings = null;
        var transcript = options.Transcript ?? new LessonTranscript();
        try
        {
            return await ConsoleHost.RunAsync(console, () => settings, async cancellation =>
                {
                    var arguments = await LessonArguments.ParseAsync(args, info, options.Input ?? System.Console.In, cancellation);
                    if (arguments.Help)
                    {
                        console.Write(new Text(LessonArguments.HelpText(info, console.Profile.Width)));
                        return ExitCodes.Success;
                    }

                    settings = options.Settings ?? ModuleSettings.Load();
                    LessonConsole.Heading(console, $"[bold green]Lesson {info.Number}[/]", $"Lesson {info.Number}", info.Title, new Style(Color.Green));
                    // DATABASE_URL unset: a server found or started on this machine (a private cluster, a pgvector container), said in one line.
                    (settings, var server) = await CourseDatabase.FindAsync(settings, cancellation);
                    if (server is not null)
                    {
                        console.MarkupLine($"[grey]{Markup.Escape(server.Description)}[/]");
                    }

                    console.MarkupLine($"[grey]Rebuilds the Python module's {info.PythonCounterpart} in C#, against {Markup.Escape(Where(settings))}.[/]");

                    await DatabaseProblems.PreflightAsync(settings.DatabaseTarget(), info.NeedsVector, cancellation);
                    // Each learner works in schemas of their own (alice_lesson05), so a class shares one database without sharing tables.
                    var learner = await Learner.ResolveAsync(settings.ConnectionString(), settings.Learner, cancellation);
                    info = info with { Schema = learner.Schema(info.Schema) };
                    console.MarkupLine($"[grey]Works in schema [bold]{info.Schema}[/]{(learner.Name is null ? "" : $", learner {learner.Name} (role {Markup.Escape(learner.Role)})")}.[/]");

                    await using var dataSource = ModuleDataSource.Create(settings.ConnectionString(), info.Schema);
                    await using var schemaLock = await LockSchemaAsync(dataSource, info, console, cancellation);
                    if (await SchemaAccess.EnsureAsync(dataSource, info.Schema, cancellation) is { } skipped)
                    {
                        console.MarkupLine($"[yellow]{Markup.Escape(skipped)}[/]");
                    }

                    var lesson = new Lesson(info, console, settings, dataSource, arguments.Question, pauseBeforeSteps: arguments.Step && interactive, transcript, arguments.Verbose);
                    await new TLesson().RunAsync(lesson, cancellation);
                    lesson.EndStep();
                    transcript.Completed = true;

                    console.WriteLine();
                    console.MarkupLine($"[bold green]Lesson {info.Number} done[/] [grey]({lesson.StepCount} steps). Run it again: it resets only schema {info.Schema}.[/]");
                    return ExitCodes.Success;
                },
                // Ctrl+C, SIGTERM and SIGHUP let the lesson unwind; a test that gives its own console keeps the signals its runner's.
                hookSignals: options.Console is null,
                cancelled: "Cancelled. Nothing half-done was committed.",
                cancellationToken);
        }
        finally
        {
            await WriteTranscriptAsync(transcript);
        }
    }

    /// <summary>
    /// With LESSON_TRANSCRIPT set, the transcript goes to that file as JSON: how the tests read a lesson run as a
    /// process, and a record of a class demo. Written however the run ended, so a failed run shows how far it got.
    /// The file is the user's alone (mode 0600, from its creation on): it holds every statement the lesson sent.
    /// </summary>
    private static async Task WriteTranscriptAsync(LessonTranscript transcript)
    {
        if (Environment.GetEnvironmentVariable(LessonTranscript.FileVariable) is not { Length: > 0 } path)
        {
            return;
        }

        try
        {
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                options.UnixCreateMode = ownerOnly;
                if (File.Exists(path))
                {
                    // A file from an earlier run keeps its mode when it is overwritten: make it private before writing.
                    File.SetUnixFileMode(path, ownerOnly);
                }
            }

            await using var file = new FileStream(path, options);
            await using var writer = new StreamWriter(file);
            await writer.WriteAsync(transcript.ToJson());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await System.Console.Error.WriteLineAsync($"The transcript could not be written to {path} ({e.Message}); {LessonTranscript.FileVariable} names a file this user may write.");
        }
    }

    /// <summary>The advisory lock key of a lesson's schema (parameter @schema), so no other program's lock collides by chance.</summary>
    internal const string SchemaLockKey = LearnerSchemas.LockKey;

    /// <summary>
    /// One run of a lesson at a time per database: a second copy (another terminal, a test run) would drop and
    /// recreate the tables the first is using. A session-level advisory lock, keyed by the lesson's schema, is held on
    /// a connection of its own for the whole run; a second copy says so and waits (Ctrl+C stops the wait). Different
    /// lessons use different schemas and keys, so they run side by side.
    /// </summary>
    private static async Task<SchemaLock> LockSchemaAsync(NpgsqlDataSource dataSource, LessonInfo info, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        NpgsqlCommand Lock(string function)
        {
            var command = new NpgsqlCommand($"SELECT {function}({SchemaLockKey})", connection) { CommandTimeout = 0 };
            command.Parameters.AddWithValue("schema", info.Schema);
            return command;
        }

        try
        {
            await using var tryLock = Lock("pg_try_advisory_lock");
            if (await tryLock.ExecuteScalarAsync(cancellationToken) is not true)
            {
                console.MarkupLine($"[yellow]Another run of lesson {info.Number} is working in schema {info.Schema} of this database; waiting for it to finish (Ctrl+C to stop waiting).[/]");
                await using var waitLock = Lock("pg_advisory_lock");
                await waitLock.ExecuteNonQueryAsync(cancellationToken);
            }

            return new SchemaLock(connection);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Releases the lesson's advisory lock and gives its connection back.</summary>
    private sealed class SchemaLock(NpgsqlConnection connection) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", connection);
                await unlock.ExecuteNonQueryAsync();
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                // The server went away (the lesson already says so): its locks went with the session.
            }
            finally
            {
                await connection.DisposeAsync();
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
