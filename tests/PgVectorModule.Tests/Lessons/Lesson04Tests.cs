using PgVectorModule.Configuration;
using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Lessons.PgvectorSetup;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

public class Lesson04Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Loads_the_corpus_builds_the_declared_indexes_and_runs_again_cleanly()
    {
        var first = await LessonRunner.RunAsync<PgvectorSetupLesson>(database.Settings);

        Assert.Equal(0, first.ExitCode);
        await AssertLoadedAsync();
        Assert.Contains("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public", first.Output, StringComparison.Ordinal);
        Assert.Contains("embedding vector(384)", first.Output, StringComparison.Ordinal);
        Assert.Contains("GENERATED ALWAYS AS (to_tsvector('english', title", first.Output, StringComparison.Ordinal);
        Assert.Contains("FROM STDIN (FORMAT", first.Output, StringComparison.Ordinal);
        Assert.Contains("USING hnsw (embedding vector_cosine_ops) WITH (ef_construction=64, m=16)", first.Output, StringComparison.Ordinal);
        Assert.Contains("USING ivfflat (embedding vector_cosine_ops) WITH (lists=1)", first.Output, StringComparison.Ordinal);
        // The wrong-dimension step: the module's sentence, and PostgreSQL's own refusal.
        Assert.Contains("A 3-dimension vector cannot go into vector_documents.embedding, which is vector(384)", first.Output, StringComparison.Ordinal);
        Assert.Contains("expected 384 dimensions, not 3", first.Output, StringComparison.Ordinal);
        Assert.Contains("vectors from different models cannot be compared", first.Output, StringComparison.Ordinal);

        var second = await LessonRunner.RunAsync<PgvectorSetupLesson>(database.Settings);

        Assert.Equal(0, second.ExitCode);
        await AssertLoadedAsync();
    }

    [Fact]
    public async Task The_provider_dimension_flows_into_the_column_and_another_model_is_refused_by_name()
    {
        await using var server = new FakeOpenAIServer("sk-test");
        var settings = ModuleSettings.From(name => name switch
        {
            "DATABASE_URL" => database.ConnectionString.ConnectionString,
            "EMBEDDING_PROVIDER" => "openai",
            "OPENAI_API_KEY" => "sk-test",
            "OPENAI_BASE_URL" => server.Endpoint.ToString(),
            "OPENAI_EMBEDDING_DIMENSIONS" => "256",
            _ => null,
        });

        var result = await LessonRunner.RunAsync<PgvectorSetupLesson>(settings);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("embedding vector(256)", result.Output, StringComparison.Ordinal);
        Assert.Equal(256, await database.ScalarAsync<int>("SELECT DISTINCT vector_dims(embedding) FROM lesson04.vector_documents"));
        Assert.All(server.Requests, r => Assert.Equal(256, r.Dimensions));

        // The stored vectors now come from text-embedding-3-small at 256 dimensions; the local model must be refused.
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "lesson04");
        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(dataSource), new VectorStoreShape(384));
        var problem = await Assert.ThrowsAsync<SetupException>(() =>
            EmbeddingGuard.EnsureCompatibleAsync(db, new EmbeddingIdentity("local", "all-MiniLM-L6-v2", 384), TestContext.Current.CancellationToken));
        Assert.Equal(ExitCodes.EmbeddingMismatch, problem.ExitCode);
        Assert.Contains("holds vectors made by text-embedding-3-small (256 dimensions, openai), but the configured embedding model is all-MiniLM-L6-v2 (384 dimensions, local)", problem.Message, StringComparison.Ordinal);
        Assert.Contains("run lesson 04 again", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rejected_api_key_stops_the_lesson_with_one_sentence_and_leaves_no_rows()
    {
        await using var server = new FakeOpenAIServer("sk-right");
        var settings = ModuleSettings.From(name => name switch
        {
            "DATABASE_URL" => database.ConnectionString.ConnectionString,
            "OPENAI_API_KEY" => "sk-wrong",
            "OPENAI_BASE_URL" => server.Endpoint.ToString(),
            _ => null,
        });

        var result = await LessonRunner.RunAsync<PgvectorSetupLesson>(settings);

        Assert.Equal(ExitCodes.EmbeddingProviderFailed, result.ExitCode);
        Assert.Contains("OpenAI rejected the API key (401): check OPENAI_API_KEY.", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson04.vector_documents"));
    }

    private async Task AssertLoadedAsync()
    {
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson04.vector_documents"));
        // Every vector has the model's dimension and unit length; every row got its generated tsvector.
        Assert.Equal(0, await database.ScalarAsync<long>(
            "SELECT count(*) FROM lesson04.vector_documents WHERE vector_dims(embedding) <> 384 OR abs(vector_norm(embedding) - 1) > 1e-4 OR content_tsv = ''::tsvector"));
        var indexes = await database.StringsAsync(
            "SELECT indexname || ' ' || substring(indexdef from 'USING (\\w+)') FROM pg_indexes WHERE schemaname = 'lesson04' AND tablename = 'vector_documents' ORDER BY indexname");
        Assert.Equal(
            ["ix_vector_documents_content_tsv gin", "ix_vector_documents_embedding_hnsw hnsw", "ix_vector_documents_embedding_ivfflat ivfflat", "ix_vector_documents_source btree", "pk_vector_documents btree"],
            indexes);
        Assert.Equal("all-MiniLM-L6-v2/384", await database.ScalarAsync<string>(
            "SELECT model || '/' || dimensions FROM lesson04.embedding_models WHERE table_name = 'vector_documents'"));
    }
}
