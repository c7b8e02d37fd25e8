using System.Globalization;
using PgVectorModule.Problems;

namespace PgVectorModule.Configuration;

/// <summary>
/// Settings of the lessons that run servers on this machine (a standby, pgBouncer, a recovery cluster, Citus nodes) or use ones
/// the learner started. Kept as text and checked when a lesson reads them, so a bad value stops only that lesson.
/// </summary>
public sealed record OperationsSettings
{
    /// <summary>STANDBY_URL: a hot standby of DATABASE_URL's server to use instead of making one.</summary>
    public string? StandbyUrl { get; init; }

    /// <summary>LESSON08_STANDBY_PORT: the port of the standby the lesson makes (unset: a free one).</summary>
    public string? StandbyPort { get; init; }

    /// <summary>LESSON08_PGBOUNCER_PORT: the port of the pgBouncer the lesson starts (unset: a free one).</summary>
    public string? PgBouncerPort { get; init; }

    /// <summary>PG_BINDIR: the folder holding pg_basebackup, pg_ctl, initdb, pg_dump... (unset: searched for).</summary>
    public string? PgBinDir { get; init; }

    /// <summary>PGBOUNCER: the pgbouncer program (unset: searched for on PATH and in /usr/sbin).</summary>
    public string? PgBouncer { get; init; }

    /// <summary>CITUS_URL: a Citus coordinator to use instead of starting one (scripts/db.sh citus up prints it).</summary>
    public string? CitusUrl { get; init; }

    /// <summary>CITUS_BINDIR: the bin folder of a PostgreSQL with citus and pgvector installed (unset: the build cache, then the usual places).</summary>
    public string? CitusBinDir { get; init; }

    /// <summary>PGVECTOR_MODULE_CACHE: where scripts/db.sh builds PostgreSQL 18 and Citus (unset: /var/cache/pgvector-module as root, else ~/.cache/pgvector-module).</summary>
    public string? BuildCache { get; init; }

    public static OperationsSettings From(Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        string? Value(string name) => lookup(name) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
        return new OperationsSettings
        {
            StandbyUrl = Value("STANDBY_URL"),
            StandbyPort = Value("LESSON08_STANDBY_PORT"),
            PgBouncerPort = Value("LESSON08_PGBOUNCER_PORT"),
            PgBinDir = Value("PG_BINDIR"),
            PgBouncer = Value("PGBOUNCER"),
            CitusUrl = Value("CITUS_URL"),
            CitusBinDir = Value("CITUS_BINDIR"),
            BuildCache = Value("PGVECTOR_MODULE_CACHE"),
        };
    }

    /// <summary>A port setting as a number; throws <see cref="SetupException"/> when it is not one.</summary>
    public static int? Port(string name, string? value)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (value is null)
        {
            return null;
        }

        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new SetupException($"{name} must be a port number from 1 to 65535, not '{value}': fix it in the environment or .env, or unset it to let the lesson pick a free port.", ExitCodes.InvalidInput);
    }
}
