using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using OpenAI;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;

namespace PgVectorModule.Answers;

/// <summary>
/// The chat model behind lesson 10's answers, as Microsoft.Extensions.AI's <see cref="IChatClient"/> over OpenAI's SDK
/// (any server speaking its chat completions API, through OPENAI_BASE_URL), and its failures as one sentence each.
/// </summary>
public static class ChatAnswers
{
    private const string Offline = "or unset OPENAI_API_KEY for an extractive answer, offline";

    /// <summary>Where requests go: OPENAI_BASE_URL, else OpenAI's own.</summary>
    public static Uri Endpoint(AnswerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings.OpenAIBaseUrl ?? new Uri("https://api.openai.com/v1");
    }

    public static IChatClient Create(AnswerSettings settings, PipelinePolicy? retryPolicy = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var key = settings.OpenAIApiKey ?? throw new ArgumentException("OpenAIApiKey is not set.", nameof(settings));
        var options = new OpenAIClientOptions
        {
            // An explicit policy: the SDK's default one retries 429s without waiting (see OpenAIEmbeddingGeneratorFactory).
            RetryPolicy = retryPolicy ?? new ClientRetryPolicy(settings.ChatMaxRetries),
        };
        if (settings.OpenAIBaseUrl is { } url)
        {
            options.Endpoint = url;
        }

        return new OpenAI.Chat.ChatClient(settings.ChatModel, new ApiKeyCredential(key), options).AsIChatClient();
    }

    /// <summary>
    /// Streams the answer to <paramref name="messages"/>, handing each piece of text to <paramref name="write"/> as it
    /// arrives, within <see cref="AnswerSettings.ChatTimeout"/> (retries and the whole stream included); returns the
    /// whole text. A server that fails ends in <see cref="Explain"/>'s sentence.
    /// </summary>
    public static async Task<string> StreamAsync(IChatClient chat, IList<ChatMessage> messages, AnswerSettings settings, Action<string> write,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chat);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(write);
        var answer = new System.Text.StringBuilder();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(settings.ChatTimeout);
        try
        {
            // Temperature 0: the same passages give the same answer, as near as the model allows.
            await foreach (var update in chat.GetStreamingResponseAsync(messages, new ChatOptions { Temperature = 0 }, limit.Token))
            {
                write(update.Text);
                answer.Append(update.Text);
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && Explain(e, settings, limit.IsCancellationRequested) is { } problem)
        {
            throw problem;
        }

        return answer.ToString().Trim();
    }

    /// <summary>
    /// The sentence for a chat request that failed, or null when the failure is not the server's (a bug keeps its trace).
    /// <paramref name="timedOut"/>: the request's own limit (OPENAI_TIMEOUT_SECONDS) ran out.
    /// </summary>
    public static SetupException? Explain(Exception exception, AnswerSettings settings, bool timedOut)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(settings);
        var endpoint = Endpoint(settings);
        if (timedOut)
        {
            return new SetupException($"The chat API at {endpoint} did not answer within {settings.ChatTimeout.TotalSeconds:0.#} s (OPENAI_TIMEOUT_SECONDS, retries and the whole answer included). " +
                $"Check your network and OPENAI_BASE_URL, raise OPENAI_TIMEOUT_SECONDS for a slow server, {Offline}.", ExitCodes.EmbeddingProviderFailed, exception);
        }

        var failure = exception is AggregateException { InnerExceptions.Count: > 0 } all ? all.InnerExceptions[^1] : exception;
        return failure switch
        {
            ClientResultException { Status: 401 } => new SetupException(
                $"The chat API at {endpoint} rejected the API key (401): check OPENAI_API_KEY, {Offline}.", ExitCodes.EmbeddingProviderFailed, exception),
            ClientResultException { Status: 429 } => new SetupException(
                $"The chat API at {endpoint} answered 429 Too Many Requests, retries included: the key's rate limit or quota is used up; wait and run again, check the account's quota, {Offline}.",
                ExitCodes.EmbeddingProviderFailed, exception),
            ClientResultException { Status: 404 } => new SetupException(
                $"The chat API at {endpoint} answered 404 for model {settings.ChatModel}: check OPENAI_CHAT_MODEL and OPENAI_BASE_URL (the API's root, ending in /v1), {Offline}.",
                ExitCodes.EmbeddingProviderFailed, exception),
            _ when OpenAIBatchingEmbeddingGenerator.NetworkFailure(exception, endpoint) is { } reason => new SetupException(
                $"The chat API at {endpoint} could not be reached: {reason}. Check your network and OPENAI_BASE_URL, {Offline}.", ExitCodes.EmbeddingProviderFailed, exception),
            ClientResultException { Status: > 0 } result => new SetupException(
                $"The chat API at {endpoint} answered {result.Status} for model {settings.ChatModel}: {result.Message.Split('\n')[0].TrimEnd('.')}. Check OPENAI_CHAT_MODEL and OPENAI_BASE_URL, {Offline}.",
                ExitCodes.EmbeddingProviderFailed, exception),
            System.Text.Json.JsonException or FormatException => new SetupException(
                $"The server at {endpoint} answered, but not as the chat completions API does ({failure.Message.Split('.')[0]}): check OPENAI_BASE_URL (the API's root, ending in /v1), {Offline}.",
                ExitCodes.EmbeddingProviderFailed, exception),
            _ => null,
        };
    }
}
