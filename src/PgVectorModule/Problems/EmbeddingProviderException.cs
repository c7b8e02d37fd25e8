namespace PgVectorModule.Problems;

/// <summary>
/// The embedding provider refused a request or could not be reached; the message says which, in one sentence.
/// The providers' own failures derive from it, so the hosts explain every one of them the same way.
/// </summary>
public abstract class EmbeddingProviderException(string message, Exception? inner)
    : InvalidOperationException(message, inner);
