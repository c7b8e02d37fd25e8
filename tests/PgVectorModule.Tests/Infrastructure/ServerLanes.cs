namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// The trait that marks test classes whose outcome depends on the server's major version or its planner (plans, iterative
/// scans, re-sorts, BM25's SQL, the lessons that show them). scripts/test.sh runs the whole suite on the main server and,
/// with TEST_ALSO_ON_POSTGRES set (CI sets 18), these classes again on that major: <c>--filter-trait "Server=VersionDependent"</c>.
/// </summary>
public static class ServerLanes
{
    public const string Trait = "Server";
    public const string VersionDependent = "VersionDependent";
}
