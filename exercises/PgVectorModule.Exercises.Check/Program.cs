using System.Reflection;
using PgVectorModule.Problems;
using PgVectorModule;
using PgVectorModule.Data;
using PgVectorModule.Exercises.Check;
using PgVectorModule.Hosting;

// scripts/check.sh [NN...]: checks the learner's exercises (all, or those of the lessons named) against the database in
// DATABASE_URL, one line per exercise; exit code 0 only when every one checked passes.
var lessons = args.Where(a => a.Length > 0).Select(a => a.Length == 1 ? "0" + a : a).ToList();
var known = ExerciseCatalog.All.Select(e => e.Lesson).Distinct().ToList();
if (lessons.FirstOrDefault(l => !known.Contains(l)) is { } unknown)
{
    Console.Error.WriteLine($"No exercises for lesson '{unknown}': the lessons with exercises are {string.Join(", ", known)}. Usage: scripts/check.sh [--reset] [NN]");
    return 64;
}

var exercises = ExerciseCatalog.All.Where(e => lessons.Count == 0 || lessons.Contains(e.Lesson)).ToList();
ModuleSettings? settings = null;
using var cancellation = new CancellationTokenSource();
using var signals = StopSignals.Cancel(cancellation);
try
{
    settings = ModuleSettings.Load();
    await DatabaseProblems.PreflightAsync(settings.DatabaseTarget(), needsVector: true, cancellation.Token);
    var connectionString = settings.ConnectionString();
    await CheckSetup.EnsureVectorAsync(connectionString, cancellation.Token);
    // A class shares one database: each learner's checks work in schemas named for them (Learner), side by side.
    var learner = await Learner.ResolveAsync(connectionString, settings.Learner, cancellation.Token);
    Console.WriteLine($"Each exercise is checked in a schema of its own, {learner.Schema("check_<exercise>_<random>")}, dropped when its check ends.");
    var assembly = Assembly.Load("PgVectorModule.Exercises");
    var passed = 0;
    foreach (var lesson in exercises.GroupBy(e => e.Lesson))
    {
        Console.WriteLine($"Lesson {lesson.Key}");
        foreach (var exercise in lesson)
        {
            var result = await ExerciseRunner.RunAsync(exercise, assembly, connectionString, learner, cancellation.Token);
            Console.Write(CheckReport.Line(exercise, result));
            passed += result.Passed ? 1 : 0;
        }
    }

    Console.WriteLine();
    Console.WriteLine(passed == exercises.Count
        ? $"All {exercises.Count} exercises pass."
        : $"{passed} of {exercises.Count} exercises pass. Edit the files named above and run the check again; scripts/check.sh --reset NN restores a lesson's untouched exercises.");
    return passed == exercises.Count ? ExitCodes.Success : ExitCodes.Failed;
}
catch (Exception) when (cancellation.IsCancellationRequested)
{
    Console.Error.WriteLine("Cancelled: each check's schema was dropped as it stopped.");
    return ExitCodes.Cancelled;
}
catch (Exception e) when (UserProblems.Explain(e, settings is null ? null : settings.DatabaseTarget) is { } problem)
{
    Console.Error.WriteLine(problem.Message);
    return problem.ExitCode;
}
