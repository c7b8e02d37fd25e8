using System.Diagnostics;
using PgVectorModule.Embeddings;
using Spectre.Console;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>Texts embedded through a cache: what the cache holds is read, the rest computed and saved as it is done.</summary>
public static class CachedEmbedder
{
    public static async Task<(IReadOnlyList<float[]> Vectors, EmbeddingRun Run)> EmbedAsync(TextEmbedder embedder, EmbeddingCache? cache,
        IReadOnlyList<string> texts, ProgressTask task, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(task);
        var vectors = new float[texts.Count][];
        var missing = new List<int>();
        for (var i = 0; i < texts.Count; i++)
        {
            if (cache is not null && cache.TryGet(texts[i], out var cached))
            {
                vectors[i] = cached;
            }
            else
            {
                missing.Add(i);
            }
        }

        task.Value = texts.Count - missing.Count;
        var local = embedder.Generator as LocalEmbeddingGenerator;
        var tokensBefore = embedder.TokensEmbedded;
        var watch = Stopwatch.StartNew();
        // Chunks of a few batches, each saved as it is done, so an interrupted run keeps what it computed.
        foreach (var chunk in missing.Chunk(256))
        {
            var chunkTexts = chunk.Select(i => texts[i]).ToList();
            var embedded = await embedder.EmbedManyAsync(chunkTexts, null, cancellationToken);
            var arrays = embedded.Select(v => v.ToArray()).ToList();
            cache?.Append(chunkTexts, arrays);
            for (var k = 0; k < chunk.Length; k++)
            {
                vectors[chunk[k]] = arrays[k];
            }

            task.Increment(chunk.Length);
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var tokens = embedder.TokensEmbedded - tokensBefore;
        var options = local?.Options;
        return (vectors, new EmbeddingRun(texts.Count, missing.Count, texts.Count - missing.Count, seconds,
            missing.Count == 0 ? 0 : missing.Count / seconds, missing.Count == 0 ? 0 : tokens / seconds,
            options?.BatchSize ?? 0, options?.MaxTokens ?? 0, options?.LongText.ToString() ?? "", options?.IntraOpNumThreads ?? 0));
    }
}
