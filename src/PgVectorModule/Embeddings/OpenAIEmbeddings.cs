using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Embeddings;
using PgVectorModule.Problems;
// Both namespaces define EmbeddingGenerationOptions; in this file the name means the M.E.AI one.
using EmbeddingGenerationOptions = Microsoft.Extensions.AI.EmbeddingGenerationOptions;

namespace PgVectorModule.Embeddings;

/// <summary>Thrown instead of a bare ClientResultException(401).</summary>
public sealed class OpenAIAuthenticationException(ClientResultException inner)
    : EmbeddingProviderException(Text, inner)
{
    public const string Text = "OpenAI rejected the API key (401): check OPENAI_API_KEY.";
}

/// <summary>
/// No answer from the embeddings server: the connection was refused, the host name does not resolve, TLS failed,
/// what came back was not HTTP, or nothing came back within <see cref="OpenAIEmbeddingSettings.RequestTimeout"/>.
/// </summary>
public sealed class OpenAIUnreachableException(Uri endpoint, string reason, TimeSpan? timedOutAfter, Exception? inner)
    : EmbeddingProviderException($"The embeddings API at {endpoint} could not be reached: {reason}.", inner)
{
    public Uri Endpoint { get; } = endpoint;

    /// <summary>What went wrong, in words (no trailing period).</summary>
    public string Reason { get; } = reason;

    /// <summary>Set when the request's time limit ran out, retries included.</summary>
    public TimeSpan? TimedOutAfter { get; } = timedOutAfter;
}

public static class OpenAIEmbeddingGeneratorFactory
{
    public static IEmbeddingGenerator<string, Embedding<float>> Create(OpenAIEmbeddingSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentException.ThrowIfNullOrWhiteSpace(settings.ApiKey, nameof(settings));
        ArgumentException.ThrowIfNullOrWhiteSpace(settings.Model, nameof(settings));
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.BatchSize, 1, nameof(settings));
        ArgumentOutOfRangeException.ThrowIfNegative(settings.MaxRetries, nameof(settings));
        if (settings.Dimensions is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(settings), "Dimensions must be positive.");
        }

        if (settings.RequestTimeout <= TimeSpan.Zero && settings.RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(settings), "RequestTimeout must be positive or infinite.");
        }

        var clientOptions = new OpenAIClientOptions();
        if (settings.Endpoint is not null)
        {
            clientOptions.Endpoint = settings.Endpoint;
        }

        // Always set a policy: ClientRetryPolicy.Default (what the SDK uses otherwise) is built during its own
        // static constructor before DefaultInitialDelay is assigned, so it retries 429s with no delay at all.
        clientOptions.RetryPolicy = settings.RetryPolicy ?? new ClientRetryPolicy(settings.MaxRetries);
        if (settings.NetworkTimeout is not null)
        {
            clientOptions.NetworkTimeout = settings.NetworkTimeout;
        }

        var client = new EmbeddingClient(settings.Model, new ApiKeyCredential(settings.ApiKey), clientOptions);
        // defaultModelDimensions becomes the request's "dimensions" unless EmbeddingGenerationOptions.Dimensions overrides it.
        IEmbeddingGenerator<string, Embedding<float>> inner = client.AsIEmbeddingGenerator(settings.Dimensions);
        return new OpenAIBatchingEmbeddingGenerator(inner, settings.BatchSize, settings.RequestTimeout);
    }
}

/// <summary>
/// Splits inputs into requests of at most BatchSize (M.E.AI's OpenAI generator sends everything in one request),
/// checks cancellation between requests, sums usage, bounds each request's time, retries included, and maps 401 to
/// <see cref="OpenAIAuthenticationException"/> and a server that cannot be reached to <see cref="OpenAIUnreachableException"/>.
/// </summary>
public sealed class OpenAIBatchingEmbeddingGenerator(IEmbeddingGenerator<string, Embedding<float>> inner, int batchSize, TimeSpan? requestTimeout = null)
    : DelegatingEmbeddingGenerator<string, Embedding<float>>(inner)
{
    public int BatchSize { get; } = batchSize > 0 ? batchSize : throw new ArgumentOutOfRangeException(nameof(batchSize));

    /// <summary>The most one request may take, retries included; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</summary>
    public TimeSpan RequestTimeout { get; } = requestTimeout ?? Timeout.InfiniteTimeSpan;

    /// <summary>The server requests go to (OPENAI_BASE_URL, else OpenAI's own), as the SDK reports it.</summary>
    public Uri Endpoint => InnerGenerator.GetService<EmbeddingGeneratorMetadata>()?.ProviderUri ?? new Uri("https://api.openai.com/v1");

    public override async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values,
        EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        string[] texts = values.ToArray();
        for (int i = 0; i < texts.Length; i++)
        {
            // The API answers 400 for an empty string; fail early with the index.
            if (string.IsNullOrEmpty(texts[i]))
            {
                throw new ArgumentException($"values[{i}] is null or empty; OpenAI rejects empty inputs.", nameof(values));
            }
        }

        var all = new GeneratedEmbeddings<Embedding<float>>(texts.Length);
        long? inputTokens = null, totalTokens = null;
        foreach (string[] batch in texts.Chunk(BatchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            GeneratedEmbeddings<Embedding<float>> part;
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(RequestTimeout);
            try
            {
                part = await base.GenerateAsync(batch, options, limit.Token);
            }
            catch (ClientResultException ex) when (ex.Status == 401)
            {
                throw new OpenAIAuthenticationException(ex);
            }
            catch (Exception ex) when (cancellationToken.IsCancellationRequested)
            {
                if (ex is OperationCanceledException)
                {
                    throw;
                }

                // The retry policy wraps a try cut short by cancellation, with the failed tries before it, in an
                // AggregateException: give the caller the cancellation it asked for.
                throw new OperationCanceledException("The embeddings request was cancelled.", ex, cancellationToken);
            }
            catch (Exception ex) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new OpenAIUnreachableException(Endpoint, $"no answer within {RequestTimeout.TotalSeconds:0.#} s, retries included", RequestTimeout, ex);
            }
            catch (Exception ex) when (NetworkFailure(ex, Endpoint) is { } reason)
            {
                throw new OpenAIUnreachableException(Endpoint, reason, null, ex);
            }

            if (part.Count != batch.Length)
            {
                throw new InvalidOperationException($"OpenAI returned {part.Count} embeddings for {batch.Length} inputs.");
            }

            all.AddRange(part);
            if (part.Usage is { } u)
            {
                inputTokens = (inputTokens ?? 0) + (u.InputTokenCount ?? 0);
                totalTokens = (totalTokens ?? 0) + (u.TotalTokenCount ?? 0);
            }
        }

        if (inputTokens is not null || totalTokens is not null)
        {
            all.Usage = new UsageDetails { InputTokenCount = inputTokens, TotalTokenCount = totalTokens };
        }

        return all;
    }

    /// <summary>
    /// Why no answer came, when the failure is the network's (refused, unresolved, TLS, not HTTP, per-try timeout);
    /// null for anything else. After its last retry the SDK throws an AggregateException of every try's failure.
    /// </summary>
    internal static string? NetworkFailure(Exception exception, Uri endpoint)
    {
        var last = exception is AggregateException { InnerExceptions.Count: > 0 } all ? all.InnerExceptions[^1] : exception;
        var tries = exception is AggregateException aggregate ? $" (tried {aggregate.InnerExceptions.Count} times)" : "";
        for (var e = last; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return $"connection refused, nothing listens at {endpoint.Host}:{endpoint.Port}{tries}";
                case SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData }:
                    return $"the host name {endpoint.Host} does not resolve{tries}";
                case SocketException { SocketErrorCode: SocketError.NetworkUnreachable or SocketError.HostUnreachable }:
                    return $"no route to {endpoint.Host}{tries}";
                case AuthenticationException tls:
                    return $"the TLS handshake with {endpoint.Host}:{endpoint.Port} failed, so the server does not speak https there " +
                           $"or its certificate is not trusted on this machine ({tls.Message.TrimEnd('.')})";
                case HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse or HttpRequestError.ResponseEnded } http:
                    return $"what came back from {endpoint.Host}:{endpoint.Port} is not HTTP ({http.Message.TrimEnd('.')})";
                case SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted }:
                    return $"the server closed the connection without answering{tries}";
                case TaskCanceledException or TimeoutException:
                    return $"no answer within the network timeout{tries}";
                case HttpRequestException http when http.InnerException is null:
                    return http.Message.TrimEnd('.') + tries;
            }
        }

        return null;
    }
}

/// <summary>ClientRetryPolicy with a fixed delay, for tests: a new ClientRetryPolicy never waits less than 0.8 s
/// (it only honours "Retry-After" when that is longer). Same retry classification (408/429/5xx) as the default.</summary>
public sealed class FixedDelayRetryPolicy(int maxRetries, TimeSpan delay) : ClientRetryPolicy(maxRetries)
{
    protected override TimeSpan GetNextDelay(PipelineMessage message, int tryCount) => delay;
}
