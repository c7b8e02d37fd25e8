using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Lessons.Lesson04;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Lesson04Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Loads_the_corpus_builds_the_declared_indexes_and_runs_again_cleanly()
    {
        var first = await LessonRunner.RunAsync<PgvectorSetupLesson>(database.Settings);

        Assert.True(first.ExitCode == 0, first.Output);
        await AssertLoadedAsync();
        var run = first.Transcript;
        Assert.Contains("a dedicated vector database", run.Step("why-pgvector").Table.Columns);
        Assert.Contains(run.Step("enable-extension").SqlSent, s => s.Text == "CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;");

        // The model declared in the lesson's file renders the same DDL as the library's model the other lessons use.
        var declared = Assert.Single(run.Step("vector-model").Sql, s => s.Shown && !s.Sent).Text;
        Assert.Contains("embedding vector(384)", declared, StringComparison.Ordinal);
        Assert.Contains("GENERATED ALWAYS AS (to_tsvector('english', title", declared, StringComparison.Ordinal);
        Assert.Contains("USING hnsw (embedding vector_cosine_ops) WITH (ef_construction=64, m=16)", declared, StringComparison.Ordinal);
        Assert.Contains("USING ivfflat (embedding vector_cosine_ops) WITH (lists=1)", declared, StringComparison.Ordinal);
        await using (var dataSource = ModuleDataSource.Create(database.ConnectionString, "lesson04"))
        await using (var library = new SearchDbContext(SearchDbContext.CreateOptions(dataSource), new VectorStoreShape(384, IvfFlatLists: 1)))
        {
            Assert.Equal(library.Database.GenerateCreateScript().Trim(), declared);
        }

        // The table is created without its indexes; the COPY loop writes every row in one statement.
        var created = run.Step("create-table").SentSql();
        Assert.Contains("CREATE TABLE vector_documents", created, StringComparison.Ordinal);
        Assert.DoesNotContain("CREATE INDEX", created, StringComparison.Ordinal);
        Assert.Contains(run.Step("binary-copy").Sql, s => s.Text == "COPY vector_documents (title, content, source, embedding) FROM STDIN (FORMAT BINARY)");

        // The migration builds exactly the indexes the model declares, and records itself in the lesson's history table.
        var migration = run.Step("index-migration");
        var script = migration.Sql.First(s => s.Shown && !s.Sent).Text;
        static List<string> Indexes(string sql) =>
            sql.Split('\n').Where(l => l.StartsWith("CREATE INDEX", StringComparison.Ordinal) || l.StartsWith("CREATE UNIQUE INDEX", StringComparison.Ordinal)).ToList();
        var (migrated, modelled) = (Indexes(script), Indexes(declared));
        Assert.Equal(7, migrated.Count);
        Assert.Equal(modelled.Order(StringComparer.Ordinal), migrated.Order(StringComparer.Ordinal));
        Assert.Contains("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;", script, StringComparison.Ordinal);
        Assert.Equal(["20261201000000_AddVectorIndexes"], migration.Tables[0].Column("migration_id"));
        Assert.Equal(["gin", "hnsw", "ivfflat", "btree", "btree", "btree", "btree", "btree"], migration.Tables[1].Column("method"));
        Assert.Contains(migration.SqlSent, s => s.Text == "VACUUM (ANALYZE) vector_documents, document_terms, bm25_document_frequencies");

        // The corrected advice is labelled as a correction.
        Assert.Contains("the Python module says", run.Step("which-index").Table.Columns);
        Assert.Contains("corrected", run.Step("which-index").Why, StringComparison.Ordinal);

        // The wrong-dimension step: the module's sentence, and PostgreSQL's own refusal.
        var wrong = run.Step("wrong-dimension");
        Assert.Contains("A 3-dimension vector cannot go into vector_documents.embedding, which is vector(384)", wrong.Note("The module says:"), StringComparison.Ordinal);
        Assert.Contains("expected 384 dimensions, not 3", wrong.Note("PostgreSQL, had it got there:"), StringComparison.Ordinal);
        Assert.Contains("vectors from different models cannot be compared", wrong.Note("Searching with another model:"), StringComparison.Ordinal);

        // Without UseVector() on the data source: Npgsql's error, shown once, and nothing written.
        var bare = run.Step("without-use-vector");
        Assert.StartsWith("SaveChanges failed: Writing values of 'Pgvector.Vector' is not supported", bare.Note("SaveChanges failed:"), StringComparison.Ordinal);
        Assert.StartsWith("Rows written: 0.", bare.Note("Rows written:"), StringComparison.Ordinal);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson04.vector_documents WHERE title = 'no UseVector()'"));

        var second = await LessonRunner.RunAsync<PgvectorSetupLesson>(database.Settings);

        Assert.True(second.ExitCode == 0, second.Output);
        await AssertLoadedAsync();
        Assert.Equal(["20261201000000_AddVectorIndexes"], second.Transcript.Step("index-migration").Tables[0].Column("migration_id"));
    }

    [Fact]
    public async Task Runs_as_a_process_and_records_its_migration()
    {
        var result = await LessonProcess.RunLessonAsync("04", new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString });

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.True(result.Transcript!.Completed);
        Assert.Equal(SampleCorpus.All.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            result.Transcript.Step("binary-copy").Notes[0].Split(' ')[0]);
        Assert.Equal(["20261201000000_AddVectorIndexes"], result.Transcript.Step("index-migration").Tables[0].Column("migration_id"));
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
            // A loopback server's vectors are for this test only: none goes into the user's embedding cache.
            "EMBEDDING_CACHE" => "off",
            _ => null,
        });

        var result = await LessonRunner.RunAsync<PgvectorSetupLesson>(settings);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("embedding vector(256)", result.Transcript.Step("vector-model").Sql.First().Text, StringComparison.Ordinal);
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
        // The triggers filled lesson 06's postings from the COPY.
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(DISTINCT document_id) FROM lesson04.document_terms"));
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT sum(document_count) FROM lesson04.bm25_corpus"));
    }
}
