using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;

namespace PgVectorModule.Answers;

/// <summary>
/// A client of a re-rank server of the kind text-embeddings-inference serves: POST /rerank with the query and the texts,
/// a score per text back (a cross-encoder reads query and text together, which two separate vectors cannot). Every way
/// the server can fail ends in one <see cref="SetupException"/> sentence with exit code 7, as the embeddings server's do.
/// </summary>
public sealed class HttpReranker : IDisposable
{
    /// <summary>Retries after a 429 (honouring Retry-After, at most <see cref="MaxRetryDelay"/> each) before giving up.</summary>
    public const int MaxRetries = 2;

    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    private const string Offline = "or unset RERANK_URL to re-rank offline";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly HttpClient _http;

    public HttpReranker(AnswerSettings settings, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Endpoint = RerankEndpoint(settings.RerankUrl ?? throw new ArgumentException("RerankUrl is not set.", nameof(settings)));
        Timeout = settings.RerankTimeout;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        // The request's own limit (below) bounds it, retries included; HttpClient's 100 s would only hide it.
        _http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;
        if (settings.RerankApiKey is { } key)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
    }

    /// <summary>Where requests go: RERANK_URL with /rerank added (unless it already ends so).</summary>
    public Uri Endpoint { get; }

    public TimeSpan Timeout { get; }

    public static Uri RerankEndpoint(Uri root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var text = root.ToString().TrimEnd('/');
        return text.EndsWith("/rerank", StringComparison.OrdinalIgnoreCase) ? new Uri(text) : new Uri(text + "/rerank");
    }

    /// <summary>One score per text, in the texts' order (higher: more relevant to the query).</summary>
    public async Task<IReadOnlyList<double>> ScoreAsync(string query, IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0)
        {
            return [];
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(Timeout);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var response = await _http.PostAsJsonAsync(Endpoint, new RerankRequest(query, texts, Truncate: true), Json, limit.Token);
                if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < MaxRetries)
                {
                    await Task.Delay(RetryDelay(response), limit.Token);
                    continue;
                }

                var body = await response.Content.ReadAsStringAsync(limit.Token);
                return response.IsSuccessStatusCode ? Scores(body, texts.Count) : throw Refused(response.StatusCode, body, attempt + 1);
            }
            catch (SetupException)
            {
                throw;
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested)
            {
                throw e as OperationCanceledException ?? new OperationCanceledException("The re-rank request was cancelled.", e, cancellationToken);
            }
            catch (Exception e) when (limit.IsCancellationRequested)
            {
                throw new SetupException($"The re-rank server at {Endpoint} did not answer within {Timeout.TotalSeconds:0.#} s (RERANK_TIMEOUT_SECONDS, retries included). " +
                    $"Check that it runs and RERANK_URL, raise RERANK_TIMEOUT_SECONDS for a slow server, {Offline}.", ExitCodes.EmbeddingProviderFailed, e);
            }
            catch (Exception e) when (OpenAIBatchingEmbeddingGenerator.NetworkFailure(e, Endpoint) is { } reason)
            {
                throw new SetupException($"The re-rank server at {Endpoint} could not be reached: {reason}. Check that it runs and RERANK_URL, {Offline}.",
                    ExitCodes.EmbeddingProviderFailed, e);
            }
        }
    }

    private SetupException Refused(HttpStatusCode status, string body, int tries) => status switch
    {
        HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new SetupException(
            $"The re-rank server at {Endpoint} refused the request ({(int)status}): check RERANK_API_KEY (the key it expects), {Offline}.", ExitCodes.EmbeddingProviderFailed),
        HttpStatusCode.TooManyRequests => new SetupException(
            $"The re-rank server at {Endpoint} answered 429 Too Many Requests {tries} times: it is busy or rate-limited; wait and run again, {Offline}.", ExitCodes.EmbeddingProviderFailed),
        _ => new SetupException(
            $"The re-rank server at {Endpoint} answered {(int)status} ({FirstLine(body)}): check that RERANK_URL names a re-ranker (text-embeddings-inference with a cross-encoder serves POST /rerank), {Offline}.",
            ExitCodes.EmbeddingProviderFailed),
    };

    private IReadOnlyList<double> Scores(string body, int count)
    {
        List<RerankResult>? results;
        try
        {
            results = JsonSerializer.Deserialize<List<RerankResult>>(body, Json);
        }
        catch (JsonException e)
        {
            throw NotARerankServer($"its answer is not a JSON list of {{index, score}} ({e.Message.Split('.')[0]})", e);
        }

        var scores = new double?[count];
        foreach (var result in results ?? [])
        {
            if (result.Index < 0 || result.Index >= count || scores[result.Index] is not null)
            {
                throw NotARerankServer($"it scored text {result.Index.ToString(CultureInfo.InvariantCulture)} of {count.ToString(CultureInfo.InvariantCulture)}", null);
            }

            scores[result.Index] = result.Score;
        }

        return scores.Any(s => s is null)
            ? throw NotARerankServer($"it scored {scores.Count(s => s is not null)} of {count} texts", null)
            : scores.Select(s => s!.Value).ToList();
    }

    private SetupException NotARerankServer(string what, Exception? inner) =>
        new($"The server at {Endpoint} answered, but not as a re-rank server does: {what}. Check RERANK_URL, {Offline}.", ExitCodes.EmbeddingProviderFailed, inner);

    private static TimeSpan RetryDelay(HttpResponseMessage response)
    {
        var after = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
        return after > MaxRetryDelay ? MaxRetryDelay : after < TimeSpan.Zero ? TimeSpan.Zero : after;
    }

    private static string FirstLine(string body)
    {
        var line = body.Split('\n', 2)[0].Trim();
        return line.Length == 0 ? "no body" : line.Length > 200 ? line[..200] + "..." : line;
    }

    public void Dispose() => _http.Dispose();

    private sealed record RerankRequest(string Query, IReadOnlyList<string> Texts, bool Truncate);

    private sealed record RerankResult(int Index, double Score);
}
