namespace PgVectorModule.Problems;

/// <summary>Exit codes shared by every lesson and tool, so scripts can tell the failures apart.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>A setting in the environment or .env cannot be used (or .env itself cannot be read); also any unexpected failure.</summary>
    public const int Failed = 1;
    /// <summary>The database does not answer (not running, starting up, shutting down, unreachable), or DATABASE_URL cannot be parsed.</summary>
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
    /// <summary>The role in DATABASE_URL lacks a privilege a step needs (SQLSTATE 42501): creating the schema or the
    /// vector extension, or using tables and schemas another role owns.</summary>
    public const int PermissionDenied = 10;
    /// <summary>The server has no connection slot left (53300: max_connections reached).</summary>
    public const int TooManyConnections = 11;
    /// <summary>The server ran out of a resource: disk space (53100), memory (53200) or a configured limit (53000, 53400).</summary>
    public const int ServerOutOfResources = 12;
    /// <summary>The server accepts only reads on this connection (25006): a standby, or default_transaction_read_only on.</summary>
    public const int ReadOnlyServer = 13;
    /// <summary>The server stopped a statement: statement_timeout or lock_timeout ran out, an administrator cancelled it
    /// (57014, 55P03), or it lost a deadlock or serialization conflict with another session (40P01, 40001).</summary>
    public const int StatementStopped = 14;
    /// <summary>A file or folder a command reads or writes cannot be used: no permission, or no space left on the disk.</summary>
    public const int FileUnavailable = 15;
    /// <summary>A program a lesson runs on this machine is missing: PostgreSQL's server programs of the server's version, pg_dump, pgbouncer.</summary>
    public const int ToolMissing = 16;
    /// <summary>A port a lesson was told to use (LESSON08_STANDBY_PORT, LESSON08_PGBOUNCER_PORT) is taken by another program.</summary>
    public const int PortInUse = 17;
    /// <summary>A server a lesson starts on this machine (a standby, pgBouncer, a recovery cluster) did not start or catch up.</summary>
    public const int LocalServerFailed = 18;
    /// <summary>A dump did not restore: pg_restore stopped at its first error and the restored database was dropped.</summary>
    public const int RestoreFailed = 19;
    /// <summary>The local embedding model cannot run on this machine: ONNX Runtime's native library is missing or cannot be loaded
    /// (an Intel Mac, Windows without the Visual C++ runtime, a build that lost the file).</summary>
    public const int LocalModelUnavailable = 20;
    /// <summary>The command line cannot work: an argument the program does not take, or an option without its value (sysexits' EX_USAGE).</summary>
    public const int Usage = 64;
    /// <summary>Stopped by the user or the system: Ctrl+C (SIGINT), SIGTERM or SIGHUP; the run unwound and stopped what it started.</summary>
    public const int Cancelled = 130;
}
