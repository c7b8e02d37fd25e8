using PgVectorModule.Configuration;
using PgVectorModule.Servers;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// Programs some tests need beyond the PostgreSQL server they run on, as skip conditions (the way efcore.pg's test
/// conditions skip what a machine cannot run): <c>[Fact(SkipUnless = nameof(Installed.PgBouncer), SkipType =
/// typeof(Installed), Skip = Installed.PgBouncerMissing)]</c>. On a learner's machine without the program such a test
/// is reported as skipped, with what to install. Where the programs were installed first (scripts/test.sh installs
/// pgbouncer and builds Citus; CI sets TEST_REQUIRE_PROGRAMS=1), nothing is skipped: a missing program fails the tests
/// that need it, so a skip never hides a broken installation.
/// </summary>
public static class Installed
{
    public const string PgBouncerMissing = "pgbouncer is not installed: scripts/db.sh pgbouncer install (scripts/test.sh runs it).";

    /// <summary>TEST_REQUIRE_PROGRAMS=1: every program must be there; a test that needs a missing one fails.</summary>
    public static bool Required => Environment.GetEnvironmentVariable("TEST_REQUIRE_PROGRAMS") == "1";

    /// <summary>pgbouncer as lesson 08 finds it (PGBOUNCER, PATH, the usual folders), or <see cref="Required"/>.</summary>
    public static bool PgBouncer => Required || LocalServers.FindPgBouncerProgram(OperationsSettings.From(Environment.GetEnvironmentVariable).PgBouncer) is not null;
}
