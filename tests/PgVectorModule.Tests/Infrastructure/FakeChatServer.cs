using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// Loopback stand-in for OpenAI's POST /v1/chat/completions: checks the bearer key (401 otherwise), records each
/// request's JSON, answers 429 a given number of times first, and streams <see cref="Answer"/> as server-sent events
/// in a few pieces (or whole, when the client does not ask for a stream), as the API does.
/// </summary>
public sealed class FakeChatServer : IAsyncDisposable
{
    public const string DefaultAnswer = "Stop training early, before the error on unseen examples climbs [1]. Adding noise to the inputs and shrinking the weights delay it too [1][2].";

    private readonly HttpListener _listener;
    private readonly Task _loop;
    private readonly CancellationTokenSource _stop = new();
    private int _pending429;

    public FakeChatServer(string apiKey)
    {
        ApiKey = apiKey;
        for (var attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            Port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            _listener = new HttpListener();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try
            {
                _listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                _listener.Close();
            }
        }

        _loop = Task.Run(AcceptLoopAsync);
    }

    public string ApiKey { get; }
    public int Port { get; }

    /// <summary>What OPENAI_BASE_URL is set to.</summary>
    public Uri Endpoint => new($"http://127.0.0.1:{Port}/v1");

    public string Answer { get; set; } = DefaultAnswer;

    /// <summary>The JSON bodies of the requests that were answered 200, in order.</summary>
    public ConcurrentQueue<JsonNode> Requests { get; } = new();

    /// <summary>Statuses answered, in order.</summary>
    public ConcurrentQueue<int> Statuses { get; } = new();

    public void RespondWith429(int times) => Interlocked.Exchange(ref _pending429, times);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        using var response = context.Response;
        response.KeepAlive = false;
        string body;
        using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync();
        }

        if (context.Request.HttpMethod != "POST" || context.Request.Url?.AbsolutePath != "/v1/chat/completions")
        {
            await WriteAsync(response, 404, Error("Not found", "invalid_request_error", null));
            return;
        }

        if (context.Request.Headers["Authorization"] != "Bearer " + ApiKey)
        {
            await WriteAsync(response, 401, Error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"));
            return;
        }

        if (Interlocked.Decrement(ref _pending429) >= 0)
        {
            response.AddHeader("Retry-After", "0");
            response.AddHeader("retry-after-ms", "1");
            await WriteAsync(response, 429, Error("Rate limit reached.", "requests", "rate_limit_exceeded"));
            return;
        }

        var json = JsonNode.Parse(body)!;
        Requests.Enqueue(json);
        var model = json["model"]?.GetValue<string>() ?? "unknown";
        if (json["stream"]?.GetValue<bool>() != true)
        {
            await WriteAsync(response, 200, new JsonObject
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

    private async Task WriteAsync(HttpListenerResponse response, int status, string json)
    {
        Statuses.Enqueue(status);
        var bytes = Encoding.UTF8.GetBytes(json);
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes);
    }

    private static string Error(string message, string type, string? code) =>
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code } }.ToJsonString();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }
}
