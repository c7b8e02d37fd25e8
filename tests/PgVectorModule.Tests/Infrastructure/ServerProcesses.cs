using System.Diagnostics;
using System.Globalization;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// What is running on this machine: the check that a lesson left no server behind. The Process API gives ids but not
/// command lines, so each process's command line comes from ps (POSIX: the same columns on Linux, macOS and the BSDs),
/// run through it; no system's own process folder is read.
/// </summary>
public static class ServerProcesses
{
    /// <summary>Command lines of running processes that mention the folder of a lesson run by process <paramref name="owner"/>.</summary>
    public static IReadOnlyList<string> StartedBy(string lessonPrefix, int owner)
    {
        var marker = $"{lessonPrefix}-{owner}-";
        return All().Where(p => p.CommandLine.Contains("pgvector-module-servers", StringComparison.Ordinal) && p.CommandLine.Contains(marker, StringComparison.Ordinal))
            .Select(p => p.CommandLine.Trim()).ToList();
    }

    /// <summary>The ids of running processes whose command line names a path under <paramref name="folder"/>.</summary>
    public static IReadOnlyList<int> Running(string folder) =>
        All().Where(p => p.CommandLine.Contains(folder + "/", StringComparison.Ordinal)).Select(p => p.Pid).ToList();

    /// <summary>Every process's id and command line (its arguments joined by spaces), as ps prints them at full width.</summary>
    private static List<(int Pid, string CommandLine)> All()
    {
        using var ps = Process.Start(new ProcessStartInfo("ps", ["-axww", "-o", "pid=", "-o", "command="]) { RedirectStandardOutput = true, UseShellExecute = false })
                       ?? throw new InvalidOperationException("ps did not start.");
        var output = ps.StandardOutput.ReadToEnd();
        ps.WaitForExit();
        var found = new List<(int, string)>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var trimmed = line.TrimStart();
            var space = trimmed.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && int.TryParse(trimmed[..space], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != ps.Id)
            {
                found.Add((pid, trimmed[(space + 1)..]));
            }
        }

        return found;
    }
}
