using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// Loopback stand-in for a text-embeddings-inference re-ranker: POST /rerank with {query, texts} answered by a list of
/// {index, score}, highest first. Each text's score is its index (the last text scores highest), so a re-ranked list
/// comes back reversed and a test knows what moved. Checks a bearer key when given one (401 otherwise); answers 429 a
/// given number of times first; or answers whatever body it is told to.
/// </summary>
public sealed class FakeRerankServer : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Task _loop;
    private readonly CancellationTokenSource _stop = new();
    private int _pending429;

    public FakeRerankServer(string? apiKey = null)
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

    public string? ApiKey { get; }
    public int Port { get; }

    /// <summary>What RERANK_URL is set to: the server's root.</summary>
    public Uri Root => new($"http://127.0.0.1:{Port}");

    /// <summary>The JSON bodies of the requests, in order.</summary>
    public ConcurrentQueue<JsonNode> Requests { get; } = new();

    /// <summary>Statuses answered, in order.</summary>
    public ConcurrentQueue<int> Statuses { get; } = new();

    /// <summary>When set, this body comes back with 200 instead of the scores (a server of another kind).</summary>
    public string? OverrideBody { get; set; }

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
        string body;
        using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync();
        }

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
        else if (Interlocked.Decrement(ref _pending429) >= 0)
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
        var bytes = Encoding.UTF8.GetBytes(reply);
        response.StatusCode = status;
        response.KeepAlive = false;
        response.ContentType = "application/json";
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes);
    }

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
