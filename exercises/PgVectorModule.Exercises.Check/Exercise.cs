using System.Reflection;

namespace PgVectorModule.Exercises.Check;

/// <summary>
/// One exercise: where the learner's answer lives (a static member of a class in PgVectorModule.Exercises), what it
/// practises, the hint, and the check that runs the answer against the database in a schema of its own.
/// </summary>
public sealed class Exercise
{
    private readonly Func<CheckRoom, object, CancellationToken, Task<CheckResult>> _check;

    private Exercise(string id, string title, string practises, string hint, string type, string member, Type answerType,
        Func<CheckRoom, object, CancellationToken, Task<CheckResult>> check)
    {
        Id = id;
        Title = title;
        Practises = practises;
        Hint = hint;
        TypeName = type;
        Member = member;
        AnswerType = answerType;
        _check = check;
    }

    /// <summary>"05.1": the lesson, then the exercise's number in it.</summary>
    public string Id { get; }

    public string Lesson => Id[..2];

    public string Title { get; }

    /// <summary>The lesson step the exercise practises.</summary>
    public string Practises { get; }

    public string Hint { get; }

    /// <summary>The class, below the namespace PgVectorModule.Exercises: "Lesson05.VectorSearchExercises".</summary>
    public string TypeName { get; }

    public string Member { get; }

    /// <summary><see cref="string"/> for a SQL exercise, else the delegate type the method must match.</summary>
    public Type AnswerType { get; }

    /// <summary>Where the learner writes the answer, for the report.</summary>
    public string Where => $"exercises/PgVectorModule.Exercises/{TypeName.Replace('.', '/')}.cs, {Member}";

    /// <summary>A SQL exercise: a <c>const string</c> (or static string property) the check runs.</summary>
    public static Exercise Sql(string id, string title, string practises, string hint, string type, string member,
        Func<CheckRoom, string, CancellationToken, Task<CheckResult>> check) =>
        new(id, title, practises, hint, type, member, typeof(string), (room, answer, ct) => check(room, (string)answer, ct));

    /// <summary>A method exercise: a static method of the shape <typeparamref name="TDelegate"/>.</summary>
    public static Exercise Method<TDelegate>(string id, string title, string practises, string hint, string type, string member,
        Func<CheckRoom, TDelegate, CancellationToken, Task<CheckResult>> check)
        where TDelegate : Delegate =>
        new(id, title, practises, hint, type, member, typeof(TDelegate), (room, answer, ct) => check(room, (TDelegate)answer, ct));

    /// <summary>The answer in <paramref name="assembly"/> (the learner's exercises, or the reference solutions), or why there is none.</summary>
    public object Bind(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var fullName = "PgVectorModule.Exercises." + TypeName;
        var type = assembly.GetType(fullName)
            ?? throw new ExerciseMissingException($"{assembly.GetName().Name} has no class {fullName} (was it renamed?)");
        if (AnswerType == typeof(string))
        {
            const BindingFlags flags = BindingFlags.Public | BindingFlags.Static;
            var value = type.GetField(Member, flags)?.GetValue(null) ?? type.GetProperty(Member, flags)?.GetValue(null);
            return value as string ?? throw new ExerciseMissingException($"{fullName} has no public static string {Member} (was it renamed?)");
        }

        var method = type.GetMethod(Member, BindingFlags.Public | BindingFlags.Static)
            ?? throw new ExerciseMissingException($"{fullName} has no public static method {Member} (was it renamed?)");
        try
        {
            return Delegate.CreateDelegate(AnswerType, method);
        }
        catch (ArgumentException)
        {
            throw new ExerciseMissingException($"{fullName}.{Member} no longer has the signature the exercise gave it: undo the change to its parameters or return type");
        }
    }

    /// <summary>Runs the check with <paramref name="answer"/> (a string, or a <see cref="AnswerType"/> delegate).</summary>
    internal Task<CheckResult> CheckAsync(CheckRoom room, object answer, CancellationToken cancellationToken) =>
        _check(room, answer, cancellationToken);
}

/// <summary>The learner's answer cannot be found where the exercise put it.</summary>
public sealed class ExerciseMissingException(string message) : Exception(message);
