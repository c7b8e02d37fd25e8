using System.Net;
using System.Net.Sockets;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// A loopback TCP listener that accepts every connection, reads what is sent and never answers: a server that has
/// hung. With a greeting it first sends that line, as a server of another protocol does (SSH, SMTP): what an HTTP or
/// TLS client meets when a URL names the wrong port. Connections stay open until the server is disposed.
/// </summary>
public sealed class SilentServer(string? greeting = null) : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _clients = [];
    private readonly CancellationTokenSource _stop = new();

    private Task? _loop;

    public int Port { get; private set; }

    /// <summary>Connections accepted so far.</summary>
    public int Accepted { get { lock (_clients) { return _clients.Count; } } }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            lock (_clients)
            {
                _clients.Add(client);
            }

            _ = DrainAsync(client, greeting);
        }
    }

    /// <summary>Starts listening on a free loopback port.</summary>
    public static SilentServer Start(string? greeting = null)
    {
        var server = new SilentServer(greeting);
        server._listener.Start();
        server.Port = ((IPEndPoint)server._listener.LocalEndpoint).Port;
        server._loop = Task.Run(server.AcceptAsync);
        return server;
    }

    private async Task DrainAsync(TcpClient client, string? hello)
    {
        var buffer = new byte[8192];
        try
        {
            if (hello is not null)
            {
                await client.GetStream().WriteAsync(System.Text.Encoding.ASCII.GetBytes(hello + "\r\n"), _stop.Token);
            }

            while (await client.GetStream().ReadAsync(buffer, _stop.Token) > 0)
            {
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested || client.Client is null || !client.Connected)
        {
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A loopback port where nothing listens (taken from the OS, then let go).</summary>
    public static int ClosedPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await (_loop ?? Task.CompletedTask);
        }
        catch (OperationCanceledException)
        {
        }

        lock (_clients)
        {
            foreach (var client in _clients)
            {
                client.Dispose();
            }
        }

        _stop.Dispose();
    }
}
