using System.ClientModel.Primitives;

namespace PgVectorModule.Embeddings;

/// <summary>How <see cref="OpenAIEmbeddingGeneratorFactory"/> builds a client; the defaults are <see cref="EmbeddingSettings"/>'s.</summary>
public sealed class OpenAIEmbeddingSettings
{
    /// <summary>OPENAI_API_KEY, as <see cref="EmbeddingSettings"/> read it (the environment, else .env).</summary>
    public required string ApiKey { get; init; }

    public string Model { get; init; } = EmbeddingSettings.DefaultOpenAIModel;

    /// <summary>Sent as the API's "dimensions" field on every request. text-embedding-3-* accept 1..native
    /// (1536 small / 3072 large); set null for text-embedding-ada-002, which rejects the field.</summary>
    public int? Dimensions { get; init; } = EmbeddingSettings.DefaultOpenAIDimensions;

    /// <summary>Null: https://api.openai.com/v1. The SDK appends "/embeddings".</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>Inputs per HTTP request.</summary>
    public int BatchSize { get; init; } = EmbeddingSettings.OpenAIDefaultBatchSize;

    /// <summary>Retries on 408/429/500/502/503/504 and network errors, used when RetryPolicy is null:
    /// new ClientRetryPolicy(MaxRetries) waits max(0.8 s * 2^(retry-1), Retry-After) = 0.8 s, 1.6 s, 3.2 s.</summary>
    public int MaxRetries { get; init; } = 3;

    /// <summary>Replaces the retry policy (tests use <see cref="FixedDelayRetryPolicy"/>). Not setting anything on
    /// OpenAIClientOptions would use ClientRetryPolicy.Default, whose backoff is 0 in System.ClientModel 1.16.0.</summary>
    public PipelinePolicy? RetryPolicy { get; init; }

    /// <summary>Null: the SDK default (100 s per try).</summary>
    public TimeSpan? NetworkTimeout { get; init; }

    /// <summary>
    /// The most one request may take, its retries and their waits included. Without it a server that accepts the
    /// connection but never answers holds a run for (MaxRetries + 1) network timeouts: almost seven minutes.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(EmbeddingSettings.DefaultOpenAITimeoutSeconds);
}
