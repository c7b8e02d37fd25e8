using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Servers;

namespace PgVectorModule.Tests.Infrastructure;

/// <param name="StandardOutput">What the script printed as its result (db.sh's URL).</param>
/// <param name="StandardError">What it said to the person running it.</param>
public sealed record ScriptResult(int ExitCode, string StandardOutput, string StandardError)
{
    public string Output => StandardOutput + StandardError;
}

/// <summary>
/// A copy of the repository's scripts (scripts/, docker-compose.yml) in a temporary folder, run as a learner runs them:
/// <c>bash scripts/db.sh up</c> as a process. What db.sh makes (.pgdata/, the cluster, its password) lands in the copy,
/// never in the checkout the tests run from. The test decides every setting: the module's variables are taken out of
/// the inherited environment, and the copy has no .env unless the test writes one. POSTGRES_PORT is a free port, so a
/// copy's cluster does not wander over the ports of the machine's other clusters. Disposed: db.sh down, then the folder
/// is deleted.
/// </summary>
public sealed class ScriptCheckout : IAsyncDisposable
{
    private static readonly string[] ModuleVariables =
    [
        "DATABASE_URL", "TEST_DATABASE_URL", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT", "POSTGRES_VERSION",
        "DB_MODE", "REPLICA_PORT", "PGBOUNCER_PORT", "PG_BINDIR", "PGBOUNCER", "TEST_ALSO_ON_POSTGRES", "STANDBY_URL", "CITUS_URL",
        "HOMEBREW_PREFIX", "PGPASSWORD", "PGPASSFILE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE",
    ];

    private readonly Dictionary<string, string> _settings;

    private ScriptCheckout(string root, Dictionary<string, string> settings)
    {
        Root = root;
        _settings = settings;
    }

    public string Root { get; }

    /// <summary>Where db.sh keeps this copy's cluster when the postgres user can reach the copy (see <see cref="CreateAsync"/>).</summary>
    public string StateDirectory => Path.Combine(Root, ".pgdata");

    /// <summary>The settings every run of this copy gets (a run's own settings are laid over them).</summary>
    public IReadOnlyDictionary<string, string> Settings => _settings;

    /// <param name="reachableByPostgres">As root, the cluster runs as the postgres user, which must reach the copy for
    /// db.sh to keep its state inside it (else db.sh moves it below /var/lib/postgresql): so the copy is world-searchable
    /// (0755) unless the test wants the other case.</param>
    public static ScriptCheckout Create(bool reachableByPostgres = true, IReadOnlyDictionary<string, string>? settings = null)
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("The scripts are bash scripts for Linux and macOS; on Windows the lessons run with dotnet run.");
        }

        var root = Directory.CreateTempSubdirectory("pgvm-scripts-").FullName;
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(root, reachableByPostgres
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        CopyDirectory(Path.Combine(RepositoryRoot.Path, "scripts"), Path.Combine(root, "scripts"));
        File.Copy(Path.Combine(RepositoryRoot.Path, "docker-compose.yml"), Path.Combine(root, "docker-compose.yml"));
        var all = new Dictionary<string, string> { ["POSTGRES_PORT"] = FreePort().ToString(CultureInfo.InvariantCulture) };
        foreach (var (name, value) in settings ?? new Dictionary<string, string>())
        {
            all[name] = value;
        }

        return new ScriptCheckout(root, all);
    }

    /// <summary>Runs <c>bash scripts/SCRIPT args</c> in the copy, with this copy's settings and <paramref name="environment"/>
    /// over them (a null value removes a variable; PATH may be replaced).</summary>
    public Task<ScriptResult> RunAsync(string script, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment = null) =>
        RunProcessAsync("bash", [Path.Combine("scripts", script), .. args], environment);

    /// <summary>Runs a bash snippet in the copy (to call the scripts' functions after sourcing scripts/lib).</summary>
    public Task<ScriptResult> BashAsync(string snippet, IReadOnlyDictionary<string, string?>? environment = null) =>
        RunProcessAsync("bash", ["-c", snippet], environment);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Directory.Exists(Path.Combine(Root, "scripts")))
            {
                await RunAsync("db.sh", ["down"]);
            }
        }
        finally
        {
            Directory.Delete(Root, recursive: true);
        }
    }

    private async Task<ScriptResult> RunProcessAsync(string file, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var name in ModuleVariables)
        {
            start.Environment.Remove(name);
        }

        foreach (var (name, value) in _settings)
        {
            start.Environment[name] = value;
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not end within 5 minutes.");
        }

        return new ScriptResult(process.ExitCode, await output, await errors);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (var directory in Directory.GetDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }

    /// <summary>The program's path on PATH, or null.</summary>
    public static string? FindProgram(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, name)).FirstOrDefault(File.Exists);

    /// <summary>A loopback port nothing listens on now.</summary>
    public static int FreePort() => LocalServers.FreePort();
}
