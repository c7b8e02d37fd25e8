using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Servers;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// What the course signals a server on the word of: a process identity (id, start time and program name, through the
/// Process API) and a postmaster.pid proven against the process it names.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class PostgresClusterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_process_is_the_same_one_only_while_its_id_start_time_and_name_all_match()
    {
        var self = ProcessIdentity.Of(Environment.ProcessId);
        using var gone = Process.Start(new ProcessStartInfo("true")) ?? throw new InvalidOperationException("true did not start.");
        await gone.WaitForExitAsync(Ct);

        Assert.NotNull(self);
        Assert.Equal(Process.GetCurrentProcess().ProcessName, self.Name);
        Assert.True(self.IsRunning());
        Assert.False((self with { StartedAt = self.StartedAt.AddMinutes(-5) }).IsRunning());
        Assert.False((self with { Name = "postgres" }).IsRunning());
        // A record written in an older format has no name: it names no process.
        Assert.False((self with { Name = null! }).IsRunning());
        Assert.Null(ProcessIdentity.Of(gone.Id));
    }

    [Fact]
    public async Task A_running_postmaster_is_found_from_its_pid_file_and_a_file_that_does_not_describe_it_is_not()
    {
        await using var cluster = await PrivateCluster.StartAsync(Ct);
        Assert.SkipWhen(cluster.Root.Length == 0, "No installed PostgreSQL programs here: the cluster is a container, with no data folder on this machine.");
        var lines = await File.ReadAllLinesAsync(Path.Combine(cluster.DataDirectory, "postmaster.pid"), Ct);

        var running = await PostgresCluster.RunningPostmasterAsync(cluster.DataDirectory);

        Assert.NotNull(running);
        Assert.Equal((int.Parse(lines[0], CultureInfo.InvariantCulture), "postgres", cluster.Port), (running.Value.Process.Pid, running.Value.Process.Name, running.Value.Port));

        // A copy that describes the postmaster in full is taken at its word (only the server's user and the caller write
        // where pid files live); a copy naming another data folder, noting another start time or naming a process that
        // is not a postgres is not.
        var other = Directory.CreateTempSubdirectory("pgvm-pidfile-").FullName;
        try
        {
            var stamp = long.Parse(lines[2], CultureInfo.InvariantCulture);
            async Task<bool> ProvenAsync(string pid, string folder, long noted)
            {
                string[] copy = [pid, folder, noted.ToString(CultureInfo.InvariantCulture), .. lines[3..]];
                await File.WriteAllLinesAsync(Path.Combine(other, "postmaster.pid"), copy, Ct);
                return await PostgresCluster.RunningPostmasterAsync(other) is not null;
            }

            Assert.True(await ProvenAsync(lines[0], other, stamp));
            Assert.False(await ProvenAsync(lines[0], cluster.DataDirectory, stamp));
            Assert.False(await ProvenAsync(lines[0], other, stamp - 3600));
            var self = ProcessIdentity.Of(Environment.ProcessId)!;
            Assert.False(await ProvenAsync(Environment.ProcessId.ToString(CultureInfo.InvariantCulture), other, self.StartedAt.ToUnixTimeSeconds()));
        }
        finally
        {
            Directory.Delete(other, recursive: true);
        }
    }
}
