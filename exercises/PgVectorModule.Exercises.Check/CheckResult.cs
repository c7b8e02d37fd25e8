namespace PgVectorModule.Exercises.Check;

/// <summary>What one check found: passed, or what was expected and what came back.</summary>
public sealed record CheckResult(bool Passed, string Expected, string Got)
{
    public static CheckResult Pass(string what) => new(true, what, what);

    public static CheckResult Fail(string expected, string got) => new(false, expected, got);

    /// <summary>The first failure of several checks in order, or the last pass.</summary>
    public CheckResult Then(Func<CheckResult> next) => Passed ? next() : this;
}
