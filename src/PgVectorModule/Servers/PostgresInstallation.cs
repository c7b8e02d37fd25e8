using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace PgVectorModule.Servers;

/// <summary>
/// PostgreSQL's server programs installed on this machine, found where scripts/db.sh finds them: PG_BINDIR when it is
/// set (and then only there), else the distribution's <c>/usr/lib/postgresql/N/bin</c> (newest first), the build cache
/// of POSTGRES_VERSION, Homebrew's keg-only <c>PREFIX/opt/postgresql@N/bin</c> (not on PATH), the PostgreSQL.org
/// packages' folders (<c>/usr/pgsql-N/bin</c>, <c>/Library/PostgreSQL/N/bin</c>, Postgres.app), and
/// <c>pg_config --bindir</c> of the pg_config on PATH. The lesson host's private cluster, lesson 08's servers and the
/// tests' throwaway clusters all take their programs from here.
/// </summary>
/// <param name="BinFolder">The folder of initdb, pg_ctl, postgres and pg_config.</param>
/// <param name="Major">Its PostgreSQL major version.</param>
/// <param name="PgVectorVersion">The pgvector version installed for it (default_version in its extension folder's
/// vector.control), or null when there is none.</param>
public sealed partial record PostgresInstallation(string BinFolder, int Major, string? PgVectorVersion)
{
    /// <summary>The oldest pgvector the course runs on: lesson 05 teaches iterative index scans, new in 0.8.0.</summary>
    public static readonly Version MinimumPgVector = new(0, 8, 0);

    /// <summary>Where <see cref="FindAsync"/> looks when PG_BINDIR is not set, for messages.</summary>
    public const string UsualPlaces = "/usr/lib/postgresql/N/bin, the build cache of scripts/db.sh, Homebrew's opt/postgresql@N/bin, /usr/pgsql-N/bin, /Library/PostgreSQL/N/bin, Postgres.app, pg_config --bindir";

    private static readonly string[] Programs = ["initdb", "pg_ctl", "postgres", "pg_config"];

    /// <summary>Whether pgvector is installed for these programs, of any version.</summary>
    public bool PgVector => PgVectorVersion is not null;

    /// <summary>Whether the pgvector installed is one the course runs on (<see cref="MinimumPgVector"/> or newer).</summary>
    public bool PgVectorIsCurrent => ParseVersion(PgVectorVersion) is { } version && version >= MinimumPgVector;

    /// <summary>
    /// The installation a new cluster is made with: of <paramref name="major"/> when given (a cluster's own major, or
    /// POSTGRES_VERSION), the first one whose pgvector is current, else the first with an older pgvector, else the
    /// first one found; null when there is none.
    /// </summary>
    public static async Task<PostgresInstallation?> FindAsync(string? pgBinDir, int? major, string? buildCache, CancellationToken cancellationToken)
    {
        PostgresInstallation? withOldPgVector = null;
        PostgresInstallation? withoutPgVector = null;
        foreach (var folder in await CandidatesAsync(pgBinDir, major, buildCache, cancellationToken))
        {
            if (await ReadAsync(folder, cancellationToken) is not { } installation || (major is not null && installation.Major != major))
            {
                continue;
            }

            if (installation.PgVectorIsCurrent)
            {
                return installation;
            }

            if (installation.PgVector)
            {
                withOldPgVector ??= installation;
            }
            else
            {
                withoutPgVector ??= installation;
            }
        }

        return withOldPgVector ?? withoutPgVector;
    }

    /// <summary>
    /// Why a cluster of these programs cannot serve the course, as one sentence after <paramref name="what"/> with the
    /// fix on <paramref name="os"/>: no pgvector, or one older than <see cref="MinimumPgVector"/>; null when it can.
    /// </summary>
    public string? PgVectorProblem(OSPlatform os, string what)
    {
        if (PgVectorIsCurrent)
        {
            return null;
        }

        var problem = PgVectorVersion is null
            ? $"the PostgreSQL {Major} found in {BinFolder} has no pgvector extension to start a cluster with: install it with"
            : $"the PostgreSQL {Major} found in {BinFolder} has pgvector {PgVectorVersion}, and the course needs {MinimumPgVector} or newer (lesson 05's iterative index scans): install a newer one with";
        return $"{what}, and {problem} {PgVectorFix(os, Major)}; or set DATABASE_URL to a server with pgvector {MinimumPgVector} or newer.";
    }

    /// <summary>Where to look, in order; PG_BINDIR alone when it is set.</summary>
    public static async Task<IReadOnlyList<string>> CandidatesAsync(string? pgBinDir, int? major, string? buildCache, CancellationToken cancellationToken)
    {
        if (pgBinDir is not null)
        {
            return [pgBinDir];
        }

        var folders = new List<string>();
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            folders.AddRange(Directory.EnumerateDirectories("/usr/lib/postgresql")
                .Select(d => (Folder: Path.Combine(d, "bin"), Major: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0))
                .Where(d => d.Major > 0 && (major is null || d.Major == major))
                .OrderByDescending(d => d.Major)
                .Select(d => d.Folder));
        }

        if (major is not null)
        {
            // scripts/db.sh builds the majors the distribution lacks into its cache (POSTGRES_VERSION=18 on Debian 12).
            var cache = buildCache ?? (LocalServers.IsRoot ? "/var/cache/pgvector-module" : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "pgvector-module"));
            if (Directory.Exists(cache))
            {
                folders.AddRange(Directory.EnumerateDirectories(cache, $"postgresql-{major}.*")
                    .Where(d => File.Exists(Path.Combine(d, ".complete")))
                    .Select(d => Path.Combine(d, "bin")));
            }
        }

        // Homebrew's formulae are keg-only: their programs are in PREFIX/opt/postgresql@N/bin, not on PATH.
        var prefixes = new[] { Environment.GetEnvironmentVariable("HOMEBREW_PREFIX"), "/opt/homebrew", "/usr/local" }
            .Where(p => !string.IsNullOrEmpty(p)).Distinct();
        int[] majors = major is { } only ? [only] : [18, 17, 16, 15, 14];
        folders.AddRange(prefixes.SelectMany(prefix => majors.Select(m => Path.Combine(prefix!, "opt", $"postgresql@{m}", "bin"))));
        // The PostgreSQL.org packages: the PGDG RPMs, the EDB installer and Postgres.app on macOS.
        folders.AddRange(majors.SelectMany(m => new[] { $"/usr/pgsql-{m}/bin", $"/Library/PostgreSQL/{m}/bin", $"/Applications/Postgres.app/Contents/Versions/{m}/bin" }));

        if (FindOnPath("pg_config") is { } pgConfig)
        {
            var bindir = await LocalServers.RunAsync(pgConfig, ["--bindir"], asServerUser: false, password: null, cancellationToken);
            if (bindir.ExitCode == 0 && bindir.Output.Trim() is { Length: > 0 } folder)
            {
                folders.Add(folder);
            }
        }

        return folders.Distinct().ToList();
    }

    /// <summary>The installation in <paramref name="folder"/>, or null when it does not hold initdb, pg_ctl, postgres and a pg_config that answers.</summary>
    public static async Task<PostgresInstallation?> ReadAsync(string folder, CancellationToken cancellationToken)
    {
        if (!Programs.All(p => File.Exists(Path.Combine(folder, p))))
        {
            return null;
        }

        var pgConfig = Path.Combine(folder, "pg_config");
        var version = await LocalServers.RunAsync(pgConfig, ["--version"], asServerUser: false, password: null, cancellationToken);
        var share = await LocalServers.RunAsync(pgConfig, ["--sharedir"], asServerUser: false, password: null, cancellationToken);
        if (version.ExitCode != 0 || share.ExitCode != 0 || VersionLine().Match(version.Output) is not { Success: true } match)
        {
            return null;
        }

        var major = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return new PostgresInstallation(folder, major, await PgVectorVersionAsync(Path.Combine(share.Output.Trim(), "extension", "vector.control"), cancellationToken));
    }

    /// <summary>The default_version a control file names (<c>default_version = '0.8.1'</c>); null when there is no file.</summary>
    private static async Task<string?> PgVectorVersionAsync(string controlFile, CancellationToken cancellationToken)
    {
        if (!File.Exists(controlFile))
        {
            return null;
        }

        foreach (var line in await File.ReadAllLinesAsync(controlFile, cancellationToken))
        {
            if (DefaultVersionLine().Match(line) is { Success: true } match)
            {
                return match.Groups[1].Value;
            }
        }

        // Installed, but the file names no version: say so rather than take it for a current one.
        return "of unknown version";
    }

    /// <summary>0.8.1 from "0.8.1", 0.9.0 from "0.9.0-dev"; null when it names no version.</summary>
    private static Version? ParseVersion(string? text) =>
        text is not null && LeadingVersion().Match(text) is { Success: true } match && Version.TryParse(match.Value, out var version)
            ? new Version(version.Major, version.Minor, Math.Max(version.Build, 0))
            : null;

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    /// <summary>
    /// What to install on <paramref name="os"/> for a server the lessons can start by themselves, after
    /// <paramref name="what"/> (what was tried), as one sentence.
    /// </summary>
    public static string InstallSentence(OSPlatform os, string what)
    {
        var fix = os == OSPlatform.Windows
            ? "start Docker Desktop (the lesson then runs the pgvector container by itself), or run the course inside WSL (Ubuntu: scripts/db.sh up installs PostgreSQL and pgvector there)"
            : os == OSPlatform.OSX
                ? "install them with Homebrew, brew install postgresql@18 pgvector (the lesson finds the keg-only formula by itself), or start Docker Desktop"
                : "install them with scripts/db.sh up (on Debian and Ubuntu it installs PostgreSQL and pgvector and starts the cluster), or apt-get install postgresql postgresql-NN-pgvector where the distribution has that package, or start Docker";
        return $"{what}: {fix}; or set DATABASE_URL to a PostgreSQL server with pgvector.";
    }

    /// <summary>What to install for pgvector itself, for PostgreSQL <paramref name="major"/> on <paramref name="os"/>.</summary>
    public static string PgVectorFix(OSPlatform os, int major) =>
        os == OSPlatform.OSX
            ? $"brew install pgvector (it builds for Homebrew's current postgresql@N formulae), or brew install postgresql@18 pgvector"
            : $"scripts/db.sh up (it installs postgresql-{major}-pgvector, or builds it from Debian's source package where the distribution has none), or apt-get install postgresql-{major}-pgvector";

    /// <summary>This machine's system, for <see cref="InstallSentence"/>.</summary>
    public static OSPlatform CurrentOs =>
        OperatingSystem.IsWindows() ? OSPlatform.Windows : OperatingSystem.IsMacOS() ? OSPlatform.OSX : OSPlatform.Linux;

    [GeneratedRegex(@"PostgreSQL (\d+)")]
    private static partial Regex VersionLine();

    [GeneratedRegex(@"^\s*default_version\s*=\s*'([^']*)'")]
    private static partial Regex DefaultVersionLine();

    [GeneratedRegex(@"^\d+(\.\d+){1,2}")]
    private static partial Regex LeadingVersion();
}
