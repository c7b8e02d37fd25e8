using System.Net;
using System.Net.Sockets;
using PgVectorModule.Data;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson01;

using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>Each way DATABASE_URL can be wrong gets its own clear message and exit code, and no stack trace.</summary>
public class PreflightTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static ModuleSettings Url(string url) => ModuleSettings.From(n => n == "DATABASE_URL" ? url : null, ".env");

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task Nothing_listening_names_host_and_port_and_the_start_command_exit_2()
    {
        var port = ClosedPort();

        var result = await LessonRunner.RunAsync<EfCoreBasicsLesson>(Url($"postgresql://postgres:postgres@127.0.0.1:{port}/agent_db"));

        Assert.Equal(ExitCodes.DatabaseUnavailable, result.ExitCode);
        Assert.Contains($"Cannot reach PostgreSQL at 127.0.0.1:{port}", result.Output, StringComparison.Ordinal);
        Assert.Contains("connection refused", result.Output, StringComparison.Ordinal);
        Assert.Contains("scripts/db.sh up", result.Output, StringComparison.Ordinal);
        AssertNoStackTrace(result.Output);
        Assert.DoesNotContain("Step 1", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_that_does_not_resolve_is_explained_exit_2()
    {
        var result = await LessonRunner.RunAsync<EfCoreBasicsLesson>(Url("postgresql://postgres:postgres@no-such-host.invalid:5432/agent_db"));

        Assert.Equal(ExitCodes.DatabaseUnavailable, result.ExitCode);
        Assert.Contains("Cannot reach PostgreSQL at no-such-host.invalid:5432", result.Output, StringComparison.Ordinal);
        AssertNoStackTrace(result.Output);
        Assert.DoesNotContain("Step 1", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sslmode_require_against_a_server_without_ssl_is_explained_exit_9()
    {
        // A cluster of the test's own: certain to have no SSL (the shared server might).
        await using var cluster = await PrivateCluster.StartAsync(TestContext.Current.CancellationToken);
        var cs = cluster.Settings.ConnectionString();

        var result = await LessonRunner.RunAsync<EfCoreBasicsLesson>(
            Url($"postgresql://postgres:{cluster.Password}@127.0.0.1:{cluster.Port}/postgres?sslmode=require"));

        Assert.Equal(ExitCodes.SslFailed, result.ExitCode);
        Assert.Contains($"PostgreSQL at 127.0.0.1:{cs.Port} cannot give the SSL that DATABASE_URL from the .env asks for (sslmode=require)", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", result.Output, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(?m)^\s+at \S+\(", result.Output);
    }

    [Fact]
    public async Task An_unparsable_url_is_explained_exit_2()
    {
        var result = await LessonRunner.RunAsync<EfCoreBasicsLesson>(Url("postgresql//oops"));

        Assert.Equal(ExitCodes.DatabaseUnavailable, result.ExitCode);
        Assert.Contains("DATABASE_URL 'postgresql//oops' cannot be used", result.Output, StringComparison.Ordinal);
        AssertNoStackTrace(result.Output);
    }

    [Fact]
    public async Task A_wrong_password_is_explained_exit_3()
    {
        var cs = database.ConnectionString;
        cs.Password = "certainly-not-the-password";

        var problem = await Assert.ThrowsAsync<SetupException>(() =>
            DatabaseProblems.PreflightAsync(Url(cs.ConnectionString).DatabaseTarget(), needsVector: false, TestContext.Current.CancellationToken));

        Assert.Equal(ExitCodes.AuthenticationFailed, problem.ExitCode);
        Assert.Contains($"refused user '{cs.Username}'", problem.Message, StringComparison.Ordinal);
        Assert.Contains("Check the user name and password in DATABASE_URL from the .env", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_database_is_explained_exit_4()
    {
        var cs = database.ConnectionString;
        cs.Database = "no_such_database_here";

        var problem = await Assert.ThrowsAsync<SetupException>(() =>
            DatabaseProblems.PreflightAsync(Url(cs.ConnectionString).DatabaseTarget(), needsVector: false, TestContext.Current.CancellationToken));

        Assert.Equal(ExitCodes.DatabaseMissing, problem.ExitCode);
        Assert.Contains("has no database named 'no_such_database_here'", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_with_pgvector_passes_the_vector_check()
    {
        await DatabaseProblems.PreflightAsync(database.Settings.DatabaseTarget(), needsVector: true, TestContext.Current.CancellationToken);

        Assert.Equal(1, await database.ScalarAsync<int>("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"));
    }

    /// <summary>
    /// A server without pgvector cannot be made from the test server (the extension is installed for the whole
    /// installation), so the test makes this connection see a catalog without it: a view named
    /// pg_available_extensions that leaves vector out, found first because the search path puts its schema before
    /// pg_catalog. The preflight's question and the lesson's answer are then exactly those of a server without pgvector.
    /// </summary>
    [Fact]
    public async Task A_server_without_pgvector_is_explained_exit_5_before_any_step()
    {
        var cs = database.ConnectionString;
        await using (var connection = new NpgsqlConnection(cs.ConnectionString))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var command = new NpgsqlCommand("""
                CREATE SCHEMA IF NOT EXISTS no_pgvector;
                CREATE OR REPLACE VIEW no_pgvector.pg_available_extensions AS
                    SELECT * FROM pg_catalog.pg_available_extensions WHERE name <> 'vector';
                """, connection);
            await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        cs.SearchPath = "no_pgvector, pg_catalog, public";
        var result = await LessonRunner.RunAsync<PgVectorModule.Lessons.Lesson05.VectorSearchLesson>(Url(cs.ConnectionString));

        Assert.Equal(ExitCodes.ExtensionMissing, result.ExitCode);
        Assert.Contains("does not have the pgvector extension installed", result.Output, StringComparison.Ordinal);
        Assert.Contains("scripts/db.sh up", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", result.Output, StringComparison.Ordinal);
        AssertNoStackTrace(result.Output);
    }

    private static void AssertNoStackTrace(string output)
    {
        Assert.DoesNotMatch(@"(?m)^\s+at \S+\(", output);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
    }
}
