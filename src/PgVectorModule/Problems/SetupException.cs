namespace PgVectorModule.Problems;

/// <summary>
/// A problem the user can fix (no database, a bad URL, a missing extension...). Lessons print
/// <see cref="Exception.Message"/> as one paragraph, without a stack trace, and exit with <see cref="ExitCode"/>.
/// </summary>
public sealed class SetupException(string message, int exitCode, Exception? inner = null)
    : Exception(message, inner)
{
    public int ExitCode { get; } = exitCode;
}
