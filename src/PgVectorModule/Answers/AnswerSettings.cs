using PgVectorModule.Problems;

namespace PgVectorModule.Answers;

/// <summary>
/// How lesson 10 turns search results into answers: a re-rank server (RERANK_URL, else an offline second stage) and a
/// chat model (OPENAI_API_KEY, else an extractive answer). Read once, by <see cref="ModuleSettings"/>.
/// </summary>
public sealed record AnswerSettings
{
    public const string DefaultChatModel = "gpt-4o-mini";
    public const int DefaultRerankTimeoutSeconds = 30;
    public const int DefaultChatTimeoutSeconds = 60;

    /// <summary>
    /// A re-rank server of the kind text-embeddings-inference serves (POST /rerank with a query and texts, scores back),
    /// given as its root URL (the client adds /rerank). Null: the second stage runs offline.
    /// </summary>
    public Uri? RerankUrl { get; init; }

    /// <summary>Sent as a bearer token to the re-rank server when set (RERANK_API_KEY).</summary>
    public string? RerankApiKey { get; init; }

    /// <summary>The most one re-rank request may take, its retries included.</summary>
    public TimeSpan RerankTimeout { get; init; } = TimeSpan.FromSeconds(DefaultRerankTimeoutSeconds);

    /// <summary>OPENAI_API_KEY: with it, answers come from a chat model; without it, they are extractive.</summary>
    public string? OpenAIApiKey { get; init; }

    /// <summary>OPENAI_BASE_URL: another server speaking OpenAI's API (its root, ending in /v1). Null: OpenAI's own.</summary>
    public Uri? OpenAIBaseUrl { get; init; }

    /// <summary>OPENAI_CHAT_MODEL.</summary>
    public string ChatModel { get; init; } = DefaultChatModel;

    /// <summary>The most one chat answer may take, its retries and the whole stream included (OPENAI_TIMEOUT_SECONDS).</summary>
    public TimeSpan ChatTimeout { get; init; } = TimeSpan.FromSeconds(DefaultChatTimeoutSeconds);

    /// <summary>Retries on 408, 429, 5xx and network errors before the chat request gives up.</summary>
    public int ChatMaxRetries { get; init; } = 3;

    /// <summary>Whether answers come from a chat model (a key is set) rather than from the passages' own sentences.</summary>
    public bool UsesChatModel => OpenAIApiKey is not null;

    public static AnswerSettings From(Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        string? Get(string name) => lookup(name) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

        return new AnswerSettings
        {
            RerankUrl = Url(Get("RERANK_URL"), "RERANK_URL", "http://127.0.0.1:8080"),
            RerankApiKey = Get("RERANK_API_KEY"),
            RerankTimeout = TimeSpan.FromSeconds(Seconds(Get("RERANK_TIMEOUT_SECONDS"), "RERANK_TIMEOUT_SECONDS", DefaultRerankTimeoutSeconds)),
            OpenAIApiKey = Get("OPENAI_API_KEY"),
            OpenAIBaseUrl = Url(Get("OPENAI_BASE_URL"), "OPENAI_BASE_URL", "http://localhost:8080/v1"),
            ChatModel = Get("OPENAI_CHAT_MODEL") ?? DefaultChatModel,
            ChatTimeout = TimeSpan.FromSeconds(Seconds(Get("OPENAI_TIMEOUT_SECONDS"), "OPENAI_TIMEOUT_SECONDS", DefaultChatTimeoutSeconds)),
        };
    }

    private static Uri? Url(string? value, string name, string example)
    {
        if (value is null)
        {
            return null;
        }

        return Uri.TryCreate(value, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps)
            ? url
            : throw new SetupException($"{name} '{value}' is not an absolute http or https URL; use for example {example}.", ExitCodes.Failed);
    }

    private static int Seconds(string? value, string name, int fallback)
    {
        if (value is null)
        {
            return fallback;
        }

        return int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new SetupException($"{name} is '{value}'; set it to a whole number of seconds above 0 (the default is {fallback}).", ExitCodes.Failed);
    }
}
