using Microsoft.Extensions.Configuration;
using PgVectorModule.Configuration;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;

namespace PgVectorModule;

/// <summary>
/// The module's settings, bound once from <see cref="ModuleConfiguration"/> (the environment, else the nearest
/// <c>.env</c>), else from the default written here and in <c>.env.example</c>. Credentials never live in code: the
/// defaults are those of the local development database. It sits above Configuration and Embeddings, whose settings
/// it gathers, so neither namespace needs the other.
/// </summary>
public sealed record ModuleSettings
{
    public const string DefaultDatabaseUrl = "postgresql://postgres:postgres@localhost:5432/agent_db";

    /// <summary>Where a value that came from no file and no variable came from.</summary>
    public const string FromDefault = "default";

    private readonly string _databaseUrl = DefaultDatabaseUrl;
    private readonly string? _connectionString;
    private readonly SetupException? _databaseUrlProblem;

    /// <summary>DATABASE_URL as given (URI or keyword form); parsed once, when it is set.</summary>
    public required string DatabaseUrl
    {
        get => _databaseUrl;
        init
        {
            _databaseUrl = value;
            try
            {
                _connectionString = Configuration.DatabaseUrl.Parse(value).ConnectionString;
                _databaseUrlProblem = null;
            }
            catch (SetupException problem)
            {
                // Kept, not thrown: a lesson names its database in its header before the preflight reports the problem.
                _connectionString = null;
                _databaseUrlProblem = problem;
            }
        }
    }

    /// <summary>Where the value came from: "environment", ".env" or "default" (shown by the preflight).</summary>
    public string DatabaseUrlSource { get; init; } = FromDefault;

    /// <summary>The embedding provider and model (EMBEDDING_PROVIDER, OPENAI_*, LOCAL_EMBEDDING_MODEL...).</summary>
    public EmbeddingSettings Embeddings { get; init; } = new();

    /// <summary>
    /// LEARNER: whose schemas the lessons and checks work in (<see cref="Data.Learner"/>); null means the login role's,
    /// or the plain schema names for a superuser.
    /// </summary>
    public string? Learner { get; init; }

    /// <summary>The servers lessons 08 and 09 start or use (STANDBY_URL, PG_BINDIR, PGBOUNCER, CITUS_URL...).</summary>
    public OperationsSettings Operations { get; init; } = new();

    /// <summary>How lesson 10 re-ranks and answers (RERANK_URL, OPENAI_CHAT_MODEL...).</summary>
    public PgVectorModule.Answers.AnswerSettings Answers { get; init; } = new();

    /// <summary>The course database a lesson finds or starts when DATABASE_URL is not set (POSTGRES_*, DB_MODE, PGVECTOR_MODULE_STATE).</summary>
    public CourseDatabaseSettings CourseDatabase { get; init; } = new();

    /// <summary>Whether DATABASE_URL was set (environment or .env): then that server is used, or refused, never replaced.</summary>
    public bool DatabaseUrlIsExplicit => DatabaseUrlSource != FromDefault;

    /// <summary>
    /// A copy of DATABASE_URL's Npgsql connection string, for the caller to change (a timeout, a search path);
    /// throws <see cref="SetupException"/> when DATABASE_URL cannot be parsed.
    /// </summary>
    public NpgsqlConnectionStringBuilder ConnectionString() =>
        _databaseUrlProblem is not null ? throw _databaseUrlProblem : new NpgsqlConnectionStringBuilder(_connectionString);

    /// <summary>
    /// The database as a failure is explained against it: DATABASE_URL's connection string and where it came from;
    /// throws <see cref="SetupException"/> when DATABASE_URL cannot be parsed.
    /// </summary>
    public DatabaseTarget DatabaseTarget() => new(
        ConnectionString(),
        DatabaseUrlSource == FromDefault ? "the default DATABASE_URL" : $"DATABASE_URL from the {DatabaseUrlSource}");

    /// <summary>The environment first, then the nearest .env file, then the defaults.</summary>
    public static ModuleSettings Load() => From(ModuleConfiguration.Build());

    /// <summary>Binds a configuration built by <see cref="ModuleConfiguration.Build"/>.</summary>
    public static ModuleSettings From(IConfigurationRoot configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return From(name => ModuleConfiguration.Get(configuration, name),
            ModuleConfiguration.SourceOf(configuration, "DATABASE_URL") ?? FromDefault);
    }

    /// <summary>Binds a lookup of names to values (a test's dictionary); <paramref name="source"/> is where DATABASE_URL came from.</summary>
    public static ModuleSettings From(Func<string, string?> lookup, string source = ModuleConfiguration.FromEnvironment)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        var url = lookup("DATABASE_URL");
        var courseDatabase = CourseDatabaseSettings.From(lookup);
        return new ModuleSettings
        {
            DatabaseUrl = string.IsNullOrWhiteSpace(url) ? DefaultUrl(courseDatabase) : url.Trim(),
            DatabaseUrlSource = string.IsNullOrWhiteSpace(url) ? FromDefault : source,
            Embeddings = EmbeddingSettings.From(lookup),
            Operations = OperationsSettings.From(lookup),
            Answers = PgVectorModule.Answers.AnswerSettings.From(lookup),
            Learner = lookup(Data.Learner.Variable) is { } learner && !string.IsNullOrWhiteSpace(learner) ? learner.Trim() : null,
            CourseDatabase = courseDatabase,
        };
    }

    /// <summary>
    /// The URL used when DATABASE_URL is not set: localhost with scripts/db.sh's POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_PORT
    /// and POSTGRES_DB; with none of them set, <see cref="DefaultDatabaseUrl"/>.
    /// </summary>
    private static string DefaultUrl(CourseDatabaseSettings course)
    {
        if (course is { User: CourseDatabaseSettings.DefaultUser, Password: null, Port: null, Database: CourseDatabaseSettings.DefaultDatabase })
        {
            return DefaultDatabaseUrl;
        }

        // A port that is not a number is reported by the starter, which reads the same setting.
        var port = int.TryParse(course.Port, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : CourseDatabaseSettings.DefaultPort;
        return $"postgresql://{Uri.EscapeDataString(course.User)}:{Uri.EscapeDataString(course.Password ?? "postgres")}@localhost:{port}/{Uri.EscapeDataString(course.Database)}";
    }
}
