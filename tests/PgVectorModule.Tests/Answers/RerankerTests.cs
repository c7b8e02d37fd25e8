using System.Diagnostics;
using PgVectorModule.Answers;
using PgVectorModule.Lessons.Lesson10;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using PgVectorModule.Tests.Lessons;

namespace PgVectorModule.Tests.Answers;

/// <summary>The /rerank client against loopback servers: scores in order, and every failure one sentence with exit code 7.</summary>
public class RerankerTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AnswerSettings Settings(Uri url, string? key = null, int timeoutSeconds = AnswerSettings.DefaultRerankTimeoutSeconds) =>
        new() { RerankUrl = url, RerankApiKey = key, RerankTimeout = TimeSpan.FromSeconds(timeoutSeconds) };

    [Fact]
    public async Task Scores_come_back_in_the_texts_order_with_the_key_sent()
    {
        await using var server = new FakeRerankServer("rk-test");
        using var reranker = new HttpReranker(Settings(server.Root, "rk-test"));

        var scores = await reranker.ScoreAsync("question", ["a", "b", "c", "d"], Ct);

        Assert.Equal(new Uri(server.Root, "/rerank"), reranker.Endpoint);
        Assert.Equal([0.0, 0.25, 0.5, 0.75], scores);
        var request = Assert.Single(server.Requests);
        Assert.Equal("question", request["query"]!.GetValue<string>());
        Assert.Equal(["a", "b", "c", "d"], request["texts"]!.AsArray().Select(t => t!.GetValue<string>()));
    }

    [Fact]
    public async Task A_429_is_retried_after_Retry_After_and_then_succeeds()
    {
        await using var server = new FakeRerankServer();
        server.RespondWith429(HttpReranker.MaxRetries);
        using var reranker = new HttpReranker(Settings(server.Root));

        var scores = await reranker.ScoreAsync("q", ["a", "b"], Ct);

        Assert.Equal([0.0, 0.5], scores);
        Assert.Equal([429, 429, 200], server.Statuses);
    }

    public static TheoryData<string> Faults { get; } = new(["refused", "unresolvable", "tls", "not http", "never answers", "401", "429", "not a re-ranker"]);

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Every_failure_is_one_sentence_with_exit_code_7(string fault)
    {
        await using var rerank = new FakeRerankServer("rk-test");
        await using var silent = SilentServer.Start();
        await using var ssh = SilentServer.Start("SSH-2.0-OpenSSH_9.2p1");
        var closed = SilentServer.ClosedPort();
        var (url, key, expected) = fault switch
        {
            "refused" => (new Uri($"http://127.0.0.1:{closed}"), null, $"could not be reached: connection refused, nothing listens at 127.0.0.1:{closed}. Check that it runs and RERANK_URL"),
            "unresolvable" => (new Uri("http://rerank.no-such-host.invalid"), null, "could not be reached: the host name rerank.no-such-host.invalid does not resolve."),
            "tls" => (new Uri($"https://127.0.0.1:{rerank.Port}"), "rk-test", $"could not be reached: the TLS handshake with 127.0.0.1:{rerank.Port} failed"),
            "not http" => (new Uri($"http://127.0.0.1:{ssh.Port}"), null, $"could not be reached: what came back from 127.0.0.1:{ssh.Port} is not HTTP"),
            "never answers" => (new Uri($"http://127.0.0.1:{silent.Port}"), null, "did not answer within 2 s (RERANK_TIMEOUT_SECONDS, retries included)"),
            "401" => (rerank.Root, "wrong-key", "refused the request (401): check RERANK_API_KEY"),
            "429" => (rerank.Root, "rk-test", $"answered 429 Too Many Requests {HttpReranker.MaxRetries + 1} times"),
            _ => (rerank.Root, "rk-test", "answered, but not as a re-rank server does"),
        };
        if (fault == "429")
        {
            rerank.RespondWith429(10);
        }

        if (fault == "not a re-ranker")
        {
            rerank.OverrideBody = """{"embeddings": [[0.1, 0.2]]}""";
        }

        using var reranker = new HttpReranker(Settings(url, key, timeoutSeconds: 2));
        var watch = Stopwatch.StartNew();

        var problem = await Assert.ThrowsAsync<SetupException>(() => reranker.ScoreAsync("q", ["a", "b"], Ct));

        Assert.Equal(ExitCodes.EmbeddingProviderFailed, problem.ExitCode);
        Assert.StartsWith($"The {(fault == "not a re-ranker" ? "server" : "re-rank server")} at {reranker.Endpoint} ", problem.Message, StringComparison.Ordinal);
        Assert.Contains(expected, problem.Message, StringComparison.Ordinal);
        Assert.EndsWith("or unset RERANK_URL to re-rank offline.", problem.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task The_lesson_reranks_through_the_server_when_RERANK_URL_is_set()
    {
        await using var server = new FakeRerankServer();
        var settings = database.Settings with { Answers = Settings(server.Root) };

        var result = await LessonRunner.RunAsync<SearchToAnswersLesson>(settings);

        Assert.True(result.ExitCode == 0, result.Output);
        Lesson10Tests.AssertTeaches(result.Transcript);
        var step = result.Transcript.Step("rerank-server");
        // The fake scores each text by its place: the first stage's last document comes first.
        var request = Assert.Single(server.Requests);
        var sent = request["texts"]!.AsArray().Count;
        Assert.Equal(sent.ToString(System.Globalization.CultureInfo.InvariantCulture), step.Tables.Single(t => t.Columns.Contains("second-stage score")).Rows[0]["first stage"]);
        Assert.InRange(sent, 11, SearchToAnswersLesson.Candidates);
    }

    [Fact]
    public async Task The_lesson_with_a_re_rank_server_that_is_not_there_exits_7_in_one_sentence()
    {
        var closed = SilentServer.ClosedPort();
        var environment = new Dictionary<string, string>
        {
            ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
            ["RERANK_URL"] = $"http://127.0.0.1:{closed}",
        };

        var result = await LessonProcess.RunLessonAsync("10", environment);

        Assert.True(result.ExitCode == ExitCodes.EmbeddingProviderFailed, result.Output);
        Assert.Contains($"The re-rank server at http://127.0.0.1:{closed}/rerank could not be reached: connection refused", result.Text, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(result.Output);
    }
}
