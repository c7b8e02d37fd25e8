namespace PgVectorModule.Tests.Infrastructure;

/// <summary>What is running on this machine, read from /proc: the check that a lesson left no server behind.</summary>
public static class ServerProcesses
{
    /// <summary>Command lines of running processes that mention the folder of a lesson run by process <paramref name="owner"/>.</summary>
    public static IReadOnlyList<string> StartedBy(string lessonPrefix, int owner)
    {
        var marker = $"{lessonPrefix}-{owner}-";
        var found = new List<string>();
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out _))
            {
                continue;
            }

            try
            {
                var commandLine = File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ');
                if (commandLine.Contains("pgvector-module-servers", StringComparison.Ordinal) && commandLine.Contains(marker, StringComparison.Ordinal))
                {
                    found.Add(commandLine.Trim());
                }
            }
            catch (IOException)
            {
                // The process ended while it was being read.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    /// <summary>The ids of running processes whose command line names a path under <paramref name="folder"/>.</summary>
    public static IReadOnlyList<int> Running(string folder)
    {
        var found = new List<int>();
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ').Contains(folder + "/", StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while it was being read.
            }
        }

        return found;
    }
}
