using System.Diagnostics;
using PgVectorModule.Embeddings;
using Spectre.Console;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>
/// Texts embedded through the embedder's cache (the library's <see cref="EmbeddingCache"/>, the one the lessons and tests
/// use): what the cache holds is read, the rest computed and saved a few batches at a time, so an interrupted run keeps
/// what it computed.
/// </summary>
public static class CachedEmbedder
{
    /// <param name="asQueries">Embed each text as a search query (after the model's query prefix) rather than as a document.</param>
    public static async Task<(IReadOnlyList<float[]> Vectors, EmbeddingRun Run)> EmbedAsync(TextEmbedder embedder, IReadOnlyList<string> texts, bool asQueries,
        ProgressTask task, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(task);
        var vectors = new List<float[]>(texts.Count);
        var local = embedder.Generator as LocalEmbeddingGenerator;
        var (tokensBefore, cachedBefore) = (embedder.TokensEmbedded, embedder.TextsFromCache);
        var watch = Stopwatch.StartNew();
        foreach (var chunk in texts.Chunk(256))
        {
            var embedded = asQueries
                ? await embedder.EmbedQueriesAsync(chunk, null, cancellationToken)
                : await embedder.EmbedManyAsync(chunk, null, cancellationToken);
            vectors.AddRange(embedded.Select(v => v.ToArray()));
            task.Increment(chunk.Length);
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var tokens = embedder.TokensEmbedded - tokensBefore;
        var fromCache = embedder.TextsFromCache - cachedBefore;
        var computed = texts.Count - fromCache;
        var options = local?.Options;
        return (vectors, new EmbeddingRun(texts.Count, computed, fromCache, seconds,
            computed == 0 ? 0 : computed / seconds, computed == 0 ? 0 : tokens / seconds,
            options?.BatchSize ?? 0, options?.MaxTokens ?? 0, options?.LongText.ToString() ?? "", options?.IntraOpNumThreads ?? 0));
    }
}
