using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Scripts;

/// <summary>
/// scripts/db.sh on a shared machine, run as a process: the local cluster's superuser gets a password generated for it
/// (every other user of the machine reaches 127.0.0.1 too), kept in a file only its owner reads, and printed only as
/// the URL that <c>up</c> and <c>url</c> write to stdout.
/// </summary>
// Bash scripts with Unix file modes: ScriptCheckout skips them on Windows.
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Collection(LocalClusterCheckout.Collection)]
public class DatabaseScriptTests(LocalClusterCheckout local)
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Up_gives_the_cluster_a_generated_password_that_logs_in_and_the_old_fixed_one_does_not()
    {
        var cs = local.ConnectionString;

        Assert.Matches("^[0-9a-f]{48}$", cs.Password);
        await using (var connection = new NpgsqlConnection(cs.ConnectionString))
        {
            await connection.OpenAsync(Ct);
            await using var command = new NpgsqlCommand("SELECT current_user", connection);
            Assert.Equal("postgres", await command.ExecuteScalarAsync(Ct));
        }

        cs.Password = "postgres";
        await using var refused = new NpgsqlConnection(cs.ConnectionString);
        var error = await Assert.ThrowsAsync<PostgresException>(() => refused.OpenAsync(Ct));
        Assert.Equal(PostgresErrorCodes.InvalidPassword, error.SqlState);
    }

    [Fact]
    public void The_password_is_kept_in_a_file_only_its_owner_can_read_in_a_folder_only_its_owner_can_enter()
    {
        var file = Path.Combine(local.Checkout.StateDirectory, "superuser-password");

        Assert.Equal(local.ConnectionString.Password, File.ReadAllText(file).Trim());
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(file));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(local.Checkout.StateDirectory));
        // initdb read it from a file of its own, which is gone.
        Assert.False(File.Exists(Path.Combine(local.Checkout.StateDirectory, "initdb-password")));
        Assert.Equal(["data", "initdb.log", "postgres.log", "superuser-password"], Entries(local.Checkout.StateDirectory));
    }

    [Fact]
    public async Task No_command_prints_the_password_except_as_the_url_up_and_url_print_on_stdout()
    {
        var password = local.ConnectionString.Password!;
        var again = await local.Checkout.RunAsync("db.sh", ["up"]);
        var url = await local.Checkout.RunAsync("db.sh", ["url"]);
        var status = await local.Checkout.RunAsync("db.sh", ["status"]);

        Assert.DoesNotContain(password, local.Up.StandardError, StringComparison.Ordinal);
        Assert.Equal((0, local.Url), (again.ExitCode, again.StandardOutput.Trim()));
        Assert.DoesNotContain(password, again.StandardError, StringComparison.Ordinal);
        Assert.Equal((0, local.Url), (url.ExitCode, url.StandardOutput.Trim()));
        Assert.DoesNotContain(password, url.StandardError, StringComparison.Ordinal);
        Assert.Contains("local cluster: running, postgresql://postgres:***@127.0.0.1:", status.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain(password, status.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_initdb_that_fails_leaves_no_password_file_behind()
    {
        await using var checkout = ScriptCheckout.Create();
        // A data folder that is not a cluster and not empty: initdb refuses it.
        Directory.CreateDirectory(Path.Combine(checkout.StateDirectory, "data"));
        await File.WriteAllTextAsync(Path.Combine(checkout.StateDirectory, "data", "not-a-cluster"), "", Ct);

        var up = await checkout.RunAsync("db.sh", ["up"]);

        Assert.Equal(1, up.ExitCode);
        Assert.Contains("initdb failed", up.StandardError, StringComparison.Ordinal);
        Assert.Equal("", up.StandardOutput);
        // What stays: the planted folder, initdb's log and the cluster's password file (0600) for the next attempt.
        Assert.Equal(["data", "initdb.log", "superuser-password"], Entries(checkout.StateDirectory));
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(Path.Combine(checkout.StateDirectory, "superuser-password")));
    }

    [Theory]
    [InlineData("postgresql://u:p@x$(touch pwned):5432/db")]
    [InlineData("postgresql://u:p@x`touch pwned`:5432/db")]
    [InlineData("Host=x$(touch pwned);Port=5432;Username=u;Password=p")]
    [InlineData("postgresql://u:p@127.0.0.1:5432$(touch pwned)/db")]
    public async Task A_database_url_holding_shell_code_is_refused_and_the_code_never_runs(string url)
    {
        await using var checkout = ScriptCheckout.Create();
        var marker = Path.Combine(checkout.Root, "pwned");

        foreach (var command in new[] { "url", "up", "status" })
        {
            var result = await checkout.RunAsync("db.sh", [command], new Dictionary<string, string?> { ["DATABASE_URL"] = url });

            Assert.False(File.Exists(marker), $"db.sh {command} ran the command inside DATABASE_URL.");
            Assert.Equal(1, result.ExitCode);
            Assert.Matches(@"^\[db\] error: DATABASE_URL's (host|port) '.*' is not a (host name or an address|port number): correct DATABASE_URL \(environment or \.env\)\.\n$", result.StandardError);
            Assert.Equal("", result.StandardOutput);
        }
    }

    [Fact]
    public async Task A_cluster_made_with_the_old_fixed_password_gets_a_generated_one_that_no_log_holds()
    {
        await using var checkout = ScriptCheckout.Create();
        var made = await checkout.BashAsync(LegacyCluster);
        Assert.True(made.ExitCode == 0, made.Output);

        var up = await checkout.RunAsync("db.sh", ["up"]);

        Assert.True(up.ExitCode == 0, up.Output);
        var cs = Configuration.DatabaseUrl.Parse(up.StandardOutput.Trim());
        var password = cs.Password!;
        Assert.Matches("^[0-9a-f]{48}$", password);
        Assert.Contains("still has the old password 'postgres'", up.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain(password, up.StandardError, StringComparison.Ordinal);
        Assert.Equal(password, File.ReadAllText(Path.Combine(checkout.StateDirectory, "superuser-password")).Trim());

        await using (var connection = new NpgsqlConnection(cs.ConnectionString))
        {
            await connection.OpenAsync(Ct);
            await using var create = new NpgsqlCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", connection);
            await create.ExecuteNonQueryAsync(Ct);
            await using var seen = new NpgsqlCommand("SELECT count(*) FROM pg_stat_statements WHERE strpos(query, $1) > 0", connection);
            seen.Parameters.AddWithValue(password);
            Assert.Equal(0L, await seen.ExecuteScalarAsync(Ct));
        }

        Assert.DoesNotContain(password, File.ReadAllText(Path.Combine(checkout.StateDirectory, "postgres.log")), StringComparison.Ordinal);
        cs.Password = "postgres";
        await using var refused = new NpgsqlConnection(cs.ConnectionString);
        Assert.Equal(PostgresErrorCodes.InvalidPassword, (await Assert.ThrowsAsync<PostgresException>(() => refused.OpenAsync(Ct))).SqlState);
        NpgsqlConnection.ClearAllPools();
    }

    [Fact]
    public async Task Pgbouncer_takes_a_password_with_a_double_quote_and_keeps_its_files_private()
    {
        if (ScriptCheckout.FindProgram("pgbouncer") is null && !File.Exists("/usr/sbin/pgbouncer"))
        {
            Assert.Skip("pgbouncer is not installed: scripts/db.sh pgbouncer install (scripts/test.sh runs it).");
        }

        const string password = "pa\"ss w@rd/:%";
        await using var checkout = ScriptCheckout.Create(settings: new Dictionary<string, string>
        {
            ["POSTGRES_PASSWORD"] = password,
            ["PGBOUNCER_PORT"] = ScriptCheckout.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var up = await checkout.RunAsync("db.sh", ["up"]);
        Assert.True(up.ExitCode == 0, up.Output);

        var bouncer = await checkout.RunAsync("db.sh", ["pgbouncer", "up"]);

        Assert.True(bouncer.ExitCode == 0, bouncer.Output);
        var cs = Configuration.DatabaseUrl.Parse(bouncer.StandardOutput.Trim());
        Assert.Equal(password, cs.Password);
        Assert.DoesNotContain(password, up.StandardError + bouncer.StandardError, StringComparison.Ordinal);
        await using (var connection = new NpgsqlConnection(cs.ConnectionString + ";Pooling=false"))
        {
            await connection.OpenAsync(Ct);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            Assert.Equal(1, await command.ExecuteScalarAsync(Ct));
        }

        var folder = Path.Combine(checkout.StateDirectory, "pgbouncer");
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(Path.Combine(folder, "userlist.txt")));
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(Path.Combine(folder, "pgbouncer.ini")));

        var down = await checkout.RunAsync("db.sh", ["pgbouncer", "down"]);
        Assert.Equal(0, down.ExitCode);
        Assert.False(File.Exists(Path.Combine(folder, "userlist.txt")), "the file holding the password outlived pgbouncer");
    }

    private static string[] Entries(string folder) =>
        [.. Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];

    /// <summary>A cluster as scripts/db.sh made it before passwords were generated: initdb with the password 'postgres'.</summary>
    private const string LegacyCluster = """
        set -euo pipefail
        source scripts/lib/settings.sh; source scripts/lib/provision.sh
        bindir="$(pg_bindir)"; state="$PWD/.pgdata"
        mkdir -p "$state"; [[ $EUID -ne 0 ]] || chown postgres: "$state"
        printf 'postgres\n' > "$state/.pw"; [[ $EUID -ne 0 ]] || chown postgres: "$state/.pw"
        run_as_owner "$bindir/initdb" -D "$state/data" -U postgres --pwfile="$state/.pw" \
          --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        rm -f "$state/.pw"
        printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = ''\nshared_preload_libraries = 'pg_stat_statements'\n" \
          "$POSTGRES_PORT" | run_as_owner tee -a "$state/data/postgresql.conf" >/dev/null
        """;
}
