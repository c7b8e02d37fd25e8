using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace PgVectorModule.Data;

/// <summary>
/// Whose rooms a lesson or a check works in. On a class server many learners share one database: each gets schemas of
/// their own, named for them (<c>alice_lesson05</c>, <c>alice_check_0501_1a2b3c4d</c>), so they run side by side and
/// never see or reset each other's tables. The learner is the login role (current_user), or LEARNER when it is set; a
/// superuser without LEARNER (the owner of a machine of their own, the tests) keeps the plain names (<c>lesson05</c>).
/// </summary>
public sealed partial record Learner
{
    /// <summary>The setting that names the learner instead of the login role.</summary>
    public const string Variable = "LEARNER";

    /// <summary>The longest learner part of a schema name, so the longest room name stays within PostgreSQL's 63 bytes.</summary>
    public const int MaxNameLength = 40;

    private Learner(string? name, string role)
    {
        Name = name;
        Role = role;
    }

    /// <summary>
    /// The learner's part of each schema name: lower-case letters, digits and underscores, starting with a letter, so it
    /// is safe anywhere in SQL; null for a superuser without LEARNER, who works in the plain schemas.
    /// </summary>
    public string? Name { get; }

    /// <summary>The role the program logged in as.</summary>
    public string Role { get; }

    /// <summary>The schema for a room: <c>lesson05</c> becomes <c>alice_lesson05</c>.</summary>
    public string Schema(string room)
    {
        ArgumentNullException.ThrowIfNull(room);
        return Name is null ? room : $"{Name}_{room}";
    }

    /// <summary>The learner for a login on <paramref name="connectionString"/>; <paramref name="setting"/> is LEARNER's value.</summary>
    public static async Task<Learner> ResolveAsync(NpgsqlConnectionStringBuilder connectionString, string? setting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        // Unpooled, as the preflight's: one question at startup, and no idle connection left in the process-wide pool,
        // where it would outlive a server restart and hand the next caller with the same URL a dead session.
        var unpooled = new NpgsqlConnectionStringBuilder(connectionString.ConnectionString) { Pooling = false };
        await using var connection = new NpgsqlConnection(unpooled.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        return await ResolveAsync(connection, setting, cancellationToken);
    }

    /// <summary>The learner for the session of <paramref name="connection"/>.</summary>
    public static async Task<Learner> ResolveAsync(NpgsqlConnection connection, string? setting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        await using var command = new NpgsqlCommand("SELECT current_user::text, current_setting('is_superuser') = 'on'", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var role = reader.GetString(0);
        var superuser = reader.GetBoolean(1);
        return For(role, superuser, setting);
    }

    /// <summary>The rule itself: LEARNER when set, else the role, except that a superuser without LEARNER keeps the plain names.</summary>
    public static Learner For(string role, bool superuser, string? setting)
    {
        ArgumentNullException.ThrowIfNull(role);
        if (!string.IsNullOrWhiteSpace(setting))
        {
            return new Learner(SafeName(setting), role);
        }

        return new Learner(superuser ? null : SafeName(role), role);
    }

    /// <summary>
    /// The name of a role a lesson creates for one of its rooms. Roles belong to the whole server, not to a database
    /// or a schema, so the name carries both the room's schema and the database: <c>lesson07_reader_agent_db</c> for a
    /// superuser's run, <c>alice_lesson07_reader_agent_db</c> for Alice's, and two learners (or two databases) never
    /// share a role or drop each other's. A name over PostgreSQL's 63 bytes is cut and given eight hex digits of its
    /// hash, so cut names stay apart.
    /// </summary>
    /// <param name="schema">The room's schema (<see cref="Schema"/>), already safe in SQL.</param>
    /// <param name="purpose">What the role is for: <c>reader</c>, <c>app</c>.</param>
    /// <param name="database">The database's name, reduced here to what an unquoted identifier may hold.</param>
    public static string RoleName(string schema, string purpose, string database)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(purpose);
        ArgumentNullException.ThrowIfNull(database);
        var name = $"{schema}_{purpose}_{NotPlain().Replace(database.ToLowerInvariant(), "_")}";
        const int limit = 63;
        if (name.Length <= limit)
        {
            return name;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)))[..8];
        return $"{name[..(limit - hash.Length - 1)]}_{hash}";
    }

    /// <summary>
    /// A name as a schema may carry it. A plain lower-case name stays as it is (<c>alice</c>); any other is reduced to
    /// letters, digits and underscores and given eight hex digits of its hash (<c>Ann</c> becomes <c>ann_</c> plus a hash), so
    /// two names that read alike ("Ann" and "ann", "a.b" and "a_b") never share schemas, and nothing in a name can
    /// reach the SQL it is written into.
    /// </summary>
    public static string SafeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var trimmed = name.Trim();
        if (Plain().IsMatch(trimmed) && trimmed.Length <= MaxNameLength)
        {
            return trimmed;
        }

        var reduced = NotPlain().Replace(trimmed.ToLowerInvariant(), "_").Trim('_');
        if (reduced.Length == 0 || !char.IsAsciiLetterLower(reduced[0]))
        {
            reduced = "learner_" + reduced;
        }

        const int hashLength = 8;
        reduced = reduced[..Math.Min(reduced.Length, MaxNameLength - hashLength - 1)].TrimEnd('_');
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(trimmed)))[..hashLength];
        return $"{reduced}_{hash}";
    }

    [GeneratedRegex("^[a-z][a-z0-9_]*$")]
    private static partial Regex Plain();

    [GeneratedRegex("[^a-z0-9]+")]
    private static partial Regex NotPlain();
}
