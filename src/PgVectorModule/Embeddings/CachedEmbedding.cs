namespace PgVectorModule.Embeddings;

/// <summary>
/// A vector as the embedding cache keeps it, with what the model reported when it computed it, so a text read from the
/// cache is still counted as chunked or truncated.
/// </summary>
/// <param name="TokenCount">Word pieces of the whole text, [CLS] and [SEP] included (0 for an API's vectors).</param>
/// <param name="Chunks">Sequences the text was embedded as (more than one: chunked and averaged).</param>
/// <param name="Truncated">True when only the first word pieces were read (EMBEDDING_LONG_TEXT=truncate).</param>
public sealed record CachedEmbedding(float[] Vector, int TokenCount = 0, int Chunks = 1, bool Truncated = false);
