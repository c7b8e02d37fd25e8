using System.Diagnostics;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Reliability;

/// <summary>The ways an embeddings server cannot be reached, each set up for real on loopback.</summary>
public enum EmbeddingServerFault
{
    /// <summary>A port where nothing listens.</summary>
    Refused,

    /// <summary>A host name in .invalid, which never resolves.</summary>
    Unresolvable,

    /// <summary>https:// to a listener that speaks plain HTTP (the fake embeddings server).</summary>
    TlsToPlainHttp,

    /// <summary>https:// to a listener that speaks another protocol (an SSH greeting).</summary>
    TlsToGarbage,

    /// <summary>http:// to a listener that speaks another protocol: what comes back is not HTTP.</summary>
    NotHttp,

    /// <summary>A listener that accepts the connection and never answers.</summary>
    NeverAnswers,
}

/// <summary>One fault, alive for one test: the URL to give OPENAI_BASE_URL and the words the sentence must hold.</summary>
public sealed class EmbeddingServerScenario : IAsyncDisposable
{
    public const string Key = "sk-test-key";

    /// <summary>OPENAI_TIMEOUT_SECONDS for the server that never answers: short, so the test is.</summary>
    public const int ShortTimeoutSeconds = 2;

    private readonly IAsyncDisposable? _server;

    private EmbeddingServerScenario(EmbeddingServerFault fault, Uri endpoint, string reason, IAsyncDisposable? server)
    {
        Fault = fault;
        Endpoint = endpoint;
        Reason = reason;
        _server = server;
    }

    public EmbeddingServerFault Fault { get; }
    public Uri Endpoint { get; }

    /// <summary>What the sentence must say about the failure, after "The embeddings API at {Endpoint}".</summary>
    public string Reason { get; }

    public static EmbeddingServerScenario Create(EmbeddingServerFault fault)
    {
        switch (fault)
        {
            case EmbeddingServerFault.Refused:
                var port = SilentServer.ClosedPort();
                return new(fault, new($"http://127.0.0.1:{port}/v1"), $"could not be reached: connection refused, nothing listens at 127.0.0.1:{port} (tried 4 times).", null);
            case EmbeddingServerFault.Unresolvable:
                return new(fault, new("http://embeddings.no-such-host.invalid/v1"), "could not be reached: the host name embeddings.no-such-host.invalid does not resolve (tried 2 times).", null);
            case EmbeddingServerFault.TlsToPlainHttp:
                var plain = new FakeOpenAIServer(Key);
                return new(fault, new($"https://127.0.0.1:{plain.Port}/v1"), $"could not be reached: the TLS handshake with 127.0.0.1:{plain.Port} failed, so the server does not speak https there or its certificate is not trusted", plain);
            case EmbeddingServerFault.TlsToGarbage:
                var ssh = SilentServer.Start("SSH-2.0-OpenSSH_9.2p1");
                return new(fault, new($"https://127.0.0.1:{ssh.Port}/v1"), $"could not be reached: the TLS handshake with 127.0.0.1:{ssh.Port} failed, so the server does not speak https there or its certificate is not trusted", ssh);
            case EmbeddingServerFault.NotHttp:
                var other = SilentServer.Start("SSH-2.0-OpenSSH_9.2p1");
                return new(fault, new($"http://127.0.0.1:{other.Port}/v1"), $"could not be reached: what came back from 127.0.0.1:{other.Port} is not HTTP", other);
            default:
                var silent = SilentServer.Start();
                return new(fault, new($"http://127.0.0.1:{silent.Port}/v1"), $"did not answer within {ShortTimeoutSeconds} s (OPENAI_TIMEOUT_SECONDS, retries included). Check your network and OPENAI_BASE_URL, raise OPENAI_TIMEOUT_SECONDS", silent);
        }
    }

    /// <summary>
    /// The settings a user would have. The refused case sets only OPENAI_API_KEY (which alone selects OpenAI) and keeps
    /// the default retries (4 tries, 5.6 s of backoff); the others set EMBEDDING_PROVIDER=openai as well, and
    /// OPENAI_MAX_RETRIES=1 (2 tries), which the unresolvable host's sentence counts.
    /// </summary>
    public Dictionary<string, string> Environment(string databaseUrl, int? dimensions = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["DATABASE_URL"] = databaseUrl,
            ["OPENAI_API_KEY"] = Key,
            ["OPENAI_BASE_URL"] = Endpoint.ToString(),
        };
        if (Fault != EmbeddingServerFault.Refused)
        {
            environment["EMBEDDING_PROVIDER"] = "openai";
            environment["OPENAI_MAX_RETRIES"] = "1";
        }

        if (Fault == EmbeddingServerFault.NeverAnswers)
        {
            environment["OPENAI_TIMEOUT_SECONDS"] = ShortTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (dimensions is { } d)
        {
            environment["OPENAI_EMBEDDING_DIMENSIONS"] = d.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return environment;
    }

    public ModuleSettings Settings(string databaseUrl, int? dimensions = null)
    {
        var environment = Environment(databaseUrl, dimensions);
        return ModuleSettings.From(name => environment.GetValueOrDefault(name), "environment");
    }

    /// <summary>The sentence, its exit code, and no crash report.</summary>
    public void AssertExplained(int exitCode, string output)
    {
        var text = OneSentence.Flat(output);
        Assert.True(exitCode == ExitCodes.EmbeddingProviderFailed, $"exit {exitCode}:\n{output}");
        Assert.Contains($"The embeddings API at {Endpoint} {Reason}", text, StringComparison.Ordinal);
        Assert.Contains("OPENAI_BASE_URL", text, StringComparison.Ordinal);
        Assert.Contains("use the offline model with EMBEDDING_PROVIDER=local", text, StringComparison.Ordinal);
        if (Fault == EmbeddingServerFault.Refused)
        {
            Assert.Contains("(OPENAI_API_KEY alone selects openai)", text, StringComparison.Ordinal);
        }

        OneSentence.AssertNoCrash(output);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>
/// Lesson 05 with OpenAI embeddings and a server that cannot be reached, in-process: one sentence naming the server
/// and the fixes, exit 7, and the table the lesson made left empty.
/// </summary>
public class EmbeddingServerUnreachableTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Every fault, in-process here and through the lesson process in <see cref="EmbeddingServerUnreachableProcessTests"/>.</summary>
    public static TheoryData<EmbeddingServerFault> Faults { get; } = new(Enum.GetValues<EmbeddingServerFault>());

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task The_lesson_names_the_server_and_the_fixes_exit_7_and_loads_nothing(EmbeddingServerFault fault)
    {
        await using var scenario = EmbeddingServerScenario.Create(fault);
        var watch = Stopwatch.StartNew();

        var result = await LessonRunner.RunAsync<VectorSearchLesson>(scenario.Settings(database.ConnectionString.ConnectionString), "test");

        scenario.AssertExplained(result.ExitCode, result.Output);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson05.vector_documents"));
        if (fault == EmbeddingServerFault.NeverAnswers)
        {
            // The SDK alone would wait 4 tries x 100 s.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"took {watch.Elapsed}");
        }
    }

    [Fact]
    public async Task Cancelled_while_waiting_for_a_server_that_never_answers_exits_130_at_once()
    {
        await using var silent = SilentServer.Start();
        var settings = ModuleSettings.From(name => name switch
        {
            "DATABASE_URL" => database.ConnectionString.ConnectionString,
            "OPENAI_API_KEY" => EmbeddingServerScenario.Key,
            "OPENAI_BASE_URL" => $"http://127.0.0.1:{silent.Port}/v1",
            _ => null,
        });
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var console = new TestConsole().Width(160);
        var run = LessonHost.RunAsync<VectorSearchLesson>([], new LessonHostOptions { Console = console, Settings = settings, Interactive = false }, cancellation.Token);

        await WaitUntilAsync(() => silent.Accepted > 0, run);
        var cancelledAt = Stopwatch.StartNew();
        await cancellation.CancelAsync();
        var exit = await run.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.True(exit == ExitCodes.Cancelled, console.Output);
        Assert.True(cancelledAt.Elapsed < TimeSpan.FromSeconds(5), $"took {cancelledAt.Elapsed} to stop");
        Assert.Contains("Cancelled. Nothing half-done was committed.", console.Output, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(console.Output);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson05.vector_documents"));
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, Task run)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (!condition())
        {
            Assert.False(run.IsCompleted, "The run ended before the request was sent.");
            Assert.True(DateTime.UtcNow < deadline, "No request within two minutes.");
            await Task.Delay(20, Ct);
        }
    }
}

/// <summary>The same faults through the built lesson run as a process (dotnet Lesson05.VectorSearch.dll), and Ctrl+C.</summary>
public class EmbeddingServerUnreachableProcessTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Theory]
    [MemberData(nameof(EmbeddingServerUnreachableTests.Faults), MemberType = typeof(EmbeddingServerUnreachableTests))]
    public async Task The_lesson_process_prints_one_sentence_and_exits_7(EmbeddingServerFault fault)
    {
        await using var scenario = EmbeddingServerScenario.Create(fault);

        var result = await LessonProcess.RunLessonAsync("05", scenario.Environment(database.ConnectionString.ConnectionString), "test");

        scenario.AssertExplained(result.ExitCode, result.Output);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson05.vector_documents"));
    }

    [Fact]
    public async Task Ctrl_C_while_the_server_never_answers_ends_the_process_with_130()
    {
        await using var silent = SilentServer.Start();
        using var process = LessonProcess.StartLesson("05", new Dictionary<string, string>
        {
            ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
            ["OPENAI_API_KEY"] = EmbeddingServerScenario.Key,
            ["OPENAI_BASE_URL"] = $"http://127.0.0.1:{silent.Port}/v1",
        });
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (silent.Accepted == 0)
        {
            Assert.False(process.HasExited, "The lesson ended before it sent a request.");
            Assert.True(DateTime.UtcNow < deadline, "No request within two minutes.");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        var interruptedAt = Stopwatch.StartNew();
        await LessonProcess.InterruptAsync(process);
        var result = await LessonProcess.WaitAsync(process, TimeSpan.FromSeconds(30));

        Assert.True(result.ExitCode == ExitCodes.Cancelled, $"exit {result.ExitCode}:\n{result.Output}");
        Assert.True(interruptedAt.Elapsed < TimeSpan.FromSeconds(10), $"took {interruptedAt.Elapsed} to stop");
        Assert.Contains("Cancelled. Nothing half-done was committed.", result.Text, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(result.Output);
    }
}
