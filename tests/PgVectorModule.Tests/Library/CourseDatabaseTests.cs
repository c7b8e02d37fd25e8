using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using PgVectorModule.Problems;
using PgVectorModule.Servers;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// A lesson run with no DATABASE_URL finds a server by itself, as a learner's <c>dotnet run</c> does: run as processes,
/// each in a state folder of the test's own (PGVECTOR_MODULE_STATE), on a port no one uses (POSTGRES_PORT), so no
/// developer's or CI's cluster is touched; every cluster a test starts is stopped when it ends.
/// </summary>
// The private cluster is run the Unix way (pg_ctl in the background, the postgres user under root).
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class CourseDatabaseTests : IAsyncDisposable
{
    private readonly string _folder;
    private readonly string _state;

    public CourseDatabaseTests()
    {
        _folder = Directory.CreateTempSubdirectory("pgvm-course-db-").FullName;
        // As root the cluster runs as the postgres user, who must be able to enter the folders above its own.
        File.SetUnixFileMode(_folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                      UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        _state = Path.Combine(_folder, "state");
    }

    /// <summary>No DATABASE_URL, and POSTGRES_* left to their defaults but the port, which nothing listens on.</summary>
    private Dictionary<string, string> Unconfigured(string mode) => new()
    {
        ["PGVECTOR_MODULE_STATE"] = _state,
        ["POSTGRES_PORT"] = ScriptCheckout.FreePort().ToString(CultureInfo.InvariantCulture),
        ["POSTGRES_USER"] = "",
        ["POSTGRES_PASSWORD"] = "",
        ["POSTGRES_DB"] = "",
        ["POSTGRES_VERSION"] = "",
        ["DB_MODE"] = mode,
    };

    [Fact]
    public async Task Without_database_url_a_lesson_starts_a_private_cluster_from_the_installed_programs_and_the_next_run_reuses_it()
    {
        // Where Docker answers, auto would run the pgvector container; local is what this machine's installed programs give.
        var settings = Unconfigured(DockerAnswers() ? "local" : "auto");

        var first = await LessonProcess.RunLessonAsync("01", settings);
        var second = await LessonProcess.RunLessonAsync("01", settings);

        Assert.True(first.ExitCode == 0, first.Output);
        var started = Started().Match(first.Text);
        Assert.True(started.Success, first.Text);
        var (port, pid) = (started.Groups["port"].Value, started.Groups["pid"].Value);
        Assert.Contains($"in C#, against 127.0.0.1:{port}/agent_db", first.Text, StringComparison.Ordinal);

        Assert.True(second.ExitCode == 0, second.Output);
        Assert.Contains($"Using the private PostgreSQL cluster already running on 127.0.0.1:{port} (pid {pid}), its data in {_state}", second.Text, StringComparison.Ordinal);
        Assert.Contains("stop it with ", second.Text, StringComparison.Ordinal);

        // Loopback only, and the generated password readable by its owner alone, as scripts/db.sh keeps it.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_state, CourseCluster.PasswordFileName)));
        var password = (await File.ReadAllTextAsync(Path.Combine(_state, CourseCluster.PasswordFileName), TestContext.Current.CancellationToken)).Trim();
        Assert.DoesNotContain(password, first.Output + second.Output, StringComparison.Ordinal);
        await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={port};Username=postgres;Password={password};Database=agent_db;Pooling=false");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var listen = new NpgsqlCommand("SELECT current_setting('listen_addresses')", connection);
        Assert.Equal("127.0.0.1", await listen.ExecuteScalarAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Without_postgresql_or_docker_a_lesson_says_in_one_sentence_what_to_install()
    {
        Assert.SkipWhen(DockerAnswers(), "A Docker engine answers here, so the lesson would run the pgvector container: the no-Docker case cannot be made on this machine.");
        var settings = Unconfigured("auto");
        // No PostgreSQL anywhere the starter looks: PG_BINDIR wins (an empty folder), and PATH holds no pg_config.
        var empty = Directory.CreateDirectory(Path.Combine(_folder, "empty")).FullName;
        settings["PG_BINDIR"] = empty;
        settings["PATH"] = empty;

        var result = await LessonProcess.RunLessonAsync("01", settings);

        Assert.Equal(Problems.ExitCodes.DatabaseUnavailable, result.ExitCode);
        Assert.Contains($"No PostgreSQL answers at localhost:{settings["POSTGRES_PORT"]} and none could be started: no Docker engine answers, and PG_BINDIR ({empty}) holds no PostgreSQL server programs: " +
                        "install them with scripts/db.sh up", result.Text, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(result.Output);
        Assert.False(Directory.Exists(_state), "The starter made a state folder although it started nothing.");
    }

    [Fact]
    public async Task Installed_programs_whose_pgvector_is_older_than_0_8_are_refused_in_one_sentence_naming_both_versions()
    {
        var settings = Unconfigured("local");
        settings["PG_BINDIR"] = await FakeInstallationAsync("old", pgVector: "0.7.4");

        var result = await LessonProcess.RunLessonAsync("01", settings);

        Assert.Equal(Problems.ExitCodes.ExtensionMissing, result.ExitCode);
        Assert.Contains($"No PostgreSQL answers at localhost:{settings["POSTGRES_PORT"]}, and the PostgreSQL 17 found in {settings["PG_BINDIR"]} has pgvector 0.7.4, " +
                        "and the course needs 0.8.0 or newer (lesson 05's iterative index scans): install a newer one with " +
                        PostgresInstallation.PgVectorFix(PostgresInstallation.CurrentOs, 17), OneSentence.Flat(result.Text), StringComparison.Ordinal);
        OneSentence.AssertNoCrash(result.Output);
        Assert.False(Directory.Exists(_state), "The starter made a state folder although it started nothing.");
    }

    [Theory]
    [InlineData("0.7.4", false)]
    [InlineData("0.8.0", true)]
    [InlineData("0.8.1", true)]
    [InlineData("0.10.0", true)]
    [InlineData(null, false)]
    public async Task The_pgvector_version_is_read_from_the_installed_control_file(string? version, bool current)
    {
        var bin = await FakeInstallationAsync("v" + (version ?? "none"), version);

        var installation = await PostgresInstallation.FindAsync(bin, null, null, TestContext.Current.CancellationToken);

        Assert.NotNull(installation);
        Assert.Equal((17, version, current), (installation.Major, installation.PgVectorVersion, installation.PgVectorIsCurrent));
        Assert.Equal(current, installation.PgVectorProblem(OSPlatform.Linux, "No PostgreSQL answers") is null);
    }

    [Theory]
    [InlineData("Linux", "apt-get install postgresql-17-pgvector")]
    [InlineData("OSX", "brew install pgvector")]
    public void The_sentence_on_an_old_pgvector_names_the_version_found_the_one_needed_and_each_systems_fix(string system, string fix)
    {
        var installation = new PostgresInstallation("/opt/pg/bin", 17, "0.7.4");

        var sentence = installation.PgVectorProblem(OSPlatform.Create(system.ToUpperInvariant()), "No PostgreSQL answers at localhost:5432");

        Assert.NotNull(sentence);
        Assert.StartsWith("No PostgreSQL answers at localhost:5432, and the PostgreSQL 17 found in /opt/pg/bin has pgvector 0.7.4, and the course needs 0.8.0 or newer", sentence, StringComparison.Ordinal);
        Assert.Contains(fix, sentence, StringComparison.Ordinal);
        Assert.EndsWith("or set DATABASE_URL to a server with pgvector 0.8.0 or newer.", sentence, StringComparison.Ordinal);
        Assert.Single(sentence.Split(". ", StringSplitOptions.None));
    }

    [Fact]
    public async Task An_explicit_database_url_that_does_not_answer_is_refused_and_nothing_is_started_in_its_place()
    {
        var settings = Unconfigured(DockerAnswers() ? "local" : "auto");
        settings["DATABASE_URL"] = $"postgresql://postgres:whatever@127.0.0.1:{ScriptCheckout.FreePort().ToString(CultureInfo.InvariantCulture)}/agent_db";

        var result = await LessonProcess.RunLessonAsync("01", settings);

        Assert.Equal(Problems.ExitCodes.DatabaseUnavailable, result.ExitCode);
        Assert.Contains("Cannot reach PostgreSQL at 127.0.0.1:", result.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("private PostgreSQL cluster", result.Text, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_state), "A cluster was made although DATABASE_URL was set.");
    }

    [Fact]
    public async Task A_server_at_the_default_url_is_used_with_the_password_kept_in_the_state_folder()
    {
        // What scripts/db.sh's compose service is: a server on POSTGRES_PORT whose superuser has the generated password.
        await using var cluster = await PrivateCluster.StartAsync(TestContext.Current.CancellationToken);
        Directory.CreateDirectory(_state);
        await File.WriteAllTextAsync(Path.Combine(_state, CourseCluster.PasswordFileName), cluster.Password + "\n", TestContext.Current.CancellationToken);
        var settings = Unconfigured("auto");
        settings["POSTGRES_PORT"] = cluster.Port.ToString(CultureInfo.InvariantCulture);
        settings["POSTGRES_DB"] = "postgres";

        var result = await LessonProcess.RunLessonAsync("01", settings);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains($"in C#, against localhost:{cluster.Port}/postgres", result.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("private PostgreSQL cluster", result.Text, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_state, "data")), "A cluster was made although a server answered at the default URL.");
    }

    [Theory]
    [InlineData("Linux", "scripts/db.sh up", "apt-get install postgresql postgresql-NN-pgvector")]
    [InlineData("OSX", "brew install postgresql@18 pgvector", "Docker Desktop")]
    [InlineData("Windows", "Docker Desktop", "WSL")]
    public void The_sentence_on_what_to_install_names_each_systems_own_way(string system, string first, string second)
    {
        var sentence = PostgresInstallation.InstallSentence(OSPlatform.Create(system.ToUpperInvariant()), "No PostgreSQL answers");

        Assert.StartsWith("No PostgreSQL answers: ", sentence, StringComparison.Ordinal);
        Assert.Contains(first, sentence, StringComparison.Ordinal);
        Assert.Contains(second, sentence, StringComparison.Ordinal);
        Assert.EndsWith("or set DATABASE_URL to a PostgreSQL server with pgvector.", sentence, StringComparison.Ordinal);
        Assert.Single(sentence.Split(". ", StringSplitOptions.None));
    }

    [Fact]
    public void The_container_runs_the_image_docker_compose_pins()
    {
        Assert.Equal(ComposeFile.PostgresImage, CourseContainer.Image);
    }

    /// <summary>
    /// A PostgreSQL 17 installation of the test's own: a bin folder with initdb, pg_ctl and postgres (never run) and a
    /// pg_config that answers as PostgreSQL's does, and pgvector's control file of <paramref name="pgVector"/> (none when null).
    /// </summary>
    private async Task<string> FakeInstallationAsync(string name, string? pgVector)
    {
        var root = Path.Combine(_folder, "installation-" + name);
        var bin = Directory.CreateDirectory(Path.Combine(root, "bin")).FullName;
        var extension = Directory.CreateDirectory(Path.Combine(root, "share", "extension")).FullName;
        foreach (var program in new[] { "initdb", "pg_ctl", "postgres" })
        {
            await File.WriteAllTextAsync(Path.Combine(bin, program), "#!/bin/sh\nexit 1\n", TestContext.Current.CancellationToken);
        }

        await File.WriteAllTextAsync(Path.Combine(bin, "pg_config"), $"""
            #!/bin/sh
            case "$1" in
              --version) echo "PostgreSQL 17.2" ;;
              --sharedir) echo "{Path.Combine(root, "share")}" ;;
              *) exit 1 ;;
            esac

            """.ReplaceLineEndings("\n"), TestContext.Current.CancellationToken);
        foreach (var program in Directory.EnumerateFiles(bin))
        {
            File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                                          UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        if (pgVector is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(extension, "vector.control"),
                $"comment = 'vector data type and ivfflat and hnsw access methods'\ndefault_version = '{pgVector}'\nmodule_pathname = '$libdir/vector'\nrelocatable = true\n",
                TestContext.Current.CancellationToken);
        }

        return bin;
    }

    [GeneratedRegex(@"Started a private PostgreSQL \d+ cluster on 127\.0\.0\.1:(?<port>\d+) \(pid (?<pid>\d+)\)")]
    private static partial Regex Started();

    private static bool DockerAnswers() =>
        ScriptCheckout.FindProgram("docker") is { } docker && System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(docker, ["info"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        }) is { } info && info.WaitForExit(TimeSpan.FromSeconds(10)) && info.ExitCode == 0;

    /// <summary>Stops the cluster a test started (pg_ctl of its own programs, as the postgres user under root) and deletes its folder.</summary>
    public async ValueTask DisposeAsync()
    {
        var data = Path.Combine(_state, "data");
        if (File.Exists(Path.Combine(data, "postmaster.pid")) && File.Exists(Path.Combine(data, "postmaster.opts")))
        {
            var postgres = (await File.ReadAllTextAsync(Path.Combine(data, "postmaster.opts"))).Split(' ', 2)[0].Trim('"');
            await new PostgresCluster(Path.GetDirectoryName(postgres)!, data).StopAsync(immediate: true, CancellationToken.None);
        }

        Directory.Delete(_folder, recursive: true);
    }
}
