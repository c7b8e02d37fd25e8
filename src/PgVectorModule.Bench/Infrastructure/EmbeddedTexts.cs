using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using Spectre.Console;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>
/// Real texts with their embeddings: a file (one text per line) or, with no file, the API documentation the installed
/// .NET SDK ships (<see cref="SdkDocTexts"/>), embedded by the configured model through the embedding cache, so a
/// second run reads what the first computed.
/// </summary>
public static class EmbeddedTexts
{
    /// <summary>--cache's help: the bench uses the lessons' cache unless told otherwise.</summary>
    public const string CacheHelp = "where embeddings are kept (default: EMBEDDING_CACHE_DIR, else the per-user cache folder; none with EMBEDDING_CACHE=off)";

    /// <summary>The cache ann's and scale's texts share, apart from the lessons' vectors and each dataset's.</summary>
    public const string TextsCollection = "ann";

    /// <summary>
    /// The embedding settings with the cache a command uses: the folder --cache names (which must then be writable), else
    /// the one EMBEDDING_CACHE and EMBEDDING_CACHE_DIR give the lessons; in either, a collection of the command's own.
    /// </summary>
    public static EmbeddingSettings WithCache(EmbeddingSettings settings, string? cacheFolder, string collection)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings with
        {
            Cache = cacheFolder is not null
                ? new EmbeddingCacheSettings(Path.GetFullPath(cacheFolder)) { Collection = collection, Required = true }
                : settings.Cache is { } configured ? configured with { Collection = collection } : null,
        };
    }

    public static async Task<(IReadOnlyList<string> Texts, IReadOnlyList<float[]> Vectors)> LoadAsync(BenchContext context, string? textsFile,
        string? cacheFolder, int dimensions, string command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        IReadOnlyList<string> texts;
        if (textsFile is not null)
        {
            if (!File.Exists(textsFile))
            {
                throw new SetupException($"{textsFile} does not exist; --texts takes a UTF-8 file with one text per line.", ExitCodes.InvalidInput);
            }

            texts = File.ReadLines(textsFile).Select(l => l.Trim()).Where(l => l.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        }
        else
        {
            var dotnetRoot = SdkDocTexts.DotnetRoot();
            var files = SdkDocTexts.Files(dotnetRoot);
            if (files.Count == 0)
            {
                throw new SetupException($"No API documentation found under {dotnetRoot}/packs; --sdk-docs needs a .NET SDK install. Use --texts FILE instead.",
                    ExitCodes.InvalidInput);
            }

            texts = SdkDocTexts.Read(files);
        }

        // The local model is fastest when a batch holds texts of one length: shortest first, so batches do.
        var ordered = texts.OrderBy(t => t.Length).ThenBy(t => t, StringComparer.Ordinal).ToList();
        using var embedder = TextEmbedder.Create(WithCache(context.Settings.Embeddings, cacheFolder, TextsCollection));
        if (embedder.Dimensions != dimensions)
        {
            throw new SetupException($"{command} works with {dimensions} dimensions; {embedder.Identity} gives {embedder.Dimensions}. Use EMBEDDING_PROVIDER=local, or OPENAI_EMBEDDING_DIMENSIONS={dimensions}.",
                ExitCodes.EmbeddingMismatch);
        }

        var where = embedder.Cache?.Folder ?? "no cache: EMBEDDING_CACHE=off";
        IReadOnlyList<float[]> vectors = [];
        EmbeddingRun run = default!;
        await context.Progress().StartAsync(async progress =>
        {
            var task = progress.AddTask($"embedding {ordered.Count:N0} texts (cached in {where})", maxValue: ordered.Count);
            (vectors, run) = await CachedEmbedder.EmbedAsync(embedder, ordered, asQueries: false, task, cancellationToken);
        });
        context.Console.MarkupLine(Markup.Escape($"{run.Texts:N0} texts: {run.Embedded:N0} embedded now ({run.Seconds:N1} s), {run.FromCache:N0} from the cache {where}."));
        return (ordered, vectors);
    }
}
