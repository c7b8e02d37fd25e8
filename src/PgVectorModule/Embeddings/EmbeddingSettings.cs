using System.Globalization;
using PgVectorModule.Configuration;

namespace PgVectorModule.Embeddings;

public enum EmbeddingProviderKind
{
    /// <summary>A model in process (all-MiniLM-L6-v2 unless LOCAL_EMBEDDING_MODEL names another): no network, no key.</summary>
    Local,

    /// <summary>OpenAI's embeddings API (or any server that speaks it).</summary>
    OpenAI,
}

/// <summary>Which embedding model the module uses, read from the same environment and .env as everything else.</summary>
public sealed record EmbeddingSettings
{
    public const string DefaultOpenAIModel = "text-embedding-3-small";
    public const int DefaultOpenAIDimensions = 1536;

    /// <summary>
    /// Texts per local model call. Measured on 2 cores (SciFact abstracts, docs/benchmarks.md): single inputs
    /// 22 docs/s, batches of 8 17, of 32 16; padding a batch to its longest text costs more than batching saves.
    /// Short texts (the lessons' corpus, queries) embed at the same rate either way.
    /// </summary>
    public const int LocalDefaultBatchSize = 1;

    public EmbeddingProviderKind Provider { get; init; } = EmbeddingProviderKind.Local;
    public string? OpenAIApiKey { get; init; }
    public string OpenAIModel { get; init; } = DefaultOpenAIModel;

    /// <summary>Sent as the API's <c>dimensions</c> parameter: text-embedding-3 models shorten their vectors on request.</summary>
    public int OpenAIDimensions { get; init; } = DefaultOpenAIDimensions;

    /// <summary>Another server that speaks the OpenAI embeddings API (a proxy, a local model server, a test double).</summary>
    public Uri? OpenAIBaseUrl { get; init; }

    /// <summary>The most one embeddings request may take, retries included (OPENAI_TIMEOUT_SECONDS), so a server that
    /// never answers ends the run with a sentence instead of holding it.</summary>
    public TimeSpan OpenAITimeout { get; init; } = OpenAIEmbeddingSettings.DefaultRequestTimeout;

    /// <summary>True when OpenAI was chosen only because OPENAI_API_KEY is set (EMBEDDING_PROVIDER is not): messages say so.</summary>
    public bool ProviderChosenByKey { get; init; }

    /// <summary>Texts per model call (local) or per HTTP request (OpenAI).</summary>
    public int BatchSize { get; init; } = LocalDefaultBatchSize;

    /// <summary>Which model the local provider runs: all-MiniLM-L6-v2 (the default) or snowflake-arctic-embed-xs.</summary>
    public LocalEmbeddingModel LocalModel { get; init; } = LocalEmbeddingModel.Default;

    /// <summary>
    /// What the local model does with a text over the word pieces it reads at once (256 for all-MiniLM-L6-v2, 512 for
    /// snowflake-arctic-embed-xs): embed overlapping chunks and average them (the default: no text is lost), or keep
    /// the first ones (what sentence-transformers does; faster on long texts).
    /// </summary>
    public LongTextHandling LocalLongText { get; init; } = LongTextHandling.ChunkAndAverage;

    /// <summary>The EMBEDDING_LONG_TEXT value for a way of reading long texts: chunk or truncate.</summary>
    public static string LongTextName(LongTextHandling handling) => handling == LongTextHandling.Truncate ? "truncate" : "chunk";

    /// <summary>EMBEDDING_PROVIDER wins; without it, a set OPENAI_API_KEY means OpenAI and no key means local.</summary>
    public static EmbeddingSettings From(Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        string? Get(string name) => lookup(name) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

        var key = Get("OPENAI_API_KEY");
        var provider = Get("EMBEDDING_PROVIDER")?.ToLowerInvariant() switch
        {
            null => key is null ? EmbeddingProviderKind.Local : EmbeddingProviderKind.OpenAI,
            "local" => EmbeddingProviderKind.Local,
            "openai" => EmbeddingProviderKind.OpenAI,
            var other => throw new SetupException($"EMBEDDING_PROVIDER is '{other}'; set it to local (a model in process, offline) or openai.", ExitCodes.Failed),
        };

        var localModel = Get("LOCAL_EMBEDDING_MODEL") is { } modelName
            ? LocalEmbeddingModel.Find(modelName) ?? throw new SetupException(
                $"LOCAL_EMBEDDING_MODEL is '{modelName}'; set it to {string.Join(" or ", LocalEmbeddingModel.All.Select(m => m.Id))} (the default is {LocalEmbeddingModel.Default.Id}).",
                ExitCodes.Failed)
            : LocalEmbeddingModel.Default;

        Uri? baseUrl = null;
        if (Get("OPENAI_BASE_URL") is { } url && !Uri.TryCreate(url, UriKind.Absolute, out baseUrl))
        {
            throw new SetupException($"OPENAI_BASE_URL '{url}' is not an absolute URL; use for example http://localhost:8080/v1.", ExitCodes.Failed);
        }

        return new EmbeddingSettings
        {
            Provider = provider,
            OpenAIApiKey = key,
            OpenAIModel = Get("OPENAI_EMBEDDING_MODEL") ?? DefaultOpenAIModel,
            OpenAIDimensions = PositiveInt(Get("OPENAI_EMBEDDING_DIMENSIONS"), "OPENAI_EMBEDDING_DIMENSIONS", DefaultOpenAIDimensions),
            OpenAIBaseUrl = baseUrl,
            OpenAITimeout = TimeSpan.FromSeconds(PositiveInt(Get("OPENAI_TIMEOUT_SECONDS"), "OPENAI_TIMEOUT_SECONDS", (int)OpenAIEmbeddingSettings.DefaultRequestTimeout.TotalSeconds)),
            ProviderChosenByKey = provider == EmbeddingProviderKind.OpenAI && Get("EMBEDDING_PROVIDER") is null,
            LocalModel = localModel,
            BatchSize = PositiveInt(Get("EMBEDDING_BATCH_SIZE"), "EMBEDDING_BATCH_SIZE", provider == EmbeddingProviderKind.Local ? LocalDefaultBatchSize : 100),
            LocalLongText = Get("EMBEDDING_LONG_TEXT")?.ToLowerInvariant() switch
            {
                null => LongTextHandling.ChunkAndAverage,
                var name when name == LongTextName(LongTextHandling.ChunkAndAverage) => LongTextHandling.ChunkAndAverage,
                var name when name == LongTextName(LongTextHandling.Truncate) => LongTextHandling.Truncate,
                var other => throw new SetupException($"EMBEDDING_LONG_TEXT is '{other}'; set it to chunk (average overlapping chunks) or truncate (keep the first word pieces the model reads at once).", ExitCodes.Failed),
            },
        };
    }

    private static int PositiveInt(string? value, string name, int fallback)
    {
        if (value is null)
        {
            return fallback;
        }

        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new SetupException($"{name} is '{value}'; it must be a whole number above zero.", ExitCodes.Failed);
    }
}
