namespace PgVectorModule.Embeddings;

/// <summary>
/// The providers' names: EMBEDDING_PROVIDER's values, the provider an <see cref="EmbeddingIdentity"/> records beside a
/// table's vectors (embedding_models.provider), and what the messages tell a user to set. Spelled here only.
/// </summary>
public static class EmbeddingProviderNames
{
    public const string Local = "local";
    public const string OpenAI = "openai";

    public static string Of(EmbeddingProviderKind kind) => kind == EmbeddingProviderKind.OpenAI ? OpenAI : Local;

    /// <summary>The kind a name stands for (case-insensitive), or null for a name no provider has.</summary>
    public static EmbeddingProviderKind? Parse(string name) => name.ToLowerInvariant() switch
    {
        Local => EmbeddingProviderKind.Local,
        OpenAI => EmbeddingProviderKind.OpenAI,
        _ => null,
    };
}
