using System.Net.Sockets;
using PgVectorModule.Configuration;

namespace PgVectorModule.Lessons;

/// <summary>
/// Checks that the database answers before a lesson starts, and turns connection failures into one
/// paragraph that says what is wrong and how to fix it.
/// </summary>
public static class DatabaseProblems
{
    public const string StartCommand = "scripts/db.sh up";

    /// <summary>Opens one connection; throws <see cref="SetupException"/> with the fix when that fails.</summary>
    public static async Task PreflightAsync(ModuleSettings settings, bool needsVector, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var connectionString = settings.ConnectionString();
        // A stopped server answers "connection refused" at once; a wrong host should not keep a learner waiting.
        connectionString.Timeout = Math.Min(connectionString.Timeout, 5);
        try
        {
            await using var connection = new NpgsqlConnection(connectionString.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            if (needsVector)
            {
                await using var command = new NpgsqlCommand(
                    "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')", connection);
                if (await command.ExecuteScalarAsync(cancellationToken) is not true)
                {
                    throw new SetupException(
                        $"The PostgreSQL server at {Where(connectionString)} does not have the pgvector extension installed, so CREATE EXTENSION vector cannot work. " +
                        $"Run '{StartCommand}' to get a server that has it (a local cluster with pgvector built in, or the pgvector/pgvector:0.8.7-pg17 container), " +
                        "or install pgvector on this server (https://github.com/pgvector/pgvector#installation).",
                        ExitCodes.ExtensionMissing);
                }
            }
        }
        catch (Exception e) when (Explain(e, settings) is { } problem)
        {
            throw problem;
        }
    }

    /// <summary>The user-facing explanation for a database failure, or null when it is not one a user can fix.</summary>
    public static SetupException? Explain(Exception exception, ModuleSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (exception is SetupException setup)
        {
            return setup;
        }

        NpgsqlConnectionStringBuilder connectionString;
        try
        {
            connectionString = settings.ConnectionString();
        }
        catch (SetupException bad)
        {
            return bad;
        }

        // EF Core's execution strategy reports a transient failure as an InvalidOperationException around the
        // NpgsqlException ("likely due to a transient failure"): explain the database error inside it.
        var cause = exception;
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NpgsqlException)
            {
                cause = e;
                break;
            }
        }

        var where = Where(connectionString);
        var origin = settings.DatabaseUrlSource switch
        {
            "default" => "the default DATABASE_URL",
            var source => $"DATABASE_URL from the {source}",
        };

        switch (cause)
        {
            case PostgresException { SqlState: PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification } e:
                return new SetupException(
                    $"PostgreSQL at {where} refused user '{connectionString.Username}' ({e.MessageText}). " +
                    $"Check the user name and password in {origin}; the course database made by '{StartCommand}' uses POSTGRES_USER and POSTGRES_PASSWORD from .env (postgres / postgres by default).",
                    ExitCodes.AuthenticationFailed, exception);
            case PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName }:
                return new SetupException(
                    $"PostgreSQL at {where} has no database named '{connectionString.Database}'. " +
                    $"Create it (createdb -h {connectionString.Host} -p {connectionString.Port} -U {connectionString.Username} {connectionString.Database}), " +
                    $"run '{StartCommand}', which creates it, or fix the database name in {origin}.",
                    ExitCodes.DatabaseMissing, exception);
            case NpgsqlException e when e.Message.StartsWith("SSL connection requested", StringComparison.Ordinal)
                                        || e.InnerException is System.Security.Authentication.AuthenticationException:
                return new SetupException(
                    $"PostgreSQL at {where} cannot give the SSL that {origin} asks for (sslmode={connectionString.SslMode.ToString().ToLowerInvariant()}): " +
                    $"{(e.InnerException as System.Security.Authentication.AuthenticationException)?.Message ?? e.Message} " +
                    "A local server usually has no certificate: use sslmode=prefer or disable there. For a remote server keep require or verify-full, " +
                    "and check that the server has SSL on and that sslrootcert names the CA that signed its certificate.",
                    ExitCodes.SslFailed, exception);
            case PostgresException { SqlState: PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.CrashShutdown }:
            case NpgsqlException { IsTransient: true } or NpgsqlException { InnerException: SocketException or IOException or TimeoutException }:
                return new SetupException(
                    $"Cannot reach PostgreSQL at {where} ({origin}): {Reason(cause)}. " +
                    $"Start the course database with '{StartCommand}' (it uses Docker when it answers, else a local PostgreSQL with pgvector), " +
                    "or set DATABASE_URL in the environment or .env to a running server with pgvector.",
                    ExitCodes.DatabaseUnavailable, exception);
            default:
                return null;
        }
    }

    private static string Where(NpgsqlConnectionStringBuilder cs) => $"{cs.Host}:{cs.Port}";

    private static string Reason(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return "connection refused, nothing is listening there";
                case SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData }:
                    return "the host name does not resolve";
                case SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown }:
                case EndOfStreamException:
                    return "the server closed the connection (it stopped or restarted while the lesson was running)";
                case TimeoutException:
                    return "no answer before the timeout";
                case PostgresException p:
                    return $"the server is shutting down or starting ({p.MessageText})";
            }
        }

        return exception.Message.TrimEnd('.');
    }
}
