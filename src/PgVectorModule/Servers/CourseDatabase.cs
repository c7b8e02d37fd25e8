using System.Net.Sockets;
using PgVectorModule.Configuration;
using PgVectorModule.Problems;

namespace PgVectorModule.Servers;

/// <summary>
/// Finds the course database when DATABASE_URL is not set, the way the tests find theirs, so <c>dotnet run</c> needs no
/// script first on any system: the private cluster of the state folder when it runs; else whatever answers at the
/// default URL; else a pgvector container through Testcontainers when a Docker engine answers; else a private cluster
/// made from the installed PostgreSQL programs (with pgvector 0.8 or newer); else one sentence on what to install on this system.
/// An explicit DATABASE_URL (environment or .env) is never replaced: it is used, or refused by the preflight.
/// DB_MODE=local skips Docker, DB_MODE=docker uses nothing else, DB_MODE=env starts nothing.
/// </summary>
public static class CourseDatabase
{
    /// <summary>The settings pointing at the server found or started, and the line saying which (null: the settings as they were).</summary>
    public static async Task<(ModuleSettings Settings, CourseServer? Server)> FindAsync(ModuleSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var course = settings.CourseDatabase;
        if (settings.DatabaseUrlIsExplicit || course.Mode == "env")
        {
            return (settings, null);
        }

        if (course.Mode is not ("auto" or "docker" or "local"))
        {
            throw new SetupException($"DB_MODE must be auto, docker, local or env, not '{course.Mode}': fix it in the environment or .env, or unset it.", ExitCodes.Failed);
        }

        var state = await CourseCluster.StateFolderAsync(course, cancellationToken);
        var server = await CourseCluster.FindRunningAsync(state, course, cancellationToken);
        if (server is null && course.Mode == "auto" && await AnswersAsync(settings.ConnectionString(), cancellationToken))
        {
            // Something listens at the default URL (Homebrew's own server, scripts/db.sh's compose service): the preflight
            // checks it as before, with the password scripts/db.sh generated into the state folder when there is one (it
            // hands compose the same), else POSTGRES_PASSWORD or the old default.
            return course.Password is null && await CourseCluster.ReadPasswordAsync(state, cancellationToken) is { } generated
                ? (settings with { DatabaseUrl = new NpgsqlConnectionStringBuilder(settings.ConnectionString().ConnectionString) { Password = generated }.ConnectionString }, null)
                : (settings, null);
        }

        server ??= await StartAsync(settings, course, state, cancellationToken);
        return (settings with { DatabaseUrl = server.Url, DatabaseUrlSource = server.Source }, server);
    }

    private static async Task<CourseServer> StartAsync(ModuleSettings settings, CourseDatabaseSettings course, string state, CancellationToken cancellationToken)
    {
        var where = $"{settings.ConnectionString().Host}:{settings.ConnectionString().Port}";
        if (course.Mode != "local")
        {
            // The container is given the state folder's generated password too, as scripts/db.sh gives compose.
            async Task<string> Password() =>
                course.Password ?? await CourseCluster.ReadPasswordAsync(state, cancellationToken) ?? await CourseCluster.NewPasswordAsync(state, cancellationToken);
            if (await CourseContainer.StartAsync(course, Password, cancellationToken) is { } container)
            {
                return container;
            }

            if (course.Mode == "docker")
            {
                throw new SetupException("DB_MODE is docker, and no Docker engine answers: start Docker (Docker Desktop on Windows and macOS), or unset DB_MODE to use the installed PostgreSQL.", ExitCodes.DatabaseUnavailable);
            }
        }

        var dockerTried = course.Mode == "local" ? "Docker was not tried (DB_MODE=local)" : "no Docker engine answers";
        var os = PostgresInstallation.CurrentOs;
        if (OperatingSystem.IsWindows())
        {
            // The private cluster is run the Unix way (a postgres user under root, pg_ctl in the background): not on Windows.
            throw new SetupException(PostgresInstallation.InstallSentence(os, $"No PostgreSQL answers at {where} and none could be started: {dockerTried}"), ExitCodes.DatabaseUnavailable);
        }

        var made = File.Exists(Path.Combine(state, "data", "PG_VERSION"))
            ? int.Parse(await File.ReadAllTextAsync(Path.Combine(state, "data", "PG_VERSION"), cancellationToken), System.Globalization.CultureInfo.InvariantCulture)
            : (int?)null;
        var major = made ?? course.Major;
        var installation = await PostgresInstallation.FindAsync(settings.Operations.PgBinDir, major, settings.Operations.BuildCache, cancellationToken);
        if (installation is null)
        {
            var looked = settings.Operations.PgBinDir is { } pgBinDir
                ? $"PG_BINDIR ({pgBinDir}) holds no PostgreSQL{(major is null ? "" : $" {major}")} server programs"
                : $"no PostgreSQL{(major is null ? "" : $" {major}")} server programs are installed in the usual places ({PostgresInstallation.UsualPlaces})";
            throw new SetupException(PostgresInstallation.InstallSentence(os, $"No PostgreSQL answers at {where} and none could be started: {dockerTried}, and {looked}"), ExitCodes.DatabaseUnavailable);
        }

        if (installation.PgVectorProblem(os, $"No PostgreSQL answers at {where}") is { } problem)
        {
            throw new SetupException(problem, ExitCodes.ExtensionMissing);
        }

        return await CourseCluster.StartAsync(installation, state, course, cancellationToken);
    }

    /// <summary>Whether something accepts connections at the URL's host and port (within 2 seconds).</summary>
    private static async Task<bool> AnswersAsync(NpgsqlConnectionStringBuilder connectionString, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(connectionString.Host ?? "localhost", connectionString.Port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }
}
