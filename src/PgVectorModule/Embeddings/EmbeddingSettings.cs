using System.Globalization;
using PgVectorModule.Problems;

namespace PgVectorModule.Embeddings;

/// <summary>
/// Which embedding model the module uses, read from the same environment and .env as everything else. Every default of
/// the embedding settings is written here once; the providers' own option types take theirs from these.
/// </summary>
public sealed record EmbeddingSettings
{
    public const string DefaultOpenAIModel = "text-embedding-3-small";
    public const int DefaultOpenAIDimensions = 1536;

    /// <summary>
    /// Texts per local model call: single inputs, because padding a batch to its longest text costs more than batching
    /// saves on a small machine (measured in docs/benchmarks.md, "Local embedding throughput"). Short texts (the lessons'
    /// corpus, queries) embed at the same rate either way.
    /// </summary>
    public const int LocalDefaultBatchSize = 1;

    /// <summary>Inputs per embeddings API request (the API allows at most 2048 inputs and 300k tokens per request).</summary>
    public const int OpenAIDefaultBatchSize = 100;

    /// <summary>OPENAI_TIMEOUT_SECONDS's default: the most one embeddings request may take, retries included.</summary>
    public const int DefaultOpenAITimeoutSeconds = 60;

    /// <summary>The OpenAI SDKs' own default number of retries.</summary>
    public const int DefaultOpenAIMaxRetries = 3;

    public EmbeddingProviderKind Provider { get; init; } = EmbeddingProviderKind.Local;
    public string? OpenAIApiKey { get; init; }
    public string OpenAIModel { get; init; } = DefaultOpenAIModel;

    /// <summary>Sent as the API's <c>dimensions</c> parameter: text-embedding-3 models shorten their vectors on request.</summary>
    public int OpenAIDimensions { get; init; } = DefaultOpenAIDimensions;

    /// <summary>Another server that speaks the OpenAI embeddings API (a proxy, a local model server, a test double).</summary>
    public Uri? OpenAIBaseUrl { get; init; }

    /// <summary>The most one embeddings request may take, retries included (OPENAI_TIMEOUT_SECONDS), so a server that
    /// never answers ends the run with a sentence instead of holding it.</summary>
    public TimeSpan OpenAITimeout { get; init; } = TimeSpan.FromSeconds(DefaultOpenAITimeoutSeconds);

    /// <summary>Retries of a failed embeddings request (OPENAI_MAX_RETRIES, as the OpenAI SDKs' max_retries): on 408, 429,
    /// 5xx and network errors, after 0.8 s, 1.6 s, 3.2 s...; 0 gives up at the first failure.</summary>
    public int OpenAIMaxRetries { get; init; } = DefaultOpenAIMaxRetries;

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

    /// <summary>
    /// Where vectors are kept between runs (EMBEDDING_CACHE, on by default; EMBEDDING_CACHE_DIR, by default the per-user
    /// cache folder), so a lesson run again reads the sample corpus's vectors instead of computing them. Null: every
    /// text is embedded afresh (EMBEDDING_CACHE=off, and what a settings object built in code starts with).
    /// </summary>
    public EmbeddingCacheSettings? Cache { get; init; }

    /// <summary>The EMBEDDING_LONG_TEXT value for a way of reading long texts: chunk or truncate.</summary>
    public static string LongTextName(LongTextHandling handling) => handling == LongTextHandling.Truncate ? "truncate" : "chunk";

    /// <summary>EMBEDDING_PROVIDER wins; without it, a set OPENAI_API_KEY means OpenAI and no key means local.</summary>
    public static EmbeddingSettings From(Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        string? Get(string name) => lookup(name) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

        var key = Get("OPENAI_API_KEY");
        var provider = Get("EMBEDDING_PROVIDER") is { } providerName
            ? EmbeddingProviderNames.Parse(providerName) ?? throw new SetupException(
                $"EMBEDDING_PROVIDER is '{providerName.ToLowerInvariant()}'; set it to {EmbeddingProviderNames.Local} (a model in process, offline) or {EmbeddingProviderNames.OpenAI}.", ExitCodes.Failed)
            : key is null ? EmbeddingProviderKind.Local : EmbeddingProviderKind.OpenAI;

        var localModel = Get("LOCAL_EMBEDDING_MODEL_PATH") is { } modelPath
            ? ModelFromFiles(Get, modelPath)
            : Get("LOCAL_EMBEDDING_MODEL") is { } modelName
                ? LocalEmbeddingModel.Find(modelName) ?? throw new SetupException(
                    $"LOCAL_EMBEDDING_MODEL is '{modelName}'; set it to {string.Join(" or ", LocalEmbeddingModel.All.Select(m => m.Id))} (the default is {LocalEmbeddingModel.Default.Id}), " +
                    "or give a model of your own with LOCAL_EMBEDDING_MODEL_PATH.",
                    ExitCodes.Failed)
                : LocalEmbeddingModel.Default;

        var cache = Get("EMBEDDING_CACHE")?.ToLowerInvariant() switch
        {
            null or EmbeddingCacheSettings.On => new EmbeddingCacheSettings(Get("EMBEDDING_CACHE_DIR") is { } folder ? Path.GetFullPath(folder) : EmbeddingCacheSettings.DefaultFolder()),
            EmbeddingCacheSettings.Off => null,
            var other => throw new SetupException($"EMBEDDING_CACHE is '{other}'; set it to on (keep vectors between runs, the default) or off (embed every text afresh).", ExitCodes.Failed),
        };

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
            OpenAITimeout = TimeSpan.FromSeconds(PositiveInt(Get("OPENAI_TIMEOUT_SECONDS"), "OPENAI_TIMEOUT_SECONDS", DefaultOpenAITimeoutSeconds)),
            OpenAIMaxRetries = Retries(Get("OPENAI_MAX_RETRIES")),
            ProviderChosenByKey = provider == EmbeddingProviderKind.OpenAI && Get("EMBEDDING_PROVIDER") is null,
            LocalModel = localModel,
            BatchSize = PositiveInt(Get("EMBEDDING_BATCH_SIZE"), "EMBEDDING_BATCH_SIZE", provider == EmbeddingProviderKind.Local ? LocalDefaultBatchSize : OpenAIDefaultBatchSize),
            LocalLongText = Get("EMBEDDING_LONG_TEXT")?.ToLowerInvariant() switch
            {
                null => LongTextHandling.ChunkAndAverage,
                var name when name == LongTextName(LongTextHandling.ChunkAndAverage) => LongTextHandling.ChunkAndAverage,
                var name when name == LongTextName(LongTextHandling.Truncate) => LongTextHandling.Truncate,
                var other => throw new SetupException($"EMBEDDING_LONG_TEXT is '{other}'; set it to chunk (average overlapping chunks) or truncate (keep the first word pieces the model reads at once).", ExitCodes.Failed),
            },
            Cache = cache,
        };
    }

    /// <summary>
    /// LOCAL_EMBEDDING_MODEL_PATH and its companions: a BERT-family ONNX model of your own (bge-small, e5-small, gte-small,
    /// a multilingual BERT) with its tokenizer, pooling, normalisation, length and prefixes. The files must exist now;
    /// that they fit each other is checked when the model loads.
    /// </summary>
    private static LocalEmbeddingModel ModelFromFiles(Func<string, string?> get, string modelPath)
    {
        var onnx = Path.GetFullPath(modelPath);
        if (!File.Exists(onnx))
        {
            throw new SetupException($"LOCAL_EMBEDDING_MODEL_PATH names {onnx}, which does not exist: give the path of the model's .onnx file, or unset it for the packaged {LocalEmbeddingModel.Default.Id}.", ExitCodes.Failed);
        }

        string tokenizer;
        if (get("LOCAL_EMBEDDING_MODEL_TOKENIZER") is { } given)
        {
            tokenizer = Path.GetFullPath(given);
            if (!File.Exists(tokenizer))
            {
                throw new SetupException($"LOCAL_EMBEDDING_MODEL_TOKENIZER names {tokenizer}, which does not exist: give the path of the model's vocab.txt or tokenizer.json.", ExitCodes.Failed);
            }
        }
        else
        {
            // Beside the .onnx file, or one folder up (Optimum exports put model.onnx in onnx/ and the tokenizer at the top).
            var folder = Path.GetDirectoryName(onnx)!;
            tokenizer = new[] { folder, Path.GetDirectoryName(folder) }.OfType<string>()
                .SelectMany(f => new[] { Path.Combine(f, "tokenizer.json"), Path.Combine(f, "vocab.txt") })
                .FirstOrDefault(File.Exists) ?? throw new SetupException(
                    $"No tokenizer.json or vocab.txt is beside {onnx}: set LOCAL_EMBEDDING_MODEL_TOKENIZER to the one that came with the model.", ExitCodes.Failed);
        }

        var pooling = get("LOCAL_EMBEDDING_MODEL_POOLING")?.ToLowerInvariant() switch
        {
            null or "mean" => LocalPooling.Mean,
            "cls" => LocalPooling.Cls,
            var other => throw new SetupException($"LOCAL_EMBEDDING_MODEL_POOLING is '{other}'; set it to mean (the average of the word pieces: MiniLM, e5, gte) or cls (the [CLS] position: bge, arctic-embed), as the model card says.", ExitCodes.Failed),
        };
        var normalize = get("LOCAL_EMBEDDING_MODEL_NORMALIZE")?.ToLowerInvariant() switch
        {
            null or "true" or "on" or "yes" => true,
            "false" or "off" or "no" => false,
            var other => throw new SetupException($"LOCAL_EMBEDDING_MODEL_NORMALIZE is '{other}'; set it to true (vectors of length 1, the default) or false.", ExitCodes.Failed),
        };
        var maxTokens = PositiveInt(get("LOCAL_EMBEDDING_MODEL_MAX_TOKENS"), "LOCAL_EMBEDDING_MODEL_MAX_TOKENS", 512);
        if (maxTokens < 64)
        {
            // Long texts are read in windows that share 32 word pieces with the next: a window must be wider than that.
            throw new SetupException($"LOCAL_EMBEDDING_MODEL_MAX_TOKENS is {maxTokens}; use at least 64, normally the model's own length (512 for most BERT models).", ExitCodes.Failed);
        }

        // A prefix is the text a model was trained to see first ("query: "); settings lose trailing spaces, so one is put back.
        static string Prefix(string? value) => value is null ? "" : value.EndsWith(' ') ? value : value + " ";
        var name = get("LOCAL_EMBEDDING_MODEL") ?? DefaultName(onnx);
        return LocalEmbeddingModel.FromFiles(name, onnx, tokenizer, pooling, maxTokens, normalize,
            Prefix(get("LOCAL_EMBEDDING_MODEL_QUERY_PREFIX")), Prefix(get("LOCAL_EMBEDDING_MODEL_DOCUMENT_PREFIX")));
    }

    /// <summary>The name recorded beside a table's vectors: the model's folder for a file named model.onnx (bge-small-en-v1.5), else the file's name.</summary>
    private static string DefaultName(string onnx)
    {
        var folder = Path.GetDirectoryName(onnx)!;
        if (!Path.GetFileNameWithoutExtension(onnx).Equals("model", StringComparison.OrdinalIgnoreCase))
        {
            return Path.GetFileNameWithoutExtension(onnx);
        }

        var named = Path.GetFileName(folder).Equals("onnx", StringComparison.OrdinalIgnoreCase) ? Path.GetDirectoryName(folder) : folder;
        return Path.GetFileName(named) is { Length: > 0 } n ? n : "model";
    }

    private static int Retries(string? value) =>
        value is null
            ? DefaultOpenAIMaxRetries
            : int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 10
                ? n
                : throw new SetupException($"OPENAI_MAX_RETRIES is '{value}'; it must be a whole number from 0 (no retry) to 10.", ExitCodes.Failed);

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
