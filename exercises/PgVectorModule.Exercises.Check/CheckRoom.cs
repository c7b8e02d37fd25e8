using System.Globalization;
using System.Security.Cryptography;
using PgVectorModule.Data;
using PgVectorModule.Problems;

namespace PgVectorModule.Exercises.Check;

/// <summary>
/// The room one check of one exercise works in: a schema of its own (<c>alice_check_0501_1a2b3c4d</c>), never a lesson's,
/// holding only the data the check sets up; roles the check creates are named after it. Everything goes when the room
/// is disposed: the schema, the roles, the connections. Two checks, or two learners, never share a room.
/// </summary>
public sealed class CheckRoom : IAsyncDisposable
{
    /// <summary>A learner's statement that runs away (a lock wait, a huge cross join) ends after this long.</summary>
    internal const int StatementTimeoutMilliseconds = 60_000;

    private readonly NpgsqlConnectionStringBuilder _connectionString;
    private readonly List<NpgsqlDataSource> _dataSources = [];
    private readonly List<string> _roles = [];
    private readonly string _tag;

    private CheckRoom(NpgsqlConnectionStringBuilder connectionString, string schema, string tag)
    {
        _connectionString = connectionString;
        Schema = schema;
        _tag = tag;
        Admin = DataSource();
    }

    /// <summary>The schema's name: a plain identifier (lower-case letters, digits, underscores), safe to write into SQL.</summary>
    public string Schema { get; }

    /// <summary>The check's own connections (DATABASE_URL's role), with the room's schema first on the search path.</summary>
    public NpgsqlDataSource Admin { get; }

    /// <summary>
    /// Opens a room for one check of <paramref name="exerciseId"/>, named for <paramref name="learner"/> (null: the login
    /// role's, see <see cref="Learner"/>): <c>alice_check_0501_1a2b3c4d</c>, or <c>check_0501_1a2b3c4d</c> for a superuser.
    /// </summary>
    public static async Task<CheckRoom> OpenAsync(NpgsqlConnectionStringBuilder connectionString, string exerciseId, Learner? learner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        ArgumentNullException.ThrowIfNull(exerciseId);
        var tag = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        string schema;
        await using (var connection = new NpgsqlConnection(connectionString.ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            learner ??= await Learner.ResolveAsync(connection, setting: null, cancellationToken);
            schema = learner.Schema($"check_{exerciseId.Replace(".", "", StringComparison.Ordinal)}_{tag}");
            await using var command = new NpgsqlCommand($"CREATE SCHEMA {schema}", connection);
            try
            {
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                var database = DatabaseProblems.Identifier(connection.Database);
                throw new SetupException(
                    $"Role '{learner.Role}' may not create schemas in database {database} ({e.MessageText}), and each check works in a " +
                    $"schema of its own that it drops afterwards: ask an administrator to run GRANT CREATE ON DATABASE {database} TO {DatabaseProblems.Identifier(learner.Role)}.",
                    ExitCodes.PermissionDenied, e);
            }
        }

        return new CheckRoom(connectionString, schema, tag);
    }

    /// <summary>
    /// A data source for the learner's code, with pgvector's types and the room's schema on the search path; disposed with
    /// the room. <paramref name="configure"/> changes its connection string (a role, a pool of one, no reset on close).
    /// </summary>
    public NpgsqlDataSource DataSource(Action<NpgsqlConnectionStringBuilder>? configure = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(_connectionString.ConnectionString)
        {
            SearchPath = $"{Schema}, public",
            ApplicationName = "PgVectorModule check",
            CommandTimeout = StatementTimeoutMilliseconds / 1000 + 5,
            Options = $"-c statement_timeout={StatementTimeoutMilliseconds}",
        };
        configure?.Invoke(builder);
        var dataSourceBuilder = new NpgsqlDataSourceBuilder(builder.ConnectionString);
        dataSourceBuilder.UseVector();
        var dataSource = dataSourceBuilder.Build();
        _dataSources.Add(dataSource);
        return dataSource;
    }

    /// <summary>A data source whose sessions run as <paramref name="role"/> (<c>SET ROLE</c> at connect time: no password needed).</summary>
    public NpgsqlDataSource DataSourceAs(string role, Action<NpgsqlConnectionStringBuilder>? configure = null) =>
        DataSource(builder =>
        {
            builder.Options += $" -c role={role}";
            configure?.Invoke(builder);
        });

    /// <summary>
    /// Creates a role that cannot log in, named for this room (<c>check_1a2b3c4d_app</c>), and makes the check's own
    /// login a member of it, so the check can take it on with SET ROLE and drop what it owns afterwards: since
    /// PostgreSQL 16 a role with CREATEROLE only administers the roles it makes, and may not become one until it grants
    /// itself the membership. Dropped with the room.
    /// </summary>
    public async Task<string> CreateRoleAsync(string suffix, CancellationToken cancellationToken)
    {
        var role = $"check_{_tag}_{suffix}";
        try
        {
            await ExecuteAsync($"CREATE ROLE {role} NOLOGIN", cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new CheckCannotRunException(
                $"this check runs your answer as a role of its own, and login {_connectionString.Username ?? "this role"} may not create roles ({e.MessageText}): " +
                $"ask for ALTER ROLE {_connectionString.Username ?? "your_role"} CREATEROLE, or run the check as the local cluster's superuser");
        }

        _roles.Add(role);
        await ExecuteAsync($"GRANT {role} TO CURRENT_USER", cancellationToken);
        return role;
    }

    /// <summary>Runs SQL as the check, with positional parameters ($1, $2...).</summary>
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken, params object?[] values)
    {
        await using var command = Command(Admin, sql, values);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Runs SQL as the check and returns the SQLSTATE the server refused it with, or null when it was accepted.</summary>
    public async Task<string?> RefusedAsync(string sql, CancellationToken cancellationToken, params object?[] values)
    {
        try
        {
            await ExecuteAsync(sql, cancellationToken, values);
            return null;
        }
        catch (PostgresException e)
        {
            return e.SqlState;
        }
    }

    public async Task<T> ScalarAsync<T>(string sql, CancellationToken cancellationToken, params object?[] values)
    {
        await using var command = Command(Admin, sql, values);
        var value = await command.ExecuteScalarAsync(cancellationToken);
        return value is null or DBNull ? default! : (T)Convert.ChangeType(value, typeof(T), CultureInfo.InvariantCulture);
    }

    /// <summary>The rows of a query, each as its column values.</summary>
    public Task<List<object?[]>> RowsAsync(string sql, CancellationToken cancellationToken, params object?[] values) =>
        RowsAsync(Admin, sql, cancellationToken, values);

    public static async Task<List<object?[]>> RowsAsync(NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken, params object?[] values)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = Command(dataSource, sql, values);
        return await ReadAsync(command, cancellationToken);
    }

    /// <summary>
    /// The rows of a query run in a transaction of its own after <paramref name="settings"/> (SET LOCAL statements),
    /// rolled back when read, so the settings end with it.
    /// </summary>
    public async Task<List<object?[]>> RowsWithSettingsAsync(string settings, string sql, CancellationToken cancellationToken, params object?[] values)
    {
        await using var connection = await Admin.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var set = new NpgsqlCommand(settings, connection, transaction))
        {
            await set.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(Parameter(value));
        }

        var rows = await ReadAsync(command, cancellationToken);
        await transaction.RollbackAsync(cancellationToken);
        return rows;
    }

    private static async Task<List<object?[]>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<object?[]>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = await reader.IsDBNullAsync(i, cancellationToken) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }

    /// <summary>
    /// The plan PostgreSQL picks for <paramref name="sql"/> with these parameters, sequential scans discouraged (on a
    /// check's small table a scan is cheap; the question is whether the query can use the index at all).
    /// </summary>
    public async Task<string> PlanAsync(string sql, CancellationToken cancellationToken, params object?[] values)
    {
        var lines = await RowsWithSettingsAsync("SET LOCAL enable_seqscan = off", "EXPLAIN (COSTS OFF) " + Statement(sql), cancellationToken, values);
        return string.Join('\n', lines.Select(line => (string)line[0]!));
    }

    /// <summary>One statement as the learner wrote it, without the trailing semicolon and blank space.</summary>
    public static string Statement(string sql) => (sql ?? "").Trim().TrimEnd(';').Trim();

    public async ValueTask DisposeAsync()
    {
        foreach (var dataSource in _dataSources)
        {
            await dataSource.DisposeAsync();
        }

        // Its own connection: the learner's code may have left the pooled ones in any state.
        var builder = new NpgsqlConnectionStringBuilder(_connectionString.ConnectionString) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        var cleanup = $"DROP SCHEMA IF EXISTS {Schema} CASCADE;" +
                      string.Concat(_roles.Select(role => $"DROP OWNED BY {role}; DROP ROLE {role};"));
        await using var command = new NpgsqlCommand(cleanup, connection);
        await command.ExecuteNonQueryAsync();
    }

    internal static NpgsqlCommand Command(NpgsqlDataSource dataSource, string sql, object?[] values)
    {
        var command = dataSource.CreateCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(Parameter(value));
        }

        return command;
    }

    private static NpgsqlParameter Parameter(object? value) => new() { Value = value ?? DBNull.Value };
}

/// <summary>What keeps a check from running at all on this server (not the learner's answer): said as the result.</summary>
public sealed class CheckCannotRunException(string message) : Exception(message);

