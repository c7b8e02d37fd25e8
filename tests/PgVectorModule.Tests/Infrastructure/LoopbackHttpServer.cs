using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// What every loopback stand-in for an HTTP API shares: an <see cref="HttpListener"/> on 127.0.0.1 at a free port,
/// the accept loop, one connection per request, a given number of 429 answers first, JSON replies, and a clean stop.
/// A server of one API derives from it and answers in <see cref="HandleAsync"/>.
/// </summary>
public abstract class LoopbackHttpServer : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Task _loop;
    private readonly CancellationTokenSource _stop = new();
    private int _pending429;

    protected LoopbackHttpServer()
    {
        (_listener, Port) = StartOnFreePort();
        _loop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    /// <summary>The server's root, <c>http://127.0.0.1:PORT</c>.</summary>
    public Uri Root => new($"http://127.0.0.1:{Port}");

    /// <summary>The next <paramref name="times"/> requests that get past the key check are answered 429.</summary>
    public void RespondWith429(int times) => Interlocked.Exchange(ref _pending429, times);

    /// <summary>Answers one request; the response is closed afterwards.</summary>
    protected abstract Task HandleAsync(HttpListenerContext context, HttpListenerResponse response);

    /// <summary>Whether this request is one of those to answer 429 (counts it down).</summary>
    protected bool TakeRateLimit()
    {
        while (true)
        {
            var current = Volatile.Read(ref _pending429);
            if (current <= 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _pending429, current - 1, current) == current)
            {
                return true;
            }
        }
    }

    protected static async Task<string> ReadBodyAsync(HttpListenerRequest request)
    {
        using var reader = new StreamReader(request.InputStream, Encoding.UTF8);
        return await reader.ReadToEndAsync();
    }

    protected static async Task WriteJsonAsync(HttpListenerResponse response, int status, string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes);
    }

    /// <summary>An error body as OpenAI's API writes one.</summary>
    protected static string OpenAIError(string message, string type, string? code) =>
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code } }.ToJsonString();

    private static (HttpListener, int) StartOnFreePort()
    {
        for (var attempt = 0; ; attempt++)
        {
            // Ask the system for a free port, then hand it to HttpListener (a small race: retried on a conflict).
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return (listener, port);
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                listener.Close();
            }
        }
    }

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

            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        using var response = context.Response;
        // HttpListener sometimes drops a kept-alive connection the client reuses at once (a quick retry then fails with
        // "response ended prematurely"): one connection per request keeps the retry tests deterministic.
        response.KeepAlive = false;
        try
        {
            await HandleAsync(context, response);
        }
        catch (Exception e)
        {
            try
            {
                await WriteJsonAsync(response, 500, OpenAIError(e.Message, "server_error", null));
            }
            catch (Exception) when (e is not OutOfMemoryException)
            {
                // The client has gone.
            }
        }
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
        GC.SuppressFinalize(this);
    }
}
