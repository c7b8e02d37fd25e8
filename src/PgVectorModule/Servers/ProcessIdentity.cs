using System.Globalization;

namespace PgVectorModule.Servers;

/// <summary>
/// A running process as the system knows it: its id, when it started and its command line. An id alone names whatever
/// process has it now (ids are reused, and anyone can write one into a file); the three together name one process,
/// the one a run started and recorded, so the lesson signals a process only when all three still match.
/// </summary>
/// <param name="StartTicks">When the process started: clock ticks since boot on Linux (/proc/PID/stat), seconds since 1970 elsewhere.</param>
/// <param name="CommandLine">Its arguments joined by spaces.</param>
public sealed record ProcessIdentity(int Pid, long StartTicks, string CommandLine)
{
    /// <summary>The process with this id now, or null when there is none (or it cannot be read).</summary>
    public static async Task<ProcessIdentity?> OfAsync(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        if (OperatingSystem.IsLinux())
        {
            try
            {
                var stat = await File.ReadAllTextAsync($"/proc/{pid}/stat");
                var commandLine = await File.ReadAllTextAsync($"/proc/{pid}/cmdline");
                // The command name (field 2) is in parentheses and may hold spaces and parentheses: count from the last ')'.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return commandLine.Length == 0 || !long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                    ? null // a zombie, or a kernel thread
                    : new ProcessIdentity(pid, ticks, commandLine.TrimEnd('\0').Replace('\0', ' '));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
            {
                return null;
            }
        }

        // macOS and the BSDs: ps prints the start time in a fixed 24-column format, then the command line.
        var ps = await LocalServers.RunAsync("ps", ["-o", "lstart=", "-o", "command=", "-p", pid.ToString(CultureInfo.InvariantCulture)], asServerUser: false, password: null, CancellationToken.None);
        var line = ps.Output.TrimEnd('\n');
        return ps.ExitCode == 0 && line.Length > 25 &&
               DateTime.TryParseExact(string.Join(' ', line[..24].Split(' ', StringSplitOptions.RemoveEmptyEntries)), "ddd MMM d HH:mm:ss yyyy", CultureInfo.InvariantCulture, DateTimeStyles.None, out var started)
            ? new ProcessIdentity(pid, new DateTimeOffset(started).ToUnixTimeSeconds(), line[25..].Trim())
            : null;
    }

    /// <summary>Whether this very process is still running: the same id, start time and command line.</summary>
    public async Task<bool> IsRunningAsync() => await OfAsync(Pid) == this;
}
