using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>A small fixed corpus, embedded by the local model and loaded the way the lessons load theirs.</summary>
public sealed class SearchCorpus(PostgresServer server) : LoadedCorpus(server, "search_tests", Documents)
{
    public static readonly CorpusDocument Failover = new("Keeping a spare server in sync",
        "A second machine receives every change the main one writes, and takes over within seconds when the main one stops answering.", "blog");
    public static readonly CorpusDocument UndefinedTable = new("Error 42P01 undefined_table",
        "PostgreSQL raises 42P01 when a query names a table that does not exist on the search path.", "docs");
    public static readonly CorpusDocument Deadlock = new("Error 40P01 deadlock_detected",
        "PostgreSQL raises 40P01 when two transactions wait for each other's locks; one of them is cancelled.", "docs");
    public static readonly CorpusDocument HnswPaper = new("Layered proximity graphs for nearest neighbour search",
        "HNSW builds a hierarchy of graphs and finds approximate nearest neighbours by greedy descent through the layers.", "research");
    public static readonly CorpusDocument HnswDocs = new("HNSW index options in pgvector",
        "CREATE INDEX ... USING hnsw takes m and ef_construction; hnsw.ef_search sets the candidate list at query time.", "docs");
    public static readonly CorpusDocument Pooling = new("Connection pooling with Npgsql",
        "One NpgsqlDataSource per application keeps a pool of open connections, so each query skips the connection handshake.", "blog");
    public static readonly CorpusDocument Testing = new("Testing against a real database",
        "Integration tests that start a real PostgreSQL catch the mistakes an in-memory fake never shows.", "blog");
    public static readonly CorpusDocument GradientDescent = new("Gradient descent in neural network training",
        "Each training step moves the weights a little against the gradient of the loss.", "research");

    public static IReadOnlyList<CorpusDocument> Documents { get; } =
        [Failover, UndefinedTable, Deadlock, HnswPaper, HnswDocs, Pooling, Testing, GradientDescent];
}

/// <summary>Known answers: the search functions the lessons use, on a corpus small enough to know what is right.</summary>
[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class SearchTests(SearchCorpus corpus) : IClassFixture<SearchCorpus>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_paraphrase_is_found_by_vector_search_and_fusion_but_not_by_keywords()
    {
        const string query = "automatic failover to a standby replica";
        var embedding = await corpus.Embedder.EmbedAsync(query, Ct);
        await using var db = corpus.NewDbContext();

        Assert.Empty(await HybridSearch.KeywordAsync(corpus.DataSource, query, cancellationToken: Ct));
        Assert.Equal(SearchCorpus.Failover.Title, (await VectorSearch.Nearest(db, embedding).FirstAsync(Ct)).Title);
        Assert.Equal(SearchCorpus.Failover.Title, (await HybridSearch.ReciprocalRankFusionAsync(corpus.DataSource, query, embedding, cancellationToken: Ct))[0].Title);
        Assert.Equal(SearchCorpus.Failover.Title, (await HybridSearch.WeightedAsync(corpus.DataSource, query, embedding, cancellationToken: Ct))[0].Title);
    }

    [Fact]
    public async Task The_compiled_hot_path_returns_what_the_LINQ_query_returns()
    {
        var embedding = await corpus.Embedder.EmbedAsync("automatic failover to a standby replica", Ct);
        await using var db = corpus.NewDbContext();

        var linq = await VectorSearch.Nearest(db, embedding, limit: 5).ToListAsync(Ct);
        var compiled = await VectorSearch.NearestCosineCompiled(db, embedding, 5).ToListAsync(Ct);

        Assert.Equal(5, compiled.Count);
        Assert.Equal(linq.Select(h => (h.Id, h.Title)), compiled.Select(h => (h.Id, h.Title)));
        Assert.Equal(linq.Select(h => h.Distance), compiled.Select(h => h.Distance));
        Assert.Equal(SearchCorpus.Failover.Title, compiled[0].Title);
    }

    [Fact]
    public async Task An_exact_error_code_is_found_by_keywords_and_fusion()
    {
        const string query = "what does error 42P01 mean?";
        var embedding = await corpus.Embedder.EmbedAsync(query, Ct);

        // Every term required: no document holds "mean", so nothing; any term, weighted by rarity: the 42P01 page.
        Assert.Empty(await HybridSearch.KeywordAllTermsAsync(corpus.DataSource, query, cancellationToken: Ct));
        var keyword = await HybridSearch.KeywordAsync(corpus.DataSource, query, cancellationToken: Ct);
        Assert.Equal(SearchCorpus.UndefinedTable.Title, keyword[0].Title);
        Assert.True(keyword[0].Score > keyword[1].Score, "the rare term must outweigh the common one");
        Assert.Equal(SearchCorpus.UndefinedTable.Title, (await HybridSearch.ReciprocalRankFusionAsync(corpus.DataSource, query, embedding, cancellationToken: Ct))[0].Title);
    }

    [Fact]
    public async Task A_source_filter_changes_the_top_result()
    {
        var embedding = await corpus.Embedder.EmbedAsync("HNSW graph index for approximate nearest neighbour search", Ct);
        await using var db = corpus.NewDbContext();

        var docs = await VectorSearch.Nearest(db, embedding, source: "docs").ToListAsync(Ct);
        var research = await VectorSearch.Nearest(db, embedding, source: "research").ToListAsync(Ct);

        Assert.Equal(SearchCorpus.HnswDocs.Title, docs[0].Title);
        Assert.All(docs, h => Assert.Equal("docs", h.Source));
        Assert.Equal(SearchCorpus.HnswPaper.Title, research[0].Title);
        Assert.All(await HybridSearch.ReciprocalRankFusionAsync(corpus.DataSource, "HNSW", embedding, source: "docs", cancellationToken: Ct),
            h => Assert.Equal("docs", h.Source));
    }

    [Fact]
    public async Task A_threshold_returns_nothing_for_an_unrelated_question()
    {
        await using var db = corpus.NewDbContext();
        var unrelated = await corpus.Embedder.EmbedAsync("chocolate cake recipe with buttercream", Ct);
        var related = await corpus.Embedder.EmbedAsync("how do I avoid opening a new connection for every query?", Ct);

        Assert.Empty(await VectorSearch.Nearest(db, unrelated, maxDistance: 0.75).ToListAsync(Ct));
        Assert.Equal(SearchCorpus.Pooling.Title, (await VectorSearch.Nearest(db, related, maxDistance: 0.75).FirstAsync(Ct)).Title);
    }

    [Fact]
    public async Task Each_metric_sends_its_operator_ordered_ascending_with_a_limit()
    {
        var embedding = await corpus.Embedder.EmbedAsync("index", Ct);
        await using var db = corpus.NewDbContext();

        Assert.Matches(@"ORDER BY v\.embedding <=> @\w+\s+LIMIT", VectorSearch.Nearest(db, embedding).ToQueryString());
        Assert.Matches(@"ORDER BY v\.embedding <-> @\w+\s+LIMIT", VectorSearch.Nearest(db, embedding, DistanceMetric.L2).ToQueryString());
        Assert.Matches(@"ORDER BY v\.embedding <#> @\w+\s+LIMIT", VectorSearch.Nearest(db, embedding, DistanceMetric.InnerProduct).ToQueryString());
        // For unit vectors the three orders agree.
        var cosine = await VectorSearch.Nearest(db, embedding, limit: 8).Select(h => h.Id).ToListAsync(Ct);
        Assert.Equal(cosine, await VectorSearch.Nearest(db, embedding, DistanceMetric.L2, limit: 8).Select(h => h.Id).ToListAsync(Ct));
        Assert.Equal(cosine, await VectorSearch.Nearest(db, embedding, DistanceMetric.InnerProduct, limit: 8).Select(h => h.Id).ToListAsync(Ct));
    }

    [Theory]
    [InlineData("!!! & | :* (( ' \"")]
    [InlineData("'; DROP TABLE vector_documents; --")]
    [InlineData("\"unbalanced quote and (parenthesis")]
    [InlineData("データベース 🐘 索引")]
    [InlineData("the of and a")]
    public async Task Odd_input_is_text_not_syntax(string query)
    {
        var embedding = await corpus.Embedder.EmbedAsync(query, Ct);

        await HybridSearch.KeywordAllTermsAsync(corpus.DataSource, query, cancellationToken: Ct);
        await HybridSearch.KeywordAsync(corpus.DataSource, query, cancellationToken: Ct);
        var fused = await HybridSearch.ReciprocalRankFusionAsync(corpus.DataSource, query, embedding, cancellationToken: Ct);

        Assert.NotEmpty(fused); // vector search always has neighbours
        Assert.Equal(SearchCorpus.Documents.Count, await corpus.Database.ScalarAsync<long>("SELECT count(*) FROM search_tests.vector_documents"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t ")]
    [InlineData(null)]
    public void An_empty_query_is_refused_with_the_fix(string? query)
    {
        var problem = Assert.Throws<SetupException>(() => SearchInput.Validate(query, out _));

        Assert.Equal(ExitCodes.InvalidInput, problem.ExitCode);
        Assert.Contains("pass a question in quotes", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_very_long_query_is_cut_and_says_so()
    {
        var query = SearchInput.Validate(new string('x', 100_000), out var truncated);

        Assert.True(truncated);
        Assert.Equal(SearchInput.MaxQueryLength, query.Length);
    }
}
