using PgVectorModule.Problems;

namespace PgVectorModule.Data;

/// <param name="Schema">The schema's name (<c>alice_lesson05</c>).</param>
/// <param name="Learner">The learner part of its name (<c>alice</c>).</param>
/// <param name="Room">What it is for: a lesson's schema (<c>lesson05</c>) or a check's (<c>check_0501_1a2b3c4d</c>).</param>
/// <param name="Owner">The role that owns it.</param>
/// <param name="Tables">How many tables it holds.</param>
/// <param name="Bytes">The size of its tables and indexes.</param>
public sealed record LearnerSchema(string Schema, string Learner, string Room, string Owner, long Tables, long Bytes);

/// <summary>
/// What an instructor needs on a class server: the learners' schemas (<see cref="Learner"/>) listed, and reset (dropped:
/// the next lesson run makes them again) for one role or for everyone. Only schemas named as learners' rooms are ever
/// touched; the plain lesson schemas and anything else in the database are left alone. A schema whose lesson is running
/// right now (its advisory lock is held) is skipped and named, so no learner's run loses its tables halfway.
/// </summary>
public static class LearnerSchemas
{
    /// <summary>The advisory lock key of a lesson's schema (parameter @schema), so no other program's lock collides by chance.</summary>
    public const string LockKey = "hashtext('pgvector-module:' || @schema)";

    /// <summary>A learner's room: a learner part, then a lesson's schema name or a check's.</summary>
    private const string RoomPattern = "^([a-z][a-z0-9_]*)_(lesson[0-9]{2}|check_[0-9]{4}_[0-9a-f]{8})$";

    /// <summary>Every learner's schema in the database, by learner and name.</summary>
    public static async Task<IReadOnlyList<LearnerSchema>> ListAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand(
            $"""
            SELECT n.nspname::text, m[1], m[2], pg_get_userbyid(n.nspowner)::text,
                   (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')),
                   (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm'))
            FROM pg_namespace n, regexp_match(n.nspname, '{RoomPattern}') AS m
            WHERE m IS NOT NULL
            ORDER BY m[1], n.nspname
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var schemas = new List<LearnerSchema>();
        while (await reader.ReadAsync(cancellationToken))
        {
            schemas.Add(new LearnerSchema(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4), reader.GetInt64(5)));
        }

        return schemas;
    }

    /// <summary>
    /// Drops the learners' schemas that <paramref name="owner"/> owns (every learner's when null). Returns the schemas
    /// dropped and those skipped because a lesson is running in them. Throws <see cref="SetupException"/> when no role
    /// has that name.
    /// </summary>
    public static async Task<(IReadOnlyList<string> Dropped, IReadOnlyList<string> Busy)> ResetAsync(NpgsqlDataSource dataSource, string? owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (owner is not null)
        {
            await using var exists = new NpgsqlCommand("SELECT count(*) FROM pg_roles WHERE rolname = @owner", connection);
            exists.Parameters.AddWithValue("owner", owner);
            if (await exists.ExecuteScalarAsync(cancellationToken) is 0L)
            {
                throw new SetupException($"No role named '{owner}' on this server: the learners' roles are the owners that 'list' shows.", ExitCodes.InvalidInput);
            }
        }

        var schemas = (await ListAsync(dataSource, cancellationToken)).Where(s => owner is null || s.Owner == owner).Select(s => s.Schema).ToList();
        var dropped = new List<string>();
        var busy = new List<string>();
        foreach (var schema in schemas)
        {
            // The lesson's own lock, taken for the drop: a run in progress keeps it, and the drop waits for no one.
            await using var take = new NpgsqlCommand($"SELECT pg_try_advisory_lock({LockKey})", connection);
            take.Parameters.AddWithValue("schema", schema);
            if (await take.ExecuteScalarAsync(cancellationToken) is not true)
            {
                busy.Add(schema);
                continue;
            }

            try
            {
                // The name matched the room pattern (letters, digits, underscores), and is quoted all the same.
                await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {DatabaseProblems.Identifier(schema)} CASCADE", connection);
                await drop.ExecuteNonQueryAsync(cancellationToken);
                dropped.Add(schema);
            }
            finally
            {
                await using var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({LockKey})", connection);
                release.Parameters.AddWithValue("schema", schema);
                await release.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }

        return (dropped, busy);
    }
}
