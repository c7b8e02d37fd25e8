using System.Reflection;
using PgVectorModule.Data;

namespace PgVectorModule.Exercises.Check;

/// <summary>
/// Runs one exercise's check in a room of its own and turns whatever the learner's code does (a TODO left, an
/// exception, a PostgreSQL error, a run that never ends) into a result: never a crash, never a stack trace. Only a
/// database that cannot be reached at all escapes, for the program to explain.
/// </summary>
public static class ExerciseRunner
{
    /// <summary>A check that takes longer than this (a learner's endless loop, say) counts as not passing.</summary>
    public static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(90);

    /// <summary>
    /// The answer the learner (or the reference solution) wrote in <paramref name="assembly"/>, checked in a room named for
    /// <paramref name="learner"/> (null: the login role's).
    /// </summary>
    public static Task<CheckResult> RunAsync(Exercise exercise, Assembly assembly, NpgsqlConnectionStringBuilder connectionString, Learner? learner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exercise);
        object answer;
        try
        {
            answer = exercise.Bind(assembly);
        }
        catch (ExerciseMissingException e)
        {
            return Task.FromResult(CheckResult.Fail($"the answer in {exercise.Where}", e.Message));
        }

        return RunAsync(exercise, answer, connectionString, learner, cancellationToken);
    }

    /// <summary>Checks <paramref name="answer"/>: a SQL string, or a delegate of the exercise's <see cref="Exercise.AnswerType"/>.</summary>
    public static async Task<CheckResult> RunAsync(Exercise exercise, object answer, NpgsqlConnectionStringBuilder connectionString, Learner? learner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exercise);
        ArgumentNullException.ThrowIfNull(answer);
        if (answer is string sql && (sql.Contains("TODO", StringComparison.Ordinal) || string.IsNullOrWhiteSpace(sql)))
        {
            return CheckResult.Fail($"the SQL in {exercise.Where}", "not written yet: the string still says TODO");
        }

        await using var room = await CheckRoom.OpenAsync(connectionString, exercise.Id, learner, cancellationToken);
        try
        {
            return await exercise.CheckAsync(room, answer, cancellationToken).WaitAsync(TimeLimit, cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && Explain(e, exercise) is { } result)
        {
            return result;
        }
    }

    /// <summary>The learner's failure as a result; null for what the learner did not cause (the server went away).</summary>
    private static CheckResult? Explain(Exception exception, Exercise exercise)
    {
        var e = exception is AggregateException { InnerExceptions.Count: 1 } single ? single.InnerExceptions[0] : exception;
        if (e is TargetInvocationException { InnerException: { } inner })
        {
            e = inner;
        }

        return e switch
        {
            CheckCannotRunException => CheckResult.Fail("a check that can run here", e.Message),
            NotImplementedException => CheckResult.Fail($"an answer in {exercise.Where}", $"not written yet ({e.Message})"),
            TimeoutException => CheckResult.Fail($"an answer within {TimeLimit.TotalSeconds:0} s", "still running: a loop that never ends, or a statement waiting on a lock?"),
            PostgresException pg => CheckResult.Fail("no error", $"PostgreSQL error {pg.SqlState}: {pg.MessageText}" + (pg.Position > 0 ? $" (at character {pg.Position})" : "")),
            NpgsqlException { InnerException: TimeoutException } => CheckResult.Fail($"an answer within {CheckRoom.StatementTimeoutMilliseconds / 1000} s", "a statement timed out"),
            // Npgsql's own failures with no server error behind them are the connection's: not the learner's to fix.
            NpgsqlException when e.InnerException is System.Net.Sockets.SocketException or IOException or EndOfStreamException => null,
            _ => CheckResult.Fail("no exception", $"{e.GetType().Name}: {Lesson04Checks.Short(e.Message, 300)}"),
        };
    }
}
