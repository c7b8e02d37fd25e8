using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Scripts;

/// <summary>
/// The scripts' checks on a machine without GNU's tools, as on stock macOS: PATH is a folder of links to every program
/// this machine has except <c>timeout</c>, <c>sha1sum</c> and <c>runuser</c>, and a <c>sed</c> that refuses <c>-i</c>
/// (BSD sed reads its argument differently). Each check must answer as it does with every tool there, never a silent
/// "no".
/// </summary>
// Bash scripts with Unix file modes: ScriptCheckout skips them on Windows.
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PortableScriptTests : IAsyncLifetime
{
    private const string Lib = "source scripts/lib/settings.sh; source scripts/lib/provision.sh; source scripts/lib/cluster.sh; ";
    private static readonly string[] Missing = ["timeout", "gtimeout", "sha1sum", "runuser", "sed", "docker", "apt-get", "apt-cache", "uname"];

    private ScriptCheckout _checkout = null!;
    private string _bin = null!;

    public ValueTask InitializeAsync()
    {
        _checkout = ScriptCheckout.Create();
        _bin = Path.Combine(_checkout.Root, "portable-bin");
        Directory.CreateDirectory(_bin);
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (var program in Directory.EnumerateFiles(folder))
            {
                var link = Path.Combine(_bin, Path.GetFileName(program));
                if (!Missing.Contains(Path.GetFileName(program)) && !File.Exists(link))
                {
                    File.CreateSymbolicLink(link, program);
                }
            }
        }

        var sed = ScriptCheckout.FindProgram("sed") ?? throw new InvalidOperationException("sed is not on PATH.");
        Script("sed", $$"""
            #!/bin/sh
            for a in "$@"; do case "$a" in -i*|--in-place*|-[!-]*i*) echo "sed: -i is not portable" >&2; exit 64;; esac; done
            exec {{sed}} "$@"
            """);
        Script("uname", "#!/bin/sh\necho Linux\n");
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _checkout.DisposeAsync();

    /// <summary>A program of the test's own in the PATH folder.</summary>
    private void Script(string name, string text) => Executable(Path.Combine(_bin, name), text);

    private static void Executable(string path, string text)
    {
        // The folder holds links to the machine's programs: replace a link, never write through it.
        File.Delete(path);
        File.WriteAllText(path, text.ReplaceLineEndings("\n").TrimEnd('\n') + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
    }

    private Task<ScriptResult> PortableAsync(string snippet, ScriptCheckout? checkout = null, Dictionary<string, string?>? environment = null)
    {
        var settings = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>()) { ["PATH"] = _bin };
        return (checkout ?? _checkout).BashAsync(Lib + snippet, settings);
    }

    [Fact]
    public async Task The_tools_left_out_are_really_absent()
    {
        var result = await PortableAsync("for t in timeout sha1sum runuser docker apt-get; do command -v $t || echo \"no $t\"; done; sed -i s/a/b/ /dev/null; echo \"sed -i: $?\"");

        Assert.Equal("no timeout\nno sha1sum\nno runuser\nno docker\nno apt-get\nsed -i: 64\n", result.StandardOutput);
    }

    [Fact]
    public async Task Port_answers_says_yes_to_a_listening_port_and_no_to_a_closed_one()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var open = ((IPEndPoint)listener.LocalEndpoint).Port;
        var closed = ScriptCheckout.FreePort();

        var result = await PortableAsync($"port_answers 127.0.0.1 {open} && echo open; port_answers 127.0.0.1 {closed} || echo closed");

        Assert.Equal("open\nclosed\n", result.StandardOutput);
    }

    [Fact]
    public async Task With_timeout_ends_a_command_that_runs_too_long_and_leaves_it_not_running()
    {
        // A duration no other process on the machine is likely to sleep, so that ps finds this one alone.
        var duration = "300." + Random.Shared.Next(100_000, 999_999).ToString(CultureInfo.InvariantCulture);
        var result = await PortableAsync(
            $"started=$SECONDS; with_timeout 2 sleep {duration}; status=$?; echo \"status=$status seconds=$((SECONDS - started))\"; " +
            $"sleep 0.5; ps -eo args | grep -c '^sleep {duration}$' || true");

        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // 124: GNU timeout's own status; 143: ended by SIGTERM (the perl stand-in).
        Assert.Matches(@"^status=(124|143) seconds=[0-9]+$", lines[0]);
        Assert.InRange(int.Parse(lines[0].Split("seconds=")[1], CultureInfo.InvariantCulture), 2, 60);
        Assert.Equal("0", lines[1]);
    }

    [Fact]
    public async Task Docker_answers_yes_when_docker_info_succeeds()
    {
        // A docker whose info succeeds stands for an engine that answers: what is checked is the script's check.
        Script("docker", "#!/bin/sh\n[ \"$1\" = info ] && exit 0\nexit 1\n");
        try
        {
            var result = await PortableAsync("docker_answers && echo answers || echo silent");

            Assert.Equal("answers\n", result.StandardOutput);
        }
        finally
        {
            File.Delete(Path.Combine(_bin, "docker"));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Local_state_dir_is_the_same_without_runuser_and_sha1sum(bool reachableByPostgres)
    {
        await using var checkout = ScriptCheckout.Create(reachableByPostgres);

        var portable = await PortableAsync("local_state_dir", checkout);
        var everything = await checkout.BashAsync(Lib + "local_state_dir");

        var expected = Environment.UserName == "root" && !reachableByPostgres
            ? "/var/lib/postgresql/pgvector-module/" + Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(checkout.Root)))[..12]
            : Path.Combine(checkout.Root, ".pgdata");
        Assert.Equal(expected, everything.StandardOutput);
        Assert.Equal(expected, portable.StandardOutput);
        Assert.Equal("", portable.StandardError);
    }

    [Theory]
    [InlineData("postgresql://u:p@db.example:6543/x", "db.example 6543")]
    [InlineData("postgres://u:p%40ss@127.0.0.1/x?sslmode=require", "127.0.0.1 5432")]
    [InlineData("postgresql://u@[::1]:5544/x", "::1 5544")]
    [InlineData("Host = db.example ; Port=6000;Username=u;Password=a;b", "db.example 6000")]
    [InlineData("Server=/var/run/postgresql;Database=x", "/var/run/postgresql 5432")]
    [InlineData("postgresql:///x", "localhost 5432")]
    public async Task Url_host_port_reads_both_forms(string url, string expected)
    {
        var result = await PortableAsync("url_host_port \"$URL_UNDER_TEST\"", environment: new() { ["URL_UNDER_TEST"] = url });

        Assert.Equal(expected, result.StandardOutput);
    }

    [Fact]
    public async Task The_config_edit_changes_the_port_line_alone_and_keeps_the_files_owner_and_mode()
    {
        // As in a data folder: the folder and the file belong to the cluster's owner (postgres, when the tests run as root).
        var data = Path.Combine(_checkout.Root, "data");
        Directory.CreateDirectory(data);
        var conf = Path.Combine(data, "postgresql.conf");
        await File.WriteAllTextAsync(conf, "listen_addresses = '127.0.0.1'\nport = 5432\n# port = 1 in a comment\nshared_buffers = 512MB\n", TestContext.Current.CancellationToken);
        File.SetUnixFileMode(conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var result = await PortableAsync(
            "[[ $EUID -ne 0 ]] || chown -R postgres: data; before=$(ls -ln data/postgresql.conf | awk '{print $3}'); " +
            "set_conf_value \"$PWD/data/postgresql.conf\" port 5555; after=$(ls -ln data/postgresql.conf | awk '{print $3}'); " +
            "[[ $before == \"$after\" ]] && echo same-owner");

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Equal("same-owner\n", result.StandardOutput);
        Assert.Equal("listen_addresses = '127.0.0.1'\nport = 5555\n# port = 1 in a comment\nshared_buffers = 512MB\n", File.ReadAllText(conf));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(conf));
        Assert.False(File.Exists(conf + ".new"));
    }

    [Fact]
    public async Task Homebrews_keg_only_postgresql_is_found()
    {
        var keg = Path.Combine(_checkout.Root, "brew", "opt", "postgresql@17", "bin");
        Directory.CreateDirectory(keg);
        File.CreateSymbolicLink(Path.Combine(keg, "pg_ctl"), "/bin/true");
        Executable(Path.Combine(keg, "pg_config"), "#!/bin/sh\necho 'PostgreSQL 17.6 (Homebrew postgresql@17)'\n");

        var result = await PortableAsync("pg_bindir", environment: new()
        {
            ["HOMEBREW_PREFIX"] = Path.Combine(_checkout.Root, "brew"),
            ["POSTGRES_VERSION"] = "17",
        });

        Assert.Equal(keg, result.StandardOutput);
    }

    [Fact]
    public async Task On_macos_without_postgresql_db_sh_up_says_what_to_brew_install()
    {
        Script("uname", "#!/bin/sh\necho Darwin\n");
        var brew = Path.Combine(_checkout.Root, "empty-brew");
        Directory.CreateDirectory(brew);

        var result = await _checkout.RunAsync("db.sh", ["up"], new Dictionary<string, string?>
        {
            ["PATH"] = _bin,
            ["HOMEBREW_PREFIX"] = brew,
            ["POSTGRES_VERSION"] = "17",
            ["DB_MODE"] = "local",
        });

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(
            $"[db] error: no PostgreSQL 17 server programs found: brew install postgresql@17 pgvector (scripts/db.sh finds the keg-only formula in {brew}/opt/postgresql@17/bin), or start Docker Desktop.\n",
            result.StandardError);
    }
}
