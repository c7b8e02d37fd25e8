using PgVectorModule.Servers;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Scripts;

/// <summary>
/// The tests' private clusters listen on 127.0.0.1, which every user of the machine reaches: each superuser gets a
/// password of its own, the file initdb reads it from is private and gone once initdb has read it, and a cluster that
/// fails to start leaves nothing behind.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class PrivateClusterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A folder of the test's own that the postgres user may pass through (as the system's temporary folder is).</summary>
    private static string SearchableFolder()
    {
        var folder = Directory.CreateTempSubdirectory("pgvm-private-parent-").FullName;
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return folder;
    }

    [Fact]
    public async Task Each_cluster_has_a_password_of_its_own_and_keeps_no_file_of_it()
    {
        await using var first = await PrivateCluster.StartAsync(Ct);
        await using var second = await PrivateCluster.StartAsync(Ct);

        Assert.NotEqual(first.Password, second.Password);
        Assert.DoesNotContain("private-cluster-password", new[] { first.Password, second.Password });
        Assert.Matches("^[0-9a-f]{32}$", first.Password);
        foreach (var cluster in new[] { first, second })
        {
            await using var connection = new NpgsqlConnection(cluster.Settings.ConnectionString().ConnectionString);
            await connection.OpenAsync(Ct);
            if (cluster.Root.Length > 0)
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(cluster.Root));
                Assert.DoesNotContain(Directory.EnumerateFiles(cluster.Root), f => File.ReadAllText(f).Contains(cluster.Password, StringComparison.Ordinal));
            }
        }

        NpgsqlConnection.ClearAllPools();
        var wrong = first.Settings.ConnectionString();
        wrong.Password = second.Password;
        await using var refused = new NpgsqlConnection(wrong.ConnectionString);
        Assert.Equal(PostgresErrorCodes.InvalidPassword, (await Assert.ThrowsAsync<PostgresException>(() => refused.OpenAsync(Ct))).SqlState);
    }

    [Fact]
    public async Task A_cluster_runs_the_major_of_the_test_run_PG_BINDIR_s_when_set_else_the_shared_server_s()
    {
        var expected = ServerLanes.ProgramsFolder is { } configured
            ? (await PostgresInstallation.ReadAsync(configured, Ct))?.Major
            : PostgresServer.Major;
        Assert.NotNull(expected);
        Assert.SkipWhen(ServerLanes.ProgramsFolder is null && await PostgresInstallation.FindAsync(null, expected, null, Ct) is null,
            $"No PostgreSQL {expected} programs are installed here: the cluster is made with another major's, or is a container.");

        await using var cluster = await PrivateCluster.StartAsync(Ct);

        await using var connection = new NpgsqlConnection(cluster.Settings.ConnectionString().ConnectionString);
        await connection.OpenAsync(Ct);
        await using var major = new NpgsqlCommand("SELECT current_setting('server_version_num')::int / 10000", connection);
        Assert.Equal(expected, await major.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task A_cluster_that_does_not_start_leaves_no_folder_and_no_password_file()
    {
        var parent = SearchableFolder();
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => PrivateCluster.StartInAsync(parent, Ct, "no_such_setting=1"));

            Assert.Empty(Directory.EnumerateFileSystemEntries(parent));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task A_disposed_cluster_leaves_nothing()
    {
        var parent = SearchableFolder();
        try
        {
            var cluster = await PrivateCluster.StartInAsync(parent, Ct);
            Assert.Single(Directory.EnumerateFileSystemEntries(parent));

            await cluster.DisposeAsync();

            Assert.Empty(Directory.EnumerateFileSystemEntries(parent));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }
}
