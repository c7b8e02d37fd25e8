using System.Net.Sockets;
using System.Text.RegularExpressions;
namespace PgVectorModule.Problems;

/// <summary>
/// Checks that the database answers before a lesson starts, and turns every failure a user can cause at the server
/// (connection, credentials, privileges, limits, a read-only or busy server) into one paragraph that says what is
/// wrong and how to fix it.
/// </summary>
public static partial class DatabaseProblems
{
    public const string StartCommand = "scripts/db.sh up";

    /// <summary>Opens one connection; throws <see cref="SetupException"/> with the fix when that fails.</summary>
    public static async Task PreflightAsync(DatabaseTarget target, bool needsVector, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        var connectionString = new NpgsqlConnectionStringBuilder(target.ConnectionString.ConnectionString);
        // A stopped server answers "connection refused" at once; a wrong host should not keep a learner waiting.
        connectionString.Timeout = Math.Min(connectionString.Timeout, 5);
        // The check's connection closes when it is done: pooled, it would idle on a slot the lesson itself needs.
        connectionString.Pooling = false;
        // Refusals at connect time explain themselves in the detail ("Hot standby mode is disabled"); no row data is involved.
        connectionString.IncludeErrorDetail = true;
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
                        $"Run '{StartCommand}' to get a server that has it (a local cluster with pgvector built in, or the pgvector container docker-compose.yml pins), " +
                        "or install pgvector on this server (https://github.com/pgvector/pgvector#installation).",
                        ExitCodes.ExtensionMissing);
                }
            }
        }
        catch (Exception e) when (Explain(e, target) is { } problem)
        {
            throw problem;
        }
    }

    /// <summary>The user-facing explanation for a database failure, or null when it is not one a user can fix.</summary>
    /// <param name="target">Read only when the failure needs it; a target that cannot be made (a DATABASE_URL that does
    /// not parse) is itself the explanation.</param>
    public static SetupException? Explain(Exception exception, Func<DatabaseTarget> target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (exception is SetupException setup)
        {
            return setup;
        }

        try
        {
            return Explain(exception, target());
        }
        catch (SetupException bad)
        {
            return bad;
        }
    }

    /// <summary>The user-facing explanation for a database failure, or null when it is not one a user can fix.</summary>
    public static SetupException? Explain(Exception exception, DatabaseTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (exception is SetupException setup)
        {
            return setup;
        }

        var connectionString = target.ConnectionString;

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
        var origin = target.Origin;

        var role = Identifier(connectionString.Username ?? Environment.UserName);
        var database = Identifier(connectionString.Database ?? connectionString.Username ?? Environment.UserName);
        switch (cause)
        {
            case PostgresException { SqlState: PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification } e:
                return new SetupException(
                    $"PostgreSQL at {where} refused user '{connectionString.Username}' ({e.MessageText}). " +
                    $"Check the user name and password in {origin}; for the course database made by '{StartCommand}' (its password is generated, or POSTGRES_PASSWORD), take its URL: export DATABASE_URL=$(scripts/db.sh url).",
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
            case PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege } e:
                // The schema and the extension have sentences of their own where they are made (SchemaAccess, VectorStore).
                return new SetupException(
                    $"PostgreSQL at {where} refused role '{role}' ({e.MessageText}): the role lacks a privilege this step needs. " +
                    "When the object belongs to another role (often the one that ran the lesson first), run as that role, or have it drop the lesson's schema " +
                    $"(DROP SCHEMA ... CASCADE) so this role makes its own; otherwise ask an administrator to grant what the message names (GRANT ... TO {role}).",
                    ExitCodes.PermissionDenied, exception);
            case PostgresException { SqlState: PostgresErrorCodes.TooManyConnections } e:
                return new SetupException(
                    $"PostgreSQL at {where} has no connection slot left for role '{role}' ({e.MessageText}): its max_connections are all in use, " +
                    $"and this program's pool may open up to {connectionString.MaxPoolSize} (Maximum Pool Size, from {origin}). " +
                    "Close idle sessions (other lessons, psql, an IDE; pg_stat_activity lists them), lower Maximum Pool Size (the keyword form of DATABASE_URL takes Maximum Pool Size=10), " +
                    "or raise max_connections on the server (a restart), then run again.",
                    ExitCodes.TooManyConnections, exception);
            case PostgresException { SqlState: PostgresErrorCodes.CannotConnectNow } e:
                return new SetupException(
                    $"PostgreSQL at {where} is not accepting connections now ({e.MessageText}{(Detail(e) is { } d ? ": " + d : "")}): it is starting up, shutting down, " +
                    "or a standby that does not take queries (hot_standby = off). Wait a moment and run again; if it stays so, read the server's log " +
                    $"(for the course database of '{StartCommand}': .pgdata/postgres.log, or docker compose logs), or point {origin} at a server that is up.",
                    ExitCodes.DatabaseUnavailable, exception);
            case PostgresException { SqlState: PostgresErrorCodes.ReadOnlySqlTransaction } e:
                return new SetupException(
                    $"PostgreSQL at {where} accepts only reads on this connection ({e.MessageText}): it is a standby (a read replica), " +
                    $"or default_transaction_read_only is on for the server, database {database} or role '{role}'. " +
                    "Point DATABASE_URL at the primary (with several hosts, add target_session_attrs=read-write), " +
                    $"or turn the setting off (ALTER DATABASE {database} SET default_transaction_read_only = off, or the same on the role or in postgresql.conf).",
                    ExitCodes.ReadOnlyServer, exception);
            case PostgresException { SqlState: PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.LockNotAvailable } e:
                return new SetupException(
                    $"PostgreSQL at {where} stopped a statement ({e.MessageText}): statement_timeout or lock_timeout ran out " +
                    $"(set on the server, database {database}, role '{role}' or in DATABASE_URL's options), or an administrator cancelled it. " +
                    $"Raise the limit for this role (ALTER ROLE {role} SET statement_timeout = '5min') or in the URL (options=-c statement_timeout=5min), " +
                    "let whatever holds the lock finish, and run again: the statement was rolled back.",
                    ExitCodes.StatementStopped, exception);
            case PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure } e:
                return new SetupException(
                    $"PostgreSQL at {where} rolled back a statement that clashed with another session ({e.MessageText}): " +
                    "something else was changing the same rows at the same moment. Let it finish and run again.",
                    ExitCodes.StatementStopped, exception);
            case PostgresException { SqlState: PostgresErrorCodes.DiskFull } e:
                return new SetupException(
                    $"PostgreSQL at {where} is out of disk space ({e.MessageText}): free space on the server's data disk (old databases, logs, " +
                    "WAL held by an inactive replication slot) or give it a bigger one, then run again; the statement was rolled back.",
                    ExitCodes.ServerOutOfResources, exception);
            case PostgresException { SqlState: PostgresErrorCodes.OutOfMemory } e:
                return new SetupException(
                    $"PostgreSQL at {where} ran out of memory ({e.MessageText}): close other sessions, lower work_mem or maintenance_work_mem " +
                    "(an index build asks for maintenance_work_mem), or give the server more memory, then run again; the statement was rolled back.",
                    ExitCodes.ServerOutOfResources, exception);
            case PostgresException { SqlState: PostgresErrorCodes.InsufficientResources or PostgresErrorCodes.ConfigurationLimitExceeded } e:
                return new SetupException(
                    $"PostgreSQL at {where} reached a limit ({e.MessageText}{(e.Hint is { Length: > 0 } h ? "; " + h.TrimEnd('.') : "")}): " +
                    "raise the setting it names on the server (some need a restart), or close other sessions, then run again.",
                    ExitCodes.ServerOutOfResources, exception);
            case PostgresException { SqlState: PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown }:
            case NpgsqlException { IsTransient: true } and not PostgresException:
            case NpgsqlException { InnerException: SocketException or IOException or TimeoutException } and not PostgresException:
                return new SetupException(
                    $"Cannot reach PostgreSQL at {where} ({origin}): {Reason(cause)}. " +
                    $"Start the course database with '{StartCommand}' (it uses Docker when it answers, else a local PostgreSQL with pgvector), " +
                    "or set DATABASE_URL in the environment or .env to a running server with pgvector.",
                    ExitCodes.DatabaseUnavailable, exception);
            default:
                return null;
        }
    }

    /// <summary>The role may not create a schema in the database (it lacks CREATE on it).</summary>
    internal static SetupException SchemaDenied(string schema, string role, string database, string where, string serverMessage, Exception? exception) =>
        new($"Role '{role}' may not create schema {schema} in database {database} at {where} ({serverMessage}): " +
            $"ask an administrator to run GRANT CREATE ON DATABASE {database} TO {role}, or to make the schema for this role once " +
            $"(CREATE SCHEMA {schema} AUTHORIZATION {role}); or put a role that may in DATABASE_URL.",
            ExitCodes.PermissionDenied, exception);

    /// <summary>A name as it can be pasted into SQL: plain when it is a lower-case identifier, else double-quoted.</summary>
    public static string Identifier(string name) =>
        PlainIdentifier().IsMatch(name) ? name : "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [GeneratedRegex("^[a-z_][a-z0-9_$]*$")]
    private static partial Regex PlainIdentifier();

    /// <summary>The server's detail line, unless Npgsql withheld it (it does unless Include Error Detail is set).</summary>
    private static string? Detail(PostgresException e) =>
        e.Detail is { Length: > 0 } detail && !detail.StartsWith("Detail redacted", StringComparison.Ordinal) ? detail.TrimEnd('.') : null;

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
                    return "no answer before the timeout (Timeout, to connect, or Command Timeout, per statement)";
                case PostgresException p:
                    return $"the server is shutting down or starting ({p.MessageText})";
            }
        }

        return exception.Message.TrimEnd('.');
    }
}
