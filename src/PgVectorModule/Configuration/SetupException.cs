namespace PgVectorModule.Configuration;

/// <summary>
/// A problem the user can fix (no database, a bad URL, a missing extension...). Lessons print
/// <see cref="Exception.Message"/> as one paragraph, without a stack trace, and exit with <see cref="ExitCode"/>.
/// </summary>
public sealed class SetupException(string message, int exitCode, Exception? inner = null)
    : Exception(message, inner)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Exit codes shared by every lesson and tool, so scripts can tell the failures apart.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Failed = 1;
    /// <summary>The database does not answer, or DATABASE_URL cannot be parsed.</summary>
    public const int DatabaseUnavailable = 2;
    /// <summary>The server answered but refused the user name or password.</summary>
    public const int AuthenticationFailed = 3;
    /// <summary>The server answered but the database named in DATABASE_URL does not exist.</summary>
    public const int DatabaseMissing = 4;
    /// <summary>The server has no pgvector extension to create.</summary>
    public const int ExtensionMissing = 5;
    /// <summary>Stored vectors and the configured embedding model (or dimension) do not match.</summary>
    public const int EmbeddingMismatch = 6;
    /// <summary>The embedding provider refused the request (a bad API key, say) or could not be reached.</summary>
    public const int EmbeddingProviderFailed = 7;
    /// <summary>The user's input (a search query, say) cannot be used.</summary>
    public const int InvalidInput = 8;
    /// <summary>The SSL that DATABASE_URL's sslmode asks for cannot be had: the server offers none, or its certificate is refused.</summary>
    public const int SslFailed = 9;
    /// <summary>A program a lesson runs on this machine is missing: PostgreSQL's server programs of the server's version, pg_dump, pgbouncer.</summary>
    public const int ToolMissing = 10;
    /// <summary>A port a lesson was told to use (LESSON08_STANDBY_PORT, LESSON08_PGBOUNCER_PORT) is taken by another program.</summary>
    public const int PortInUse = 11;
    /// <summary>A server a lesson starts on this machine (a standby, pgBouncer, a recovery cluster) did not start or catch up.</summary>
    public const int LocalServerFailed = 12;
    /// <summary>A dump did not restore: pg_restore stopped at its first error and the restored database was dropped.</summary>
    public const int RestoreFailed = 13;
    /// <summary>The command line cannot work: an argument the program does not take, or an option without its value (sysexits' EX_USAGE).</summary>
    public const int Usage = 64;
    /// <summary>Ctrl+C.</summary>
    public const int Cancelled = 130;
}
