namespace PgVectorModule.Embeddings;

/// <summary>Which embedding provider computes vectors (EMBEDDING_PROVIDER; <see cref="EmbeddingProviderNames"/> spells each).</summary>
public enum EmbeddingProviderKind
{
    /// <summary>A model in process (all-MiniLM-L6-v2 unless LOCAL_EMBEDDING_MODEL names another): no network, no key.</summary>
    Local,

    /// <summary>OpenAI's embeddings API (or any server that speaks it).</summary>
    OpenAI,
}
