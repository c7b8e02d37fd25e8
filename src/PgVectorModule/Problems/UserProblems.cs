namespace PgVectorModule.Problems;

/// <summary>
/// The hosts' (lessons', the bench's) one question of any failure: is it one a user can fix? Then it becomes one
/// sentence with the fix and a documented exit code. The database's failures are <see cref="DatabaseProblems"/>'s;
/// settings, the embedding provider and files are answered here. Anything else is a bug and keeps its stack trace.
/// </summary>
public static class UserProblems
{
    /// <param name="database">The database the program talks to, read only when a failure needs it; null when the
    /// settings themselves could not be read.</param>
    public static SetupException? Explain(Exception exception, Func<DatabaseTarget>? database)
    {
        ArgumentNullException.ThrowIfNull(exception);
        switch (exception)
        {
            case SetupException setup:
                return setup;
            case AggregateException { InnerExceptions.Count: 1 } single:
                return Explain(single.InnerExceptions[0], database);
        }

        if (database is not null && DatabaseProblems.Explain(exception, database) is { } problem)
        {
            return problem;
        }

        return exception switch
        {
            // TextEmbedder turns these into sentences; a caller that used a generator directly gets the same.
            EmbeddingProviderException =>
                new SetupException(exception.Message + " Check OPENAI_API_KEY and OPENAI_BASE_URL, or use the offline model with EMBEDDING_PROVIDER=local.",
                    ExitCodes.EmbeddingProviderFailed, exception),
            UnauthorizedAccessException =>
                new SetupException($"A file or folder cannot be used: {exception.Message.TrimEnd('.')}. Check its permissions, or choose another path.",
                    ExitCodes.FileUnavailable, exception),
            IOException { HResult: NoSpaceLeft or QuotaExceeded or ReadOnlyFileSystem or WindowsDiskFull } =>
                new SetupException($"A file cannot be written: {exception.Message.TrimEnd('.')}. Free some disk space (or choose a folder on another disk) and run again.",
                    ExitCodes.FileUnavailable, exception),
            _ => null,
        };
    }

    // How .NET reports the operating system's "disk full" family in IOException.HResult: the errno on Unix.
    private const int ReadOnlyFileSystem = 30;
    private const int NoSpaceLeft = 28;
    private const int QuotaExceeded = 122;
    private const int WindowsDiskFull = unchecked((int)0x80070070);
}
