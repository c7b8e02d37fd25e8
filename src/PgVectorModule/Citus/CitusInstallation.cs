using PgVectorModule.Configuration;
using PgVectorModule.Problems;
using PgVectorModule.Servers;

namespace PgVectorModule.Citus;

/// <summary>
/// A PostgreSQL whose programs can run Citus nodes: citus and pgvector installed for it. Citus has no Debian package;
/// scripts/db.sh citus build puts it into the PostgreSQL 18 it builds in the cache (from the vendored source or
/// CITUS_SOURCE), and CITUS_BINDIR names any other installation.
/// </summary>
/// <param name="BinDirectory">The folder of initdb, pg_ctl, postgres and pg_config.</param>
/// <param name="Version">What pg_config says, e.g. "PostgreSQL 18.6".</param>
public sealed record CitusInstallation(string BinDirectory, string Version)
{
    /// <summary>The one sentence a learner reads when no Citus can be found; the lesson skips its Citus part with it.</summary>
    public const string HowToGetIt =
        "Citus is not installed on this machine: scripts/db.sh citus build builds it once into PostgreSQL 18 (from the Citus source in shared/vendor/ beside the repository, or a Citus 14 source tarball or tree named by CITUS_SOURCE), " +
        "CITUS_BINDIR can name the bin folder of a PostgreSQL with citus and pgvector installed, and with Docker scripts/db.sh citus up starts the compose profile citus and prints the CITUS_URL to set.";

    /// <summary>
    /// CITUS_BINDIR when set (refused with one sentence when it is not such a folder); else the build cache's PostgreSQL
    /// builds that scripts/db.sh gave Citus, then the distribution's folders, newest first. Null when there is none.
    /// </summary>
    public static async Task<CitusInstallation?> FindAsync(OperationsSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.CitusBinDir is { } configured)
        {
            return await InspectAsync(configured, cancellationToken)
                ?? throw new SetupException(
                    $"CITUS_BINDIR is '{configured}', which is not the bin folder of a PostgreSQL with citus and pgvector installed (initdb, pg_ctl and pg_config there, citus.so and vector.control where pg_config says): fix it, or unset it to use the one scripts/db.sh citus build makes.",
                    ExitCodes.ToolMissing);
        }

        foreach (var candidate in Candidates(settings.BuildCache))
        {
            if (await InspectAsync(candidate, cancellationToken) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>Where scripts/db.sh builds: PGVECTOR_MODULE_CACHE, else /var/cache/pgvector-module as root, else the user's cache.</summary>
    public static string BuildCache(string? configured) =>
        configured ?? (LocalServers.IsRoot
            ? "/var/cache/pgvector-module"
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "pgvector-module"));

    private static IEnumerable<string> Candidates(string? cache)
    {
        var folder = BuildCache(cache);
        if (Directory.Exists(folder))
        {
            // postgresql-18.6 and the like, finished (.complete) and given Citus (.citus-complete), newest first.
            foreach (var build in Directory.GetDirectories(folder, "postgresql-*").OrderByDescending(Path.GetFileName, StringComparer.Ordinal))
            {
                if (File.Exists(Path.Combine(build, ".complete")) && File.Exists(Path.Combine(build, ".citus-complete")))
                {
                    yield return Path.Combine(build, "bin");
                }
            }
        }

        foreach (var major in new[] { 18, 17, 16 })
        {
            yield return $"/usr/lib/postgresql/{major}/bin";
            yield return $"/usr/pgsql-{major}/bin";
            yield return $"/opt/homebrew/opt/postgresql@{major}/bin";
        }
    }

    private static async Task<CitusInstallation?> InspectAsync(string bin, CancellationToken cancellationToken)
    {
        string[] programs = ["initdb", "pg_ctl", "postgres", "pg_config"];
        if (!programs.All(p => File.Exists(Path.Combine(bin, p))))
        {
            return null;
        }

        var config = await LocalServers.RunAsync(Path.Combine(bin, "pg_config"), ["--pkglibdir", "--sharedir", "--version"], asServerUser: false, password: null, cancellationToken);
        var lines = config.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (config.ExitCode != 0 || lines.Length < 3)
        {
            return null;
        }

        var (lib, share) = (lines[0], lines[1]);
        var installed = File.Exists(Path.Combine(lib, "citus.so"))
                        && File.Exists(Path.Combine(share, "extension", "citus.control"))
                        && File.Exists(Path.Combine(share, "extension", "vector.control"));
        return installed ? new CitusInstallation(bin, lines[2]) : null;
    }
}
