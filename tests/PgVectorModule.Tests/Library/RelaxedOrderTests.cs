using System.Globalization;
using System.Text.RegularExpressions;
using PgVectorModule.Data;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// 10,000 documents with seeded random 32-dimension vectors, one in five from the source <see cref="Kept"/>: a filtered
/// HNSW scan drops four rows in five, so the iterative scan the library turns on under a filter runs batch after batch,
/// and in relaxed order each batch may start nearer than the one before it ended. Only the HNSW index and the postings
/// indexes are built (no B-tree on source), and sequential scans are discouraged, so the filtered vector leg is that scan.
/// </summary>
public sealed class RelaxedOrderCorpus(PostgresServer server) : IAsyncLifetime
{
    public const int Rows = 10_000;
    public const int Dimensions = 32;
    public const string Kept = "kept";

    private readonly TestDatabase _database = new(server);

    /// <summary>The database with enable_seqscan off: at 10,000 rows a filtered query might read them all instead.</summary>
    public NpgsqlDataSource IndexScans { get; private set; } = null!;

    /// <summary>Query vectors from their own seed: none of them is a document.</summary>
    public static IReadOnlyList<Vector> Queries { get; } = Enumerable.Range(0, 8).Select(i => RandomVector(new Random(1000 + i))).ToList();

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        await _database.InitializeAsync();
        IndexScans = ModuleDataSource.Create(
            new NpgsqlConnectionStringBuilder(_database.ConnectionString.ConnectionString) { Options = "-c enable_seqscan=off" }, "relaxed");
        await using (var create = IndexScans.CreateCommand("CREATE SCHEMA relaxed"))
        {
            await create.ExecuteNonQueryAsync(ct);
        }

        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(IndexScans), new VectorStoreShape(Dimensions));
        await VectorStore.EnsureExtensionAsync(IndexScans, db, ct);
        await VectorStore.RecreateTablesAsync(db, ct);
        var random = new Random(5);
        string[] words = ["graph", "index", "vector", "search", "recall", "latency"];
        var documents = Enumerable.Range(0, Rows)
            .Select(i => new CorpusDocument($"document {i}", string.Join(' ', Enumerable.Range(0, 6).Select(_ => words[random.Next(words.Length)])),
                i % 5 == 0 ? Kept : "other"))
            .ToList();
        await VectorStore.CopyAsync(IndexScans, documents, documents.Select(_ => RandomVector(random)).ToList(), ct);
        await VectorStore.BuildIndexesAsync(db, [VectorDocumentConfiguration.HnswIndex, DocumentTermConfiguration.LexemeIndex, DocumentTermConfiguration.DocumentIndex, DocumentFrequencyChangeConfiguration.LexemeIndex], ct);
    }

    public async ValueTask DisposeAsync()
    {
        await IndexScans.DisposeAsync();
        await _database.DisposeAsync();
    }

    private static Vector RandomVector(Random random) =>
        new(Enumerable.Range(0, Dimensions).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray());
}

/// <summary>
/// A relaxed-order iterative scan returns rows out of distance order; every rank the library gives the vector leg must
/// still follow the exact distance (pgvector's README: re-sort, in a way the planner cannot skip).
/// </summary>
public partial class RelaxedOrderTests(RelaxedOrderCorpus corpus) : IClassFixture<RelaxedOrderCorpus>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly HybridOptions Options = new() { Candidates = 100 };

    /// <summary>The query's words are in no document: every hit comes from the vector leg, so the hits are its candidates.</summary>
    private const string NoKeywords = "zzzz";

    [Fact]
    public async Task The_filtered_vector_leg_is_an_HNSW_iterative_scan_that_returns_rows_out_of_distance_order()
    {
        var inversions = 0;
        foreach (var query in RelaxedOrderCorpus.Queries)
        {
            var plan = string.Join('\n', await HybridSearch.ExplainAsync(corpus.IndexScans, SearchMethod.ReciprocalRankFusion, NoKeywords, query,
                limit: 500, source: RelaxedOrderCorpus.Kept, options: Options, cancellationToken: Ct));
            Assert.Contains($"Index Scan using {VectorDocumentConfiguration.HnswIndex}", plan, StringComparison.Ordinal);
            // ef_search is 100, the leg's LIMIT too: an HNSW scan that is not iterative returns at most 100 rows in all,
            // kept and dropped. This one dropped rows and still returned 100 kept ones, so it went on past the first 100.
            var scan = HnswScan().Match(plan);
            Assert.True(scan.Success, plan);
            Assert.Equal(Options.Candidates, int.Parse(scan.Groups["rows"].Value, CultureInfo.InvariantCulture));
            Assert.True(int.Parse(scan.Groups["removed"].Value, CultureInfo.InvariantCulture) > 0, plan);

            var distances = await VectorLegAsync(query);
            Assert.Equal(Options.Candidates, distances.Count);
            inversions += distances.Zip(distances.Skip(1)).Count(p => p.Second < p.First);
        }

        // If the scan ever kept exact order here, the tests below would prove nothing.
        Assert.True(inversions > 0, "the relaxed-order scans returned every row in distance order");
    }

    [Theory]
    [InlineData(SearchMethod.Weighted)]
    [InlineData(SearchMethod.ReciprocalRankFusion)]
    public async Task A_filtered_fused_query_ranks_its_vector_candidates_in_exact_distance_order(SearchMethod method)
    {
        foreach (var query in RelaxedOrderCorpus.Queries)
        {
            var hits = await HybridSearch.SearchAsync(corpus.IndexScans, method, NoKeywords, query, limit: 500, source: RelaxedOrderCorpus.Kept,
                options: Options, cancellationToken: Ct);

            Assert.Equal(Options.Candidates, hits.Count);
            await AssertRanksFollowDistanceAsync(hits, query);
        }
    }

    [Theory]
    [InlineData(SearchMethod.Weighted)]
    [InlineData(SearchMethod.ReciprocalRankFusion)]
    public async Task The_staged_search_ranks_them_in_the_same_order_and_agrees_with_the_one_statement(SearchMethod method)
    {
        foreach (var query in RelaxedOrderCorpus.Queries)
        {
            var staged = await StagedHybridSearch.SearchAsync(corpus.IndexScans, method, NoKeywords, query, limit: 500, source: RelaxedOrderCorpus.Kept,
                options: Options, cancellationToken: Ct);
            var one = await HybridSearch.SearchAsync(corpus.IndexScans, method, NoKeywords, query, limit: 500, source: RelaxedOrderCorpus.Kept,
                options: Options, cancellationToken: Ct);

            await AssertRanksFollowDistanceAsync(staged, query);
            Assert.Equal(one, staged);
        }
    }

    /// <summary>Each hit's vector rank is its place by exact distance (then id) among the hits, the distances computed afresh.</summary>
    private async Task AssertRanksFollowDistanceAsync(IReadOnlyList<SearchHit> hits, Vector query)
    {
        // Sorted here, not by an ORDER BY the HNSW index could answer.
        await using var command = corpus.IndexScans.CreateCommand("SELECT id, embedding <=> @query FROM vector_documents WHERE id = ANY(@ids)");
        command.Parameters.AddWithValue("ids", hits.Select(h => h.Id).ToArray());
        command.Parameters.AddWithValue("query", query);
        var distances = new List<(int Id, double Distance)>();
        await using (var reader = await command.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                distances.Add((reader.GetInt32(0), reader.GetDouble(1)));
            }
        }

        Assert.All(hits, h => Assert.NotNull(h.VectorRank));
        Assert.Equal(distances.OrderBy(d => d.Distance).ThenBy(d => d.Id).Select(d => d.Id), hits.OrderBy(h => h.VectorRank).Select(h => h.Id));
    }

    /// <summary>The filtered vector leg's distances in the order the scan returned them, under the settings the library sets.</summary>
    private async Task<List<double>> VectorLegAsync(Vector query)
    {
        await using var connection = await corpus.IndexScans.OpenConnectionAsync(Ct);
        await using var batch = new NpgsqlBatch(connection);
        foreach (var setting in HybridSearch.VectorLegSettings(Options.Candidates, filtered: true))
        {
            batch.BatchCommands.Add(setting);
        }

        var leg = new NpgsqlBatchCommand(SearchSql.VectorLeg);
        leg.Parameters.AddWithValue("embedding", query);
        leg.Parameters.AddWithValue("candidates", Options.Candidates);
        leg.Parameters.Add(new NpgsqlParameter("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = RelaxedOrderCorpus.Kept });
        batch.BatchCommands.Add(leg);
        await using var reader = await batch.ExecuteReaderAsync(Ct);
        Assert.Equal(["100", "relaxed_order"], await HybridSearch.ReadSettingsAsync(reader, batch, Ct));
        var distances = new List<double>();
        while (await reader.ReadAsync(Ct))
        {
            distances.Add(reader.GetDouble(1));
        }

        return distances;
    }

    /// <summary>The HNSW scan's node: the rows it returned and the rows its filter dropped (PostgreSQL 18 writes rows with decimals).</summary>
    [GeneratedRegex(@"Index Scan using ix_vector_documents_embedding_hnsw on vector_documents \(actual rows=(?<rows>\d+)[^)]*\)\n(?:.*\n)*?\s*Rows Removed by Filter: (?<removed>\d+)")]
    private static partial Regex HnswScan();
}
