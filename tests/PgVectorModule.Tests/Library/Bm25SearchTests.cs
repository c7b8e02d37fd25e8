using PgVectorModule.Data;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// 3,000 documents of Zipf-distributed words (w1 is in most documents, w300 in a few), of lengths from 3 to 120 words,
/// in two sources: enough for the keyword search's bounds to cut, and for common terms to have thousands of postings.
/// </summary>
public sealed class ZipfCorpus(PostgresServer server) : IAsyncLifetime
{
    public const int Rows = 3_000;
    public const int Vocabulary = 300;

    private readonly TestDatabase _database = new(server);

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    /// <summary>Sessions where the keyword search always walks the postings (never reads them all).</summary>
    public NpgsqlDataSource Walking { get; private set; } = null!;

    /// <summary>Sessions where the keyword search always reads every posting of the query's terms.</summary>
    public NpgsqlDataSource ReadingAll { get; private set; } = null!;

    /// <summary>The plan a search runs in: as chosen, always the walk, or always every posting.</summary>
    public NpgsqlDataSource For(string plan) => plan switch
    {
        "chosen" => DataSource,
        "walk" => Walking,
        "read all" => ReadingAll,
        _ => throw new ArgumentOutOfRangeException(nameof(plan), plan, null),
    };

    private NpgsqlDataSource WithReadAllPerRow(string value)
    {
        var builder = new NpgsqlConnectionStringBuilder(_database.ConnectionString.ConnectionString)
        {
            Options = $"-c {SearchSql.ReadAllSetting}={value}",
        };
        return ModuleDataSource.Create(builder, "zipf");
    }

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        await _database.InitializeAsync();
        DataSource = ModuleDataSource.Create(_database.ConnectionString, "zipf");
        Walking = WithReadAllPerRow("0");
        ReadingAll = WithReadAllPerRow("1e12");
        await using (var create = DataSource.CreateCommand("CREATE SCHEMA zipf"))
        {
            await create.ExecuteNonQueryAsync(ct);
        }

        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(DataSource), new VectorStoreShape(3));
        await VectorStore.EnsureExtensionAsync(DataSource, db, ct);
        await VectorStore.RecreateTablesAsync(db, ct);
        var random = new Random(11);
        // P(word k) proportional to 1 / k: a few words everywhere, most words rare, as in any text.
        var cumulative = Enumerable.Range(1, Vocabulary).Select(k => 1.0 / k).ToArray();
        for (var i = 1; i < cumulative.Length; i++)
        {
            cumulative[i] += cumulative[i - 1];
        }

        string Word()
        {
            var index = Array.BinarySearch(cumulative, random.NextDouble() * cumulative[^1]);
            return "w" + ((index < 0 ? ~index : index) + 1);
        }

        var documents = Enumerable.Range(0, Rows)
            .Select(i => new CorpusDocument("", string.Join(' ', Enumerable.Range(0, 3 + random.Next(i % 7 == 0 ? 118 : 40)).Select(_ => Word())),
                i % 2 == 0 ? "even" : "odd"))
            .ToList();
        await VectorStore.CopyAsync(DataSource, documents, documents.Select(_ => new Vector(new float[] { 1, 0, 0 })).ToList(), ct);
        await VectorStore.BuildIndexesAsync(db, [DocumentTermConfiguration.LexemeIndex, DocumentTermConfiguration.DocumentIndex, DocumentFrequencyChangeConfiguration.LexemeIndex], ct);
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await Walking.DisposeAsync();
        await ReadingAll.DisposeAsync();
        await _database.DisposeAsync();
    }
}

/// <summary>
/// The keyword search reads each term's postings only as far as they can still lift a document into the best ones
/// (<see cref="SearchSql.Keyword"/>): here it is checked against BM25 computed over every posting, and for how much less
/// it reads.
/// </summary>
[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Bm25SearchTests(ZipfCorpus corpus) : IClassFixture<ZipfCorpus>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Queries from one very common word to six words common and rare, and a word no document holds.</summary>
    public static TheoryData<string> Queries { get; } =
    [
        "w1", "w1 w2", "w2 w3 w5 w8", "w1 w4 w40 w290", "w1 w2 w3 w4 w5 w6", "w7 w150 w299 nowhere", "w3 w3 w3 w60",
    ];

    public static TheoryData<double, double> Parameters { get; } = new()
    {
        { Bm25Parameters.DefaultK1, Bm25Parameters.DefaultB }, { 0.9, 0.4 }, { 2.0, 1.0 }, { 1.2, 0.0 }, { 0.0, 0.75 },
        // Outside k1 >= 0 and 0 <= b <= 1 the bounds do not hold: the search must read everything and still be exact.
        { 1.2, 1.5 },
    };

    [Theory]
    [MemberData(nameof(Queries))]
    public async Task The_best_documents_and_their_scores_are_those_of_BM25_over_every_posting(string query)
    {
        foreach (var plan in new[] { "chosen", "walk", "read all" })
        {
            foreach (var limit in new[] { 1, 10, 100 })
            {
                foreach (var source in new[] { null, "even" })
                {
                    await AssertExactAsync(plan, query, limit, source, Bm25Parameters.Default);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Parameters))]
    public async Task Exact_whatever_k1_and_b(double k1, double b)
    {
        foreach (var plan in new[] { "walk", "read all" })
        {
            foreach (var query in new[] { "w1 w2 w3 w4 w5 w6", "w2 w30 w200" })
            {
                await AssertExactAsync(plan, query, 10, null, new Bm25Parameters(k1, b));
                await AssertExactAsync(plan, query, 100, "odd", new Bm25Parameters(k1, b));
            }
        }
    }

    [Theory]
    [InlineData("w1 w2 w3 w4 w5 w6", 1)]
    [InlineData("w1 w2 w3 w4 w5 w6", 100)]
    [InlineData("w150 w299", 10)]
    public async Task It_reads_every_posting_only_when_they_are_few_for_the_rows_asked_for_and_then_never_walks(string query, int limit)
    {
        await using var all = corpus.DataSource.CreateCommand($"SELECT count(*) FROM document_terms WHERE lexeme IN ({SearchSql.QueryLexemes})");
        all.Parameters.AddWithValue("query", query);
        var postings = (long)(await all.ExecuteScalarAsync(Ct))!;
        var readAll = postings <= (long)limit * SearchSql.ReadAllPostingsPerRow;

        await using var work = corpus.DataSource.CreateCommand(SearchSql.KeywordWork);
        work.Parameters.AddWithValue("query", query);
        work.Parameters.AddWithValue("limit", limit);
        work.Parameters.AddWithValue("k1", Bm25Parameters.DefaultK1);
        work.Parameters.AddWithValue("b", Bm25Parameters.DefaultB);
        work.Parameters.Add(new NpgsqlParameter("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = DBNull.Value });
        await using (var reader = await work.ExecuteReaderAsync(Ct))
        {
            Assert.True(await reader.ReadAsync(Ct));
            Assert.Equal(readAll, reader.GetBoolean(2));
            var read = reader.GetInt64(0);
            if (readAll)
            {
                Assert.Equal(postings, read);
            }
            else
            {
                Assert.InRange(read, 1, postings);
            }

            Assert.False(await reader.ReadAsync(Ct), "one plan's row, not both");
        }

        // Only the chosen plan runs: the other stands behind a one-time filter, which the plan shows as never executed.
        var plan = await HybridSearch.ExplainAsync(corpus.DataSource, SearchMethod.Keyword, query, null, limit, cancellationToken: Ct);
        var walk = plan.Single(l => l.Contains("Recursive Union", StringComparison.Ordinal));
        Assert.Equal(readAll, walk.Contains("never executed", StringComparison.Ordinal));
        Assert.Contains(plan, l => l.Contains("One-Time Filter", StringComparison.Ordinal));
        // Reading all is the cheap case only for few postings: the test's common query must exercise both ways.
        Assert.True(query != "w1 w2 w3 w4 w5 w6" || readAll == (limit == 100), $"'{query}' top {limit}: {postings} postings");
    }

    [Theory]
    [InlineData("w1 w2 w3 w4 w5 w6", 10)]
    [InlineData("w1 w2 w3 w4 w5 w6", 100)]
    [InlineData("w1 w9 w77", 10)]
    public async Task It_reads_a_fraction_of_the_postings_of_common_terms(string query, int limit)
    {
        // Every posting of the query's terms: what BM25 reads when it scores every document holding one.
        await using var all = corpus.DataSource.CreateCommand($"SELECT count(*) FROM document_terms WHERE lexeme IN ({SearchSql.QueryLexemes})");
        all.Parameters.AddWithValue("query", query);
        var postings = (long)(await all.ExecuteScalarAsync(Ct))!;

        // The rows the keyword search's scans of the postings index returned, from the plan as it ran (the walk forced:
        // with as few postings as these for the top 100 it would read them all, which the test above covers).
        var plan = await HybridSearch.ExplainAsync(corpus.Walking, SearchMethod.Keyword, query, null, limit, cancellationToken: Ct);
        var read = plan.Select(l => System.Text.RegularExpressions.Regex.Match(l,
                $@"Index Only Scan using {DocumentTermConfiguration.LexemeIndex} on document_terms \w+ \(actual rows=(\d+)(?:\.\d+)? loops=(\d+)\)"))
            .Where(m => m.Success)
            .Sum(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * long.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));

        Assert.True(postings > 2_000, $"the query's terms have only {postings} postings");
        Assert.InRange(read, 1, postings / 4);
    }

    private async Task AssertExactAsync(string plan, string query, int limit, string? source, Bm25Parameters parameters)
    {
        var expected = await ExhaustiveAsync(query, limit, source, parameters);
        var hits = await HybridSearch.KeywordAsync(corpus.For(plan), query, limit, source, parameters, Ct);
        var context = $"{plan}: '{query}', top {limit}, source {source ?? "any"}, k1 {parameters.K1}, b {parameters.B}";

        Assert.True(expected.Count == hits.Count, $"{context}: {hits.Count} hits, {expected.Count} expected");
        for (var i = 0; i < hits.Count; i++)
        {
            Assert.True(Math.Abs(expected[i].Score - hits[i].Score) <= 1e-9 * Math.Max(1, Math.Abs(expected[i].Score)),
                $"{context}: #{i + 1} scores {hits[i].Score}, expected {expected[i].Score}");
            // Where the score is tied with a neighbour, summation order may put either first; elsewhere the id must match.
            var tied = expected.Where((e, j) => j != i && Math.Abs(e.Score - expected[i].Score) <= 1e-9 * Math.Max(1, Math.Abs(e.Score))).Any();
            Assert.True(tied || expected[i].Id == hits[i].Id, $"{context}: #{i + 1} is document {hits[i].Id}, expected {expected[i].Id}");
        }
    }

    /// <summary>BM25 over every posting of the query's terms, df counted from the postings: the search without any bound.</summary>
    private async Task<List<(int Id, double Score)>> ExhaustiveAsync(string query, int limit, string? source, Bm25Parameters parameters)
    {
        await using var command = corpus.DataSource.CreateCommand($"""
            WITH corpus AS (
                SELECT (SELECT count(*) FROM vector_documents)::float8 AS n,
                       (SELECT sum(document_length) FROM (SELECT DISTINCT document_id, document_length FROM document_terms) documents)::float8
                       / (SELECT count(*) FROM vector_documents) AS average_length),
            postings AS (
                SELECT t.document_id, t.term_frequency AS tf, t.document_length AS dl, count(*) OVER (PARTITION BY t.lexeme)::float8 AS df
                FROM document_terms t WHERE t.lexeme IN ({SearchSql.QueryLexemes}))
            SELECT p.document_id, sum(ln(1 + (c.n - p.df + 0.5) / (p.df + 0.5)) * p.tf * (@k1 + 1) / (p.tf + @k1 * (1 - @b + @b * p.dl / c.average_length))) AS score
            FROM postings p, corpus c
            WHERE @source::text IS NULL OR p.document_id IN (SELECT id FROM vector_documents WHERE source = @source)
            GROUP BY p.document_id
            ORDER BY score DESC, p.document_id
            LIMIT @limit
            """);
        command.Parameters.AddWithValue("query", query);
        command.Parameters.AddWithValue("k1", parameters.K1);
        command.Parameters.AddWithValue("b", parameters.B);
        command.Parameters.AddWithValue("limit", limit);
        command.Parameters.Add(new NpgsqlParameter("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)source ?? DBNull.Value });
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new List<(int, double)>();
        while (await reader.ReadAsync(Ct))
        {
            rows.Add((reader.GetInt32(0), reader.GetDouble(1)));
        }

        return rows;
    }
}
