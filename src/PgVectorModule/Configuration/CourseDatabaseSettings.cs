using PgVectorModule.Problems;

namespace PgVectorModule.Configuration;

/// <summary>
/// The settings of the course database a lesson finds or starts by itself when DATABASE_URL is not set: the same names,
/// and the same defaults, as scripts/db.sh reads, so both make and reuse the same server. Kept as text and checked
/// when the starter reads them.
/// </summary>
public sealed record CourseDatabaseSettings
{
    public const string DefaultUser = "postgres";
    public const string DefaultDatabase = "agent_db";
    public const int DefaultPort = 5432;

    /// <summary>POSTGRES_USER: the superuser the cluster or container is made with.</summary>
    public string User { get; init; } = DefaultUser;

    /// <summary>POSTGRES_PASSWORD: its password; unset, one generated once into the state folder (mode 0600) and reused.</summary>
    public string? Password { get; init; }

    /// <summary>POSTGRES_DB: the database the lessons use, created on first use.</summary>
    public string Database { get; init; } = DefaultDatabase;

    /// <summary>POSTGRES_PORT: the first port a new cluster tries (the next free one is taken), and the port of the default URL.</summary>
    public string? Port { get; init; }

    /// <summary>POSTGRES_VERSION: the PostgreSQL major of a new cluster (unset: the newest installed with pgvector).</summary>
    public string? Version { get; init; }

    /// <summary>DB_MODE: auto (Docker, else installed programs), docker or local; env never starts anything.</summary>
    public string Mode { get; init; } = "auto";

    /// <summary>PGVECTOR_MODULE_STATE: the folder the cluster lives in (unset: the checkout's .pgdata, as scripts/db.sh).</summary>
    public string? StateFolder { get; init; }

    /// <summary>POSTGRES_PORT as a number (5432 when unset); throws <see cref="SetupException"/> when it is not one.</summary>
    public int FirstPort => OperationsSettings.Port("POSTGRES_PORT", Port) ?? DefaultPort;

    /// <summary>POSTGRES_VERSION as a major version, or null when unset; throws <see cref="SetupException"/> when it is not one.</summary>
    public int? Major => Version is null
        ? null
        : int.TryParse(Version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var major) && major is >= 10 and < 100
            ? major
            : throw new SetupException($"POSTGRES_VERSION must be a PostgreSQL major version such as 17 or 18, not '{Version}': fix it in the environment or .env, or unset it to use the newest installed.", ExitCodes.Failed);

    public static CourseDatabaseSettings From(Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        string? Value(string name) => lookup(name) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
        return new CourseDatabaseSettings
        {
            User = Value("POSTGRES_USER") ?? DefaultUser,
            Password = Value("POSTGRES_PASSWORD"),
            Database = Value("POSTGRES_DB") ?? DefaultDatabase,
            Port = Value("POSTGRES_PORT"),
            Version = Value("POSTGRES_VERSION"),
            Mode = Value("DB_MODE") ?? "auto",
            StateFolder = Value("PGVECTOR_MODULE_STATE"),
        };
    }
}
