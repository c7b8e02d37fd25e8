using System.Numerics.Tensors;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>The OpenAI path, against a loopback server that speaks the embeddings API.</summary>
public class OpenAIEmbeddingTests
{
    private const string Key = "sk-test-key";

    private static TextEmbedder Embedder(FakeOpenAIServer server, string key = Key, int dimensions = 1536, int batch = 100) =>
        TextEmbedder.Create(EmbeddingSettings.From(name => name switch
        {
            "OPENAI_API_KEY" => key,
            "OPENAI_BASE_URL" => server.Endpoint.ToString(),
            "OPENAI_EMBEDDING_DIMENSIONS" => dimensions.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "EMBEDDING_BATCH_SIZE" => batch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // Every request must reach the loopback server, and none of its vectors the user's embedding cache.
            "EMBEDDING_CACHE" => "off",
            _ => null,
        }));

    [Fact]
    public void A_key_alone_selects_openai_and_no_key_selects_the_local_model()
    {
        Assert.Equal(EmbeddingProviderKind.OpenAI, EmbeddingSettings.From(n => n == "OPENAI_API_KEY" ? "sk-x" : null).Provider);
        Assert.Equal(EmbeddingProviderKind.Local, EmbeddingSettings.From(_ => null).Provider);
        Assert.Equal(EmbeddingProviderKind.Local, EmbeddingSettings.From(n => n switch { "OPENAI_API_KEY" => "sk-x", "EMBEDDING_PROVIDER" => "local", _ => null }).Provider);
        var missingKey = Assert.Throws<SetupException>(() => TextEmbedder.Create(EmbeddingSettings.From(n => n == "EMBEDDING_PROVIDER" ? "openai" : null)));
        Assert.Contains("OPENAI_API_KEY is not set", missingKey.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_carry_model_dimensions_and_batched_inputs_in_order()
    {
        await using var server = new FakeOpenAIServer(Key);
        using var embedder = Embedder(server, dimensions: 256, batch: 100);
        var texts = Enumerable.Range(0, 250).Select(i => $"document {i} about vectors").ToArray();

        var vectors = await embedder.EmbedManyAsync(texts, progress: null, TestContext.Current.CancellationToken);

        var requests = server.Requests.ToArray();
        Assert.Equal([100, 100, 50], requests.Select(r => r.Inputs!.Count));
        Assert.All(requests, r =>
        {
            Assert.True(r.InputWasArrayOfStrings);
            Assert.Equal("text-embedding-3-small", r.Model);
            Assert.Equal(256, r.Dimensions);
            Assert.Equal("Bearer " + Key, r.Authorization);
        });
        Assert.Equal(texts, requests.SelectMany(r => r.Inputs!));
        Assert.Equal(250, vectors.Count);
        Assert.Equal(FakeOpenAIServer.VectorFor(texts[137], 256), vectors[137].ToArray());
        Assert.Equal(new EmbeddingIdentityView("openai", "text-embedding-3-small", 256), new EmbeddingIdentityView(embedder.Identity.Provider, embedder.Identity.Model, embedder.Dimensions));
    }

    [Fact]
    public async Task A_rejected_key_says_check_OPENAI_API_KEY_and_is_not_retried()
    {
        await using var server = new FakeOpenAIServer(Key);
        using var embedder = Embedder(server, key: "sk-wrong");

        var problem = await Assert.ThrowsAsync<SetupException>(() => embedder.EmbedAsync("hello", TestContext.Current.CancellationToken));

        Assert.Equal(ExitCodes.EmbeddingProviderFailed, problem.ExitCode);
        Assert.StartsWith("OpenAI rejected the API key (401): check OPENAI_API_KEY.", problem.Message, StringComparison.Ordinal);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task A_rate_limited_request_is_retried()
    {
        await using var server = new FakeOpenAIServer(Key);
        using var embedder = Embedder(server);
        server.RespondWith429(2);

        var vector = await embedder.EmbedAsync("rate limited, then fine", TestContext.Current.CancellationToken);

        Assert.Equal([429, 429, 200], server.Requests.Select(r => r.StatusReturned));
        Assert.Equal(FakeOpenAIServer.VectorFor("rate limited, then fine", 1536), vector.ToArray());
    }

    [Fact]
    public async Task A_server_returning_the_wrong_dimension_is_caught_before_postgres()
    {
        await using var server = new FakeOpenAIServer(Key);
        using var embedder = Embedder(server, dimensions: 256);
        server.OverrideDimensions = 3;

        var problem = await Assert.ThrowsAsync<SetupException>(() => embedder.EmbedAsync("x", TestContext.Current.CancellationToken));

        Assert.Equal(ExitCodes.EmbeddingMismatch, problem.ExitCode);
        Assert.Contains("A 3-dimension vector cannot go into a vector(256) column: text-embedding-3-small (256 dimensions, openai) returned it.", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelled_during_a_retried_request_is_a_cancellation_not_an_AggregateException()
    {
        // Every try times out after 300 ms and is retried at once, so the cancellation lands in a try: the retry policy
        // then throws an AggregateException of the timed-out tries and the cancelled one.
        await using var silent = SilentServer.Start();
        using var generator = OpenAIEmbeddingGeneratorFactory.Create(new OpenAIEmbeddingSettings
        {
            ApiKey = Key,
            Endpoint = new Uri($"http://127.0.0.1:{silent.Port}/v1"),
            NetworkTimeout = TimeSpan.FromMilliseconds(300),
            RetryPolicy = new FixedDelayRetryPolicy(20, TimeSpan.FromMilliseconds(1)),
        });
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancellation.CancelAfter(TimeSpan.FromMilliseconds(1000));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => generator.GenerateAsync(["x"], cancellationToken: cancellation.Token));

        Assert.True(error is OperationCanceledException, error.ToString());
        Assert.True(silent.Accepted > 1, $"{silent.Accepted} tries");
    }

    [Fact]
    public async Task A_server_that_never_answers_ends_at_the_request_time_limit_with_its_address()
    {
        await using var silent = SilentServer.Start();
        using var generator = OpenAIEmbeddingGeneratorFactory.Create(new OpenAIEmbeddingSettings
        {
            ApiKey = Key,
            Endpoint = new Uri($"http://127.0.0.1:{silent.Port}/v1"),
            RequestTimeout = TimeSpan.FromSeconds(1),
        });

        var error = await Assert.ThrowsAsync<OpenAIUnreachableException>(() => generator.GenerateAsync(["x"], cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(TimeSpan.FromSeconds(1), error.TimedOutAfter);
        Assert.Equal($"The embeddings API at http://127.0.0.1:{silent.Port}/v1 could not be reached: no answer within 1 s, retries included.", error.Message);
        Assert.Equal(1, silent.Accepted);
    }

    private sealed record EmbeddingIdentityView(string Provider, string Model, int Dimensions);
}

/// <summary>The offline model: real inference, checked for meaning, not for fixed numbers.</summary>
public class LocalEmbeddingTests
{
    private static readonly Lazy<TextEmbedder> Shared = new(() => TextEmbedder.Create(new EmbeddingSettings()));

    [Fact]
    public async Task A_sentence_is_closer_to_its_paraphrase_than_to_an_unrelated_sentence()
    {
        var ct = TestContext.Current.CancellationToken;
        var vectors = await Shared.Value.EmbedManyAsync(
            ["The database keeps a copy of every row on a second server.", "Each record is replicated to another machine.", "Bake the bread for forty minutes at 220 degrees."],
            progress: null, ct);
        float Similarity(int a, int b) => TensorPrimitives.CosineSimilarity(vectors[a].ToArray(), vectors[b].ToArray());

        Assert.True(Similarity(0, 1) > Similarity(0, 2) + 0.2f, $"paraphrase {Similarity(0, 1):0.000} vs unrelated {Similarity(0, 2):0.000}");
    }

    [Fact]
    public async Task Vectors_have_384_dimensions_and_unit_length()
    {
        var vector = (await Shared.Value.EmbedAsync("pgvector stores embeddings in PostgreSQL", TestContext.Current.CancellationToken)).ToArray();

        Assert.Equal(384, vector.Length);
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => (double)x * x)), precision: 4);
    }

    [Fact]
    public async Task Text_over_the_token_limit_is_chunked_and_reported_not_silently_cut()
    {
        using var generator = new LocalEmbeddingGenerator();
        var shortText = "Vector indexes trade a little recall for speed.";
        var longText = string.Join(' ', Enumerable.Repeat(shortText, 60));

        Assert.True(generator.ExceedsTokenLimit(longText));
        Assert.False(generator.ExceedsTokenLimit(shortText));
        var result = await generator.GenerateAsync([shortText, longText, "Bake the bread for forty minutes at 220 degrees."],
            cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(1, result[0].AdditionalProperties!["chunks"]);
        Assert.True((int)result[1].AdditionalProperties!["chunks"]! > 1);
        Assert.Equal(false, result[1].AdditionalProperties!["truncated"]);
        // The long text repeats the short one: averaging its chunks keeps it on that topic, far from the unrelated one.
        var related = TensorPrimitives.CosineSimilarity(result[0].Vector.Span, result[1].Vector.Span);
        var unrelated = TensorPrimitives.CosineSimilarity(result[2].Vector.Span, result[1].Vector.Span);
        Assert.True(related > unrelated + 0.2f, $"related {related:0.000}, unrelated {unrelated:0.000}");
    }

    [Fact]
    public async Task EMBEDDING_LONG_TEXT_truncate_keeps_the_first_256_word_pieces_and_is_counted()
    {
        var ct = TestContext.Current.CancellationToken;
        // Uncached: the counts below are what the model itself read.
        using var embedder = TextEmbedder.Create(EmbeddingSettings.From(n => n switch { "EMBEDDING_LONG_TEXT" => "truncate", "EMBEDDING_CACHE" => "off", _ => null }));
        var head = string.Join(' ', Enumerable.Repeat("Vector indexes trade a little recall for speed.", 40));
        var tail = string.Join(' ', Enumerable.Repeat("Bake the bread for forty minutes at 220 degrees.", 40));

        var vectors = await embedder.EmbedManyAsync([head, head + " " + tail, "short text"], progress: null, ct);

        Assert.Equal(2, embedder.TextsTruncated);
        Assert.Equal(0, embedder.TextsChunked);
        // What the model read: 256 word pieces for each cut text, [CLS] short text [SEP] for the last.
        Assert.Equal(256 + 256 + 4, embedder.TokensEmbedded);
        // Cut at 256 word pieces, the head and the head-then-tail text are the same first 256 pieces: the same vector.
        Assert.Equal(1f, TensorPrimitives.CosineSimilarity(vectors[0].ToArray(), vectors[1].ToArray()), 4);
        var problem = Assert.Throws<SetupException>(() => EmbeddingSettings.From(n => n == "EMBEDDING_LONG_TEXT" ? "drop" : null));
        Assert.Contains("set it to chunk", problem.Message, StringComparison.Ordinal);
    }
}
