using PgVectorModule.Configuration;

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

    /// <summary>
    /// PG_BINDIR from the environment: the programs (initdb, pg_ctl, pg_basebackup...) of the major version the run tests,
    /// which scripts/test.sh sets for its second lane. Settings built for a test database carry it, so a lesson that
    /// starts servers (lesson 08) starts them with the programs of the server it works on.
    /// </summary>
    public static string? ProgramsFolder => Environment.GetEnvironmentVariable("PG_BINDIR") is { Length: > 0 } folder ? folder : null;

    /// <summary>Lesson 08's settings for a test: none set, but the server's programs (<see cref="ProgramsFolder"/>).</summary>
    public static OperationsSettings Operations => new() { PgBinDir = ProgramsFolder };

    /// <summary>A settings lookup for a test database: its URL, and <see cref="ProgramsFolder"/>; nothing else from the environment.</summary>
    public static Func<string, string?> Lookup(string databaseUrl) => name => name switch
    {
        "DATABASE_URL" => databaseUrl,
        "PG_BINDIR" => ProgramsFolder,
        _ => null,
    };
}
