using System.Diagnostics;
using Microsoft.Extensions.AI;
using PgVectorModule.Answers;
using PgVectorModule.Embeddings;
using PgVectorModule.Lessons.Lesson10;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using PgVectorModule.Tests.Lessons;

namespace PgVectorModule.Tests.Answers;

/// <summary>Answers written by a chat model through IChatClient, against a loopback chat server: streamed, prompted from the passages, every failure one sentence.</summary>
public class ChatAnswerTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private const string Key = "sk-chat-test";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AnswerSettings Settings(Uri endpoint, string key = Key, int timeoutSeconds = 60) =>
        new() { OpenAIApiKey = key, OpenAIBaseUrl = endpoint, ChatTimeout = TimeSpan.FromSeconds(timeoutSeconds) };

    [Fact]
    public async Task The_answer_streams_in_pieces_and_comes_back_whole()
    {
        await using var server = new FakeChatServer(Key);
        var settings = Settings(server.Endpoint);
        using var chat = ChatAnswers.Create(settings);
        var pieces = new List<string>();

        var answer = await ChatAnswers.StreamAsync(chat, [new(ChatRole.System, "instructions"), new(ChatRole.User, "question")], settings, pieces.Add, Ct);

        Assert.Equal(FakeChatServer.DefaultAnswer, answer);
        Assert.True(pieces.Count(p => p.Length > 0) > 3, string.Join("|", pieces));
        var request = Assert.Single(server.Requests);
        Assert.True(request["stream"]!.GetValue<bool>());
        Assert.Equal(AnswerSettings.DefaultChatModel, request["model"]!.GetValue<string>());
        Assert.Equal(0, request["temperature"]!.GetValue<double>());
    }

    public static TheoryData<string> Faults { get; } = new(["refused", "unresolvable", "tls", "never answers", "401", "429"]);

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Every_failure_is_one_sentence_with_exit_code_7(string fault)
    {
        await using var server = new FakeChatServer(Key);
        await using var silent = SilentServer.Start();
        var closed = SilentServer.ClosedPort();
        var (endpoint, key, expected) = fault switch
        {
            "refused" => (new Uri($"http://127.0.0.1:{closed}/v1"), Key, $"could not be reached: connection refused, nothing listens at 127.0.0.1:{closed}"),
            "unresolvable" => (new Uri("http://chat.no-such-host.invalid/v1"), Key, "could not be reached: the host name chat.no-such-host.invalid does not resolve"),
            "tls" => (new Uri($"https://127.0.0.1:{server.Port}/v1"), Key, $"could not be reached: the TLS handshake with 127.0.0.1:{server.Port} failed"),
            "never answers" => (new Uri($"http://127.0.0.1:{silent.Port}/v1"), Key, "did not answer within 2 s (OPENAI_TIMEOUT_SECONDS, retries and the whole answer included)"),
            "401" => (server.Endpoint, "sk-wrong", "rejected the API key (401): check OPENAI_API_KEY"),
            _ => (server.Endpoint, Key, "answered 429 Too Many Requests, retries included"),
        };
        if (fault == "429")
        {
            server.RespondWith429(100);
        }

        var settings = Settings(endpoint, key, timeoutSeconds: 2) with { ChatMaxRetries = 1 };
        // Retries a short wait apart, so the test does not wait out the SDK's back-off.
        using var chat = ChatAnswers.Create(settings, new FixedDelayRetryPolicy(1, TimeSpan.FromMilliseconds(10)));
        var watch = Stopwatch.StartNew();

        var problem = await Assert.ThrowsAsync<SetupException>(() => ChatAnswers.StreamAsync(chat, [new(ChatRole.User, "q")], settings, _ => { }, Ct));

        Assert.Equal(ExitCodes.EmbeddingProviderFailed, problem.ExitCode);
        Assert.StartsWith($"The chat API at {endpoint} ", problem.Message, StringComparison.Ordinal);
        Assert.Contains(expected, problem.Message, StringComparison.Ordinal);
        Assert.EndsWith("or unset OPENAI_API_KEY for an extractive answer, offline.", problem.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task The_lesson_answers_through_the_chat_model_from_the_cited_passages()
    {
        await using var server = new FakeChatServer(Key);
        var settings = database.Settings with
        {
            Embeddings = database.Settings.Embeddings with { OpenAIApiKey = Key, Provider = EmbeddingProviderKind.OpenAI, OpenAIBaseUrl = server.Endpoint },
            Answers = Settings(server.Endpoint),
        };

        var result = await LessonRunner.RunAsync<SearchToAnswersLesson>(settings);

        Assert.True(result.ExitCode == 0, result.Output);
        Lesson10Tests.AssertTeaches(result.Transcript);
        var step = result.Transcript.Step("answer");
        Assert.Contains(step.Notes, n => n.StartsWith("Answer (written by gpt-4o-mini", StringComparison.Ordinal));
        Assert.Equal(2, Assert.Single(step.Tables, t => t.Columns.Contains("answer sentence")).Rows.Count);
        Assert.Contains("Stop training early, before the error on unseen examples climbs", result.Output, StringComparison.Ordinal);

        // The model was told the rules and given the passages the lesson lists, numbered.
        var request = Assert.Single(server.Requests);
        var messages = request["messages"]!.AsArray();
        Assert.Equal(SearchToAnswersLesson.Instructions, messages[0]!["content"]!.GetValue<string>());
        var prompt = messages[1]!["content"]!.GetValue<string>();
        var passages = Assert.Single(step.Tables, t => t.Columns.Contains("n")).Rows;
        Assert.Equal(SearchToAnswersLesson.AnswerPassages, passages.Count);
        Assert.All(passages, p => Assert.Contains($"{p["n"]} {p["title"]}: {p["passage"]}", prompt, StringComparison.Ordinal));
        Assert.EndsWith($"Question: {SearchToAnswersLesson.DefaultQuestion}", prompt, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_lesson_with_a_refused_key_exits_7_in_one_sentence()
    {
        await using var server = new FakeChatServer(Key);
        var environment = new Dictionary<string, string>
        {
            ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
            ["OPENAI_API_KEY"] = "sk-wrong",
            ["OPENAI_BASE_URL"] = server.Endpoint.ToString(),
        };

        var result = await LessonProcess.RunLessonAsync("10", environment);

        Assert.True(result.ExitCode == ExitCodes.EmbeddingProviderFailed, result.Output);
        Assert.Contains($"The chat API at {server.Endpoint} rejected the API key (401): check OPENAI_API_KEY", result.Text, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(result.Output);
    }
}
