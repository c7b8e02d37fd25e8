using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// Loopback stand-in for OpenAI's POST /v1/chat/completions: checks the bearer key (401 otherwise), records each
/// request's JSON, answers 429 a given number of times first, and streams <see cref="Answer"/> as server-sent events
/// in a few pieces (or whole, when the client does not ask for a stream), as the API does.
/// </summary>
public sealed class FakeChatServer(string apiKey) : LoopbackHttpServer
{
    public const string DefaultAnswer = "Stop training early, before the error on unseen examples climbs [1]. Adding noise to the inputs and shrinking the weights delay it too [1][2].";

    public string ApiKey { get; } = apiKey;

    /// <summary>What OPENAI_BASE_URL is set to.</summary>
    public Uri Endpoint => new($"http://127.0.0.1:{Port}/v1");

    public string Answer { get; set; } = DefaultAnswer;

    /// <summary>The JSON bodies of the requests that were answered 200, in order.</summary>
    public ConcurrentQueue<JsonNode> Requests { get; } = new();

    /// <summary>Statuses answered, in order.</summary>
    public ConcurrentQueue<int> Statuses { get; } = new();

    protected override async Task HandleAsync(HttpListenerContext context, HttpListenerResponse response)
    {
        var body = await ReadBodyAsync(context.Request);
        if (context.Request.HttpMethod != "POST" || context.Request.Url?.AbsolutePath != "/v1/chat/completions")
        {
            await AnswerJsonAsync(response, 404, OpenAIError("Not found", "invalid_request_error", null));
            return;
        }

        if (context.Request.Headers["Authorization"] != "Bearer " + ApiKey)
        {
            await AnswerJsonAsync(response, 401, OpenAIError("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"));
            return;
        }

        if (TakeRateLimit())
        {
            response.AddHeader("Retry-After", "0");
            response.AddHeader("retry-after-ms", "1");
            await AnswerJsonAsync(response, 429, OpenAIError("Rate limit reached.", "requests", "rate_limit_exceeded"));
            return;
        }

        var json = JsonNode.Parse(body)!;
        Requests.Enqueue(json);
        var model = json["model"]?.GetValue<string>() ?? "unknown";
        if (json["stream"]?.GetValue<bool>() != true)
        {
            await AnswerJsonAsync(response, 200, new JsonObject
            {
                ["id"] = "chatcmpl-fake", ["object"] = "chat.completion", ["created"] = 1700000000, ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = Answer }, ["finish_reason"] = "stop",
                }),
            }.ToJsonString());
            return;
        }

        Statuses.Enqueue(200);
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.SendChunked = true;
        var pieces = Answer.Split(' ').Select((w, i) => i == 0 ? w : " " + w).Chunk(4).Select(p => string.Concat(p)).ToList();
        for (var i = 0; i <= pieces.Count; i++)
        {
            var delta = i < pieces.Count ? new JsonObject { ["content"] = pieces[i] } : new JsonObject();
            if (i == 0)
            {
                delta["role"] = "assistant";
            }

            var chunk = new JsonObject
            {
                ["id"] = "chatcmpl-fake", ["object"] = "chat.completion.chunk", ["created"] = 1700000000, ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = i < pieces.Count ? null : "stop" }),
            };
            await response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes($"data: {chunk.ToJsonString()}\n\n"));
            await response.OutputStream.FlushAsync();
        }

        await response.OutputStream.WriteAsync("data: [DONE]\n\n"u8.ToArray());
    }

    private Task AnswerJsonAsync(HttpListenerResponse response, int status, string json)
    {
        Statuses.Enqueue(status);
        return WriteJsonAsync(response, status, json);
    }
}
