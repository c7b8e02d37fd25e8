using System.ComponentModel;
using System.Diagnostics;

namespace PgVectorModule.Servers;

/// <summary>
/// A running process as the system knows it: its id, when it started and its program's name, read through the Process
/// API (the same on Linux and macOS). An id alone names whatever process has it now (ids are reused, and anyone can
/// write one into a file); the three together name one process, the one a run started and recorded, so the lesson
/// signals a process only when all three still match.
/// </summary>
/// <param name="StartedAt">When the process started (UTC).</param>
/// <param name="Name">Its program's name (postgres, pgbouncer, dotnet...).</param>
public sealed record ProcessIdentity(int Pid, DateTimeOffset StartedAt, string Name)
{
    /// <summary>
    /// How far two readings of one process's start time may differ: Linux counts it in clock ticks after a boot time
    /// known to the second, which moves when the system clock is set. A process id is not reused within a second.
    /// </summary>
    public static readonly TimeSpan StartTolerance = TimeSpan.FromSeconds(1);

    /// <summary>The process with this id now, or null when there is none (or it cannot be read).</summary>
    public static ProcessIdentity? Of(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return new ProcessIdentity(pid, new DateTimeOffset(process.StartTime.ToUniversalTime()), process.ProcessName);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or Win32Exception or NotSupportedException or IOException or UnauthorizedAccessException)
        {
            // Gone, or another user's process the system does not describe to this one.
            return null;
        }
    }

    /// <summary>
    /// Whether <paramref name="other"/> is this very process: the same id, name and start time. An identity without a
    /// name (a record written in an older format) matches nothing.
    /// </summary>
    public bool IsSameProcessAs(ProcessIdentity? other) =>
        other is not null && other.Pid == Pid && Name is { Length: > 0 } && other.Name == Name &&
        (other.StartedAt - StartedAt).Duration() <= StartTolerance;

    /// <summary>Whether this very process is still running: the same id, name and start time.</summary>
    public bool IsRunning() => IsSameProcessAs(Of(Pid));

    /// <summary>Whether this process started no earlier than <paramref name="other"/> did (within <see cref="StartTolerance"/>).</summary>
    public bool StartedNoEarlierThan(ProcessIdentity other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return StartedAt >= other.StartedAt - StartTolerance;
    }
}
