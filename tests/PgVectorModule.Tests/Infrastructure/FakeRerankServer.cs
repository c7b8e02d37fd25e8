using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// Loopback stand-in for a text-embeddings-inference re-ranker: POST /rerank with {query, texts} answered by a list of
/// {index, score}, highest first. Each text's score is its index (the last text scores highest), so a re-ranked list
/// comes back reversed and a test knows what moved. Checks a bearer key when given one (401 otherwise); answers 429 a
/// given number of times first; or answers whatever body it is told to.
/// </summary>
public sealed class FakeRerankServer(string? apiKey = null) : LoopbackHttpServer
{
    public string? ApiKey { get; } = apiKey;

    /// <summary>The JSON bodies of the requests, in order.</summary>
    public ConcurrentQueue<JsonNode> Requests { get; } = new();

    /// <summary>Statuses answered, in order.</summary>
    public ConcurrentQueue<int> Statuses { get; } = new();

    /// <summary>When set, this body comes back with 200 instead of the scores (a server of another kind).</summary>
    public string? OverrideBody { get; set; }

    protected override async Task HandleAsync(HttpListenerContext context, HttpListenerResponse response)
    {
        var body = await ReadBodyAsync(context.Request);
        int status;
        string reply;
        if (context.Request.HttpMethod != "POST" || context.Request.Url?.AbsolutePath != "/rerank")
        {
            (status, reply) = (404, """{"error":"Not Found","error_type":"Unhandled"}""");
        }
        else if (ApiKey is not null && context.Request.Headers["Authorization"] != "Bearer " + ApiKey)
        {
            (status, reply) = (401, """{"error":"Unauthorized","error_type":"Unauthorized"}""");
        }
        else if (TakeRateLimit())
        {
            response.AddHeader("Retry-After", "0");
            (status, reply) = (429, """{"error":"Model is overloaded","error_type":"overloaded"}""");
        }
        else
        {
            var json = JsonNode.Parse(body)!;
            Requests.Enqueue(json);
            var count = json["texts"]!.AsArray().Count;
            var results = new JsonArray(Enumerable.Range(0, count).Reverse()
                .Select(i => (JsonNode)new JsonObject { ["index"] = i, ["score"] = (double)i / count }).ToArray());
            (status, reply) = (200, OverrideBody ?? results.ToJsonString());
        }

        Statuses.Enqueue(status);
        await WriteJsonAsync(response, status, reply);
    }
}
