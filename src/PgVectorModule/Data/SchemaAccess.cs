using PgVectorModule.Problems;

namespace PgVectorModule.Data;

/// <summary>
/// Gives a lesson (or a bench command) its own schema with whatever rights its role has. Class servers and managed
/// services often hand out roles that may not create schemas; an administrator then makes one for the role, and the
/// program works in it instead of failing on CREATE SCHEMA. A schema that exists but belongs to another role is
/// refused up front, in one sentence, before anything in it is touched.
/// </summary>
public static class SchemaAccess
{
    /// <summary>
    /// Creates <paramref name="schema"/> when it is missing, or checks that the role may work in it. Returns a note
    /// for the user when a step was skipped for want of a right (null when nothing was), and throws
    /// <see cref="SetupException"/> with the fix when the role cannot work there at all.
    /// </summary>
    public static async Task<string?> EnsureAsync(NpgsqlDataSource dataSource, string schema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(schema);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            """
            SELECT current_user::text, current_database()::text, has_database_privilege(current_database(), 'CREATE'),
                   n.nspowner::regrole::text, n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE') AND has_schema_privilege(n.oid, 'CREATE')
            FROM (SELECT) AS one LEFT JOIN pg_namespace n ON n.nspname = @schema
            """, connection);
        command.Parameters.AddWithValue("schema", schema);
        string role, database, where = $"{connection.Host}:{connection.Port}";
        bool mayCreateSchemas, mayWorkInIt;
        string? owner;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            role = DatabaseProblems.Identifier(reader.GetString(0));
            database = DatabaseProblems.Identifier(reader.GetString(1));
            mayCreateSchemas = reader.GetBoolean(2);
            owner = await reader.IsDBNullAsync(3, cancellationToken) ? null : reader.GetString(3);
            mayWorkInIt = reader.GetBoolean(4);
        }

        if (owner is null)
        {
            // The schema name is the program's own constant, never user input.
            await using var create = new NpgsqlCommand($"CREATE SCHEMA IF NOT EXISTS {schema}", connection);
            try
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                throw DatabaseProblems.SchemaDenied(schema, role, database, where, e.MessageText, e);
            }

            return null;
        }

        if (!mayWorkInIt)
        {
            throw new SetupException(
                $"Schema {schema} in database {database} at {where} belongs to role {owner}, and role '{role}' may not create tables in it: " +
                $"run this as {owner}, or have {owner} drop it (DROP SCHEMA {schema} CASCADE) " +
                (mayCreateSchemas
                    ? "so this role makes its own."
                    : $"and an administrator make one for this role (CREATE SCHEMA {schema} AUTHORIZATION {role})."),
                ExitCodes.PermissionDenied);
        }

        return mayCreateSchemas
            ? null
            : $"Role '{role}' may not create schemas in {database}; it works in schema {schema}, which it may use, so CREATE SCHEMA was skipped.";
    }
}
