namespace PgVectorModule.Configuration;

/// <summary>
/// The module's settings. Each comes from an environment variable, else from a <c>.env</c> file (found in the
/// current folder or the nearest parent), else from the default written here and in <c>.env.example</c>.
/// Credentials never live in code: the defaults are those of the local development database.
/// </summary>
public sealed record ModuleSettings
{
    public const string DefaultDatabaseUrl = "postgresql://postgres:postgres@localhost:5432/agent_db";

    /// <summary>DATABASE_URL as given (URI or keyword form).</summary>
    public required string DatabaseUrl { get; init; }

    /// <summary>Where the value came from: "environment", ".env" or "default" (shown by the preflight).</summary>
    public string DatabaseUrlSource { get; init; } = "default";

    /// <summary>The embedding provider and model (EMBEDDING_PROVIDER, OPENAI_*).</summary>
    public Embeddings.EmbeddingSettings Embeddings { get; init; } = new();

    /// <summary>The servers lessons 08 and 09 start or use (STANDBY_URL, PG_BINDIR, PGBOUNCER, CITUS_URL...).</summary>
    public OperationsSettings Operations { get; init; } = new();

    /// <summary>Reads the settings from a lookup (the environment merged with .env, or a test's dictionary).</summary>
    public static ModuleSettings From(Func<string, string?> lookup, string source = "environment")
    {
        ArgumentNullException.ThrowIfNull(lookup);
        var url = lookup("DATABASE_URL");
        return new ModuleSettings
        {
            DatabaseUrl = string.IsNullOrWhiteSpace(url) ? DefaultDatabaseUrl : url.Trim(),
            DatabaseUrlSource = string.IsNullOrWhiteSpace(url) ? "default" : source,
            Embeddings = PgVectorModule.Embeddings.EmbeddingSettings.From(lookup),
            Operations = OperationsSettings.From(lookup),
        };
    }

    /// <summary>The environment first, then the nearest .env file, then the defaults.</summary>
    public static ModuleSettings Load()
    {
        var file = DotEnvFile.Read();
        var environment = Environment.GetEnvironmentVariable("DATABASE_URL");
        return From(
            name => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : file.GetValueOrDefault(name),
            source: string.IsNullOrWhiteSpace(environment) ? ".env" : "environment");
    }

    /// <summary>The Npgsql connection string for <see cref="DatabaseUrl"/>; throws <see cref="SetupException"/> when it cannot be parsed.</summary>
    public NpgsqlConnectionStringBuilder ConnectionString() => Configuration.DatabaseUrl.Parse(DatabaseUrl);
}

/// <summary>Reads <c>.env</c> without writing it into the process environment, so the real environment always wins.</summary>
internal static class DotEnvFile
{
    public static Dictionary<string, string> Read(string? startDirectory = null)
    {
        var path = Find(startDirectory ?? Directory.GetCurrentDirectory());
        if (path is null)
        {
            return [];
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var pair in DotNetEnv.Env.NoEnvVars().Load(path))
            {
                values[pair.Key] = pair.Value;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // DotNetEnv's parser reports a malformed line with its own exception type (Sprache's), which callers cannot name.
            throw new SetupException(
                $"The settings file {path} cannot be read: {e.Message.Split('\n')[0].Trim()}. Each line must be NAME=value or a # comment " +
                "(see .env.example); fix or remove that line, or delete the file to use the defaults.",
                ExitCodes.Failed, e);
        }

        return values;
    }

    private static string? Find(string directory)
    {
        for (var dir = new DirectoryInfo(directory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".env");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
