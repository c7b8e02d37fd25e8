using System.Globalization;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson11;

/// <param name="Query">What a user typed.</param>
/// <param name="Target">The title of the article that should rank first (src/PgVectorModule/Data/corpus-queries.md).</param>
public sealed record JudgedQuery(string Query, string Target);

/// <param name="Name">How the search ranks: one server's BM25, Citus with per-tenant or global statistics, fused or not.</param>
/// <param name="Ranks">Per judged query, where the target came (1 = first), or null when not in the top 10.</param>
public sealed record RankedMethod(string Name, IReadOnlyList<int?> Ranks, IReadOnlyList<IReadOnlyList<long>> TopTen)
{
    /// <summary>nDCG@10 with one relevant article per query: 1 / log2(rank + 1), 0 outside the top 10, averaged.</summary>
    public double Ndcg => Ranks.Average(r => r is { } rank ? 1 / Math.Log2(rank + 1) : 0);
}

public sealed partial class ScaleOutLesson
{
    /// <summary>The queries of corpus-queries.md that have one article to rank first: paraphrases, exact terms, several words.</summary>
    public static IReadOnlyList<JudgedQuery> JudgedQueries { get; } =
    [
        new("automatic failover to a standby replica", "Surviving the Loss of the Main Server With a Continuously Updated Twin"),
        new("database sharding", "Spreading One Huge Table's Records Across Many Servers by Tenant"),
        new("supervised learning", "How Much Does a Predictor Gain When Every Input Arrives With Its Correct Answer?"),
        new("dependency injection container", "Handing Components Their Collaborators From the Outside"),
        new("knowledge distillation", "Shrinking a Large Network by Having a Compact One Imitate Its Outputs"),
        new("42P01", "The Day 42P01 undefined_table Broke Our Deploy"),
        new("23503", "Error 23503 foreign_key_violation"),
        new("error 53300", "53300 too_many_connections After Scaling to Ten Pods"),
        new("pgvector 0.8.0", "pgvector 0.8.0 Iterative Index Scans Fixed Our Filtered Queries"),
        new("Npgsql 10", "Upgrading to EF Core 10 and Npgsql 10 in One Sprint"),
        new("SQLSTATE 40P01", "We Hit SQLSTATE 40P01 Every Night at 2am"),
        new("HNSW graph index for approximate nearest neighbor search", "HNSW in Practice: What the Graph Index Does to Your Queries"),
        new("reciprocal rank fusion of keyword and vector results", "Reciprocal Rank Fusion: Formula and the k Parameter"),
        new("MVCC readers and writers", "Multi-Version Concurrency Control: Why Readers Never Block Writers"),
        new("integration tests with Testcontainers", "Integration Tests Against a Real Postgres With Testcontainers"),
    ];

    /// <summary>
    /// BM25's postings, co-located with the articles (a shard of articles and its postings on one worker, so they join
    /// there), and each tenant's own counts: both filled by INSERT ... SELECT, which Citus runs on every shard in place.
    /// </summary>
    public static IReadOnlyList<string> PostingsStatements { get; } =
    [
        """
        CREATE TABLE article_terms (
            tenant_id int NOT NULL, article_id bigint NOT NULL, lexeme text NOT NULL,
            term_frequency int NOT NULL, article_length int NOT NULL,
            PRIMARY KEY (tenant_id, lexeme, article_id))
        """,
        "SELECT create_distributed_table('article_terms', 'tenant_id', colocate_with => 'articles')",
        "CREATE INDEX article_terms_lexeme ON article_terms (lexeme) INCLUDE (term_frequency, article_length)",
        """
        INSERT INTO article_terms (tenant_id, article_id, lexeme, term_frequency, article_length)
        SELECT a.tenant_id, a.id, t.lexeme, coalesce(array_length(t.positions, 1), 1),
               sum(coalesce(array_length(t.positions, 1), 1)) OVER (PARTITION BY a.tenant_id, a.id)
        FROM articles a, unnest(a.content_tsv) AS t(lexeme, positions, weights)
        """,
        "CREATE TABLE tenant_statistics (tenant_id int PRIMARY KEY, article_count bigint NOT NULL, total_length bigint NOT NULL)",
        "SELECT create_distributed_table('tenant_statistics', 'tenant_id', colocate_with => 'articles')",
        "INSERT INTO tenant_statistics SELECT tenant_id, count(DISTINCT article_id), sum(term_frequency) FROM article_terms GROUP BY tenant_id",
    ];

    /// <summary>
    /// The fix: the whole corpus' statistics in reference tables, a copy on every node, so each shard scores with them
    /// where it is. Counted across all shards (the coordinator sums them) after each load; a load that adds documents
    /// runs the refresh again.
    /// </summary>
    public static IReadOnlyList<string> GlobalStatisticsStatements { get; } =
    [
        "CREATE TABLE term_statistics (lexeme text PRIMARY KEY, document_frequency bigint NOT NULL)",
        "SELECT create_reference_table('term_statistics')",
        "CREATE TABLE corpus_statistics (id int PRIMARY KEY CHECK (id = 1), article_count bigint NOT NULL, total_length bigint NOT NULL)",
        "SELECT create_reference_table('corpus_statistics')",
    ];

    public const string RefreshGlobalStatistics = """
        BEGIN;
        TRUNCATE term_statistics, corpus_statistics;
        INSERT INTO term_statistics (lexeme, document_frequency) SELECT lexeme, count(*) FROM article_terms GROUP BY lexeme;
        INSERT INTO corpus_statistics (id, article_count, total_length) SELECT 1, sum(article_count), sum(total_length) FROM tenant_statistics;
        COMMIT;
        """;

    /// <summary>
    /// BM25 as a shard can count it alone: each tenant's document frequencies (a window over tenant and lexeme: Citus
    /// pushes a window down only when it partitions by the distribution column) and each tenant's size and average length.
    /// </summary>
    public static string Bm25PerTenant(string limit) => $"""
        WITH postings AS (
            SELECT t.tenant_id, t.article_id, t.term_frequency AS tf, t.article_length AS dl,
                   count(*) OVER (PARTITION BY t.tenant_id, t.lexeme)::float8 AS df
            FROM article_terms t
            WHERE t.lexeme = ANY (tsvector_to_array(to_tsvector('english', @query))))
        SELECT p.tenant_id, p.article_id AS id,
               sum(ln(1 + (s.article_count - p.df + 0.5) / (p.df + 0.5))
                   * p.tf * (@k1 + 1) / (p.tf + @k1 * (1 - @b + @b * p.dl / (s.total_length::float8 / s.article_count)))) AS score
        FROM postings p JOIN tenant_statistics s ON s.tenant_id = p.tenant_id
        GROUP BY p.tenant_id, p.article_id
        ORDER BY score DESC, id
        LIMIT {limit}
        """;

    /// <summary>BM25 with the whole corpus' statistics, read from the reference tables on whichever node the shard is.</summary>
    public static string Bm25Global(string limit) => $"""
        WITH corpus AS (SELECT article_count::float8 AS n, total_length::float8 / article_count AS average_length FROM corpus_statistics)
        SELECT t.tenant_id, t.article_id AS id,
               sum(ln(1 + (c.n - s.document_frequency::float8 + 0.5) / (s.document_frequency::float8 + 0.5))
                   * t.term_frequency * (@k1 + 1) / (t.term_frequency + @k1 * (1 - @b + @b * t.article_length / c.average_length))) AS score
        FROM article_terms t
        JOIN term_statistics s ON s.lexeme = t.lexeme
        CROSS JOIN corpus c
        WHERE t.lexeme = ANY (tsvector_to_array(to_tsvector('english', @query)))
        GROUP BY t.tenant_id, t.article_id
        ORDER BY score DESC, id
        LIMIT {limit}
        """;

    /// <summary>
    /// Reciprocal rank fusion across shards: each leg fans out and is merged by the coordinator (Citus runs a CTE it cannot
    /// push down on its own and hands its rows on), the fusion runs on the coordinator, the titles come from the shards.
    /// </summary>
    public static string ReciprocalRankFusion(string bm25) => $"""
        WITH vector AS (
            SELECT tenant_id, id, row_number() OVER (ORDER BY distance, id) AS rank
            FROM (SELECT tenant_id, id, embedding <=> @embedding AS distance
                  FROM articles ORDER BY embedding <=> @embedding LIMIT @candidates) nearest),
        keyword AS (
            SELECT tenant_id, id, row_number() OVER (ORDER BY score DESC, id) AS rank
            FROM ({bm25}) best),
        fused AS (
            SELECT coalesce(v.tenant_id, k.tenant_id) AS tenant_id, coalesce(v.id, k.id) AS id,
                   coalesce(1.0 / (@k + v.rank), 0.0) + coalesce(1.0 / (@k + k.rank), 0.0) AS score
            FROM vector v FULL JOIN keyword k ON k.tenant_id = v.tenant_id AND k.id = v.id)
        SELECT f.id, a.title, f.score
        FROM (SELECT * FROM fused ORDER BY score DESC, id LIMIT @limit) f
        JOIN articles a ON a.tenant_id = f.tenant_id AND a.id = f.id
        ORDER BY f.score DESC, f.id
        """;

    private static async Task HybridAsync(Lesson lesson, NpgsqlDataSource citus, SingleServer single, TextEmbedder embedder, CancellationToken cancellationToken)
    {
        lesson.Step("hybrid-across-shards", "Hybrid search across shards: BM25's statistics per tenant or global",
            "BM25 weighs a term by how rare it is (its document frequency among N documents) and a document by its length against the average. " +
            "A pushed-down query counts only the rows where it runs: per tenant, a term common in one customer's articles and rare overall is weighed as common there, and scores from different tenants no longer compare. " +
            "The fix taught here: the whole corpus' counts in reference tables, a copy on every node, refreshed after each load. Measured on the judged queries of the sample corpus against one server's answer.");
        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        // The postings, the reference tables of global counts and the three searches' SQL: whole with --verbose.
        using (lesson.Detail())
        {
            foreach (var statement in PostingsStatements.Concat(GlobalStatisticsStatements))
            {
                await lesson.ExecuteAsync(statement, connection, cancellationToken);
            }

            await lesson.ExecuteAsync(RefreshGlobalStatistics, connection, cancellationToken);
            lesson.Sql(Bm25PerTenant("@limit"), ["@query, @k1 = 1.2, @b = 0.75, @limit = 10"]);
            lesson.Sql(Bm25Global("@limit"), ["@query, @k1 = 1.2, @b = 0.75, @limit = 10"]);
            lesson.Sql(ReciprocalRankFusion(Bm25Global("@candidates")), ["@embedding, @candidates = 100 per leg, @k = 10, @limit = 10; in a transaction with SET LOCAL hnsw.ef_search = 100 (carried to the shards)"]);
        }

        lesson.Say("Postings on every shard, the whole corpus' counts in reference tables, BM25 per tenant and global, and RRF over global BM25 and the vector leg: the SQL is whole with --verbose.", Tone.Aside);

        var ids = single.Articles.ToDictionary(a => a.Title, a => (long)a.Id);
        var targets = JudgedQueries.Select(q => ids[q.Target]).ToList();
        var options = HybridOptions.Default;
        var methods = new List<(string Name, Func<string, Vector, Task<IReadOnlyList<long>>> Run)>
        {
            ("BM25, one server", async (q, _) => (await HybridSearch.KeywordAsync(single.Source, q, 10, cancellationToken: cancellationToken)).Select(h => (long)h.Id).ToList()),
            ("BM25, Citus, per-tenant statistics", (q, _) => RankAsync(connection, Bm25PerTenant("@limit"), q, null, cancellationToken)),
            ("BM25, Citus, global statistics", (q, _) => RankAsync(connection, Bm25Global("@limit"), q, null, cancellationToken)),
            ("RRF hybrid, one server", async (q, v) => (await HybridSearch.ReciprocalRankFusionAsync(single.Source, q, v, 10, options: options, cancellationToken: cancellationToken)).Select(h => (long)h.Id).ToList()),
            ("RRF hybrid, Citus, per-tenant statistics", (q, v) => RankAsync(connection, ReciprocalRankFusion(Bm25PerTenant("@candidates")), q, v, cancellationToken)),
            ("RRF hybrid, Citus, global statistics", (q, v) => RankAsync(connection, ReciprocalRankFusion(Bm25Global("@candidates")), q, v, cancellationToken)),
        };

        var results = new List<RankedMethod>();
        var vectors = new List<Vector>();
        foreach (var judged in JudgedQueries)
        {
            vectors.Add(await embedder.EmbedQueryAsync(judged.Query, cancellationToken));
        }

        using (lesson.QuietSql())
        {
            foreach (var (name, run) in methods)
            {
                var tops = new List<IReadOnlyList<long>>();
                for (var i = 0; i < JudgedQueries.Count; i++)
                {
                    tops.Add(await run(JudgedQueries[i].Query, vectors[i]));
                }

                results.Add(new RankedMethod(name, tops.Select((top, i) => Rank(top, targets[i])).ToList(), tops));
            }
        }

        // One server's ranks are the global statistics' (the summary below counts it): the table shows the four Citus ways.
        var rankColumns = new List<(string Header, Func<int, object?> Value)> { ("query", i => JudgedQueries[i].Query) };
        rankColumns.AddRange(results.Where(m => m.Name.Contains("Citus", StringComparison.Ordinal))
            .Select(m => (ShortName(m.Name), (Func<int, object?>)(i => m.Ranks[i]?.ToString(CultureInfo.InvariantCulture) ?? "-"))));
        // Query by query is the detail; the summary below is what the step found.
        using (lesson.Detail())
        {
            lesson.Say("Where each query's target article came on Citus (1 = first, - = not in the top 10):", Tone.Aside);
            lesson.Table(Enumerable.Range(0, JudgedQueries.Count), [.. rankColumns]);
        }

        lesson.Table(results,
            ("method", m => m.Name),
            ("nDCG@10", m => m.Ndcg.ToString("0.000", CultureInfo.InvariantCulture)),
            ("same top 10 as one server", m => $"{SameAsOneServer(m, results)} of {JudgedQueries.Count}"));

        var globalSame = SameAsOneServer(results[2], results);
        var perTenantSame = SameAsOneServer(results[1], results);
        lesson.Say($"With global statistics BM25 gives one server's top 10 for {globalSame} of {JudgedQueries.Count} queries; with per-tenant statistics for {perTenantSame}. " +
                   $"nDCG@10 of BM25: one server {results[0].Ndcg:0.000}, per tenant {results[1].Ndcg:0.000}, global {results[2].Ndcg:0.000}; of the RRF hybrid: {results[3].Ndcg:0.000}, {results[4].Ndcg:0.000}, {results[5].Ndcg:0.000}. " +
                   "On SciFact (5,183 abstracts spread over tenants) the bench measures the same comparison: docs/benchmarks.md.");
    }

    private static string ShortName(string method) => method
        .Replace("BM25, ", "BM25 ", StringComparison.Ordinal).Replace("RRF hybrid, ", "RRF ", StringComparison.Ordinal)
        .Replace("Citus, ", "", StringComparison.Ordinal).Replace(" statistics", "", StringComparison.Ordinal);

    /// <summary>Queries whose top 10 equals the one-server method's of the same kind (BM25 or RRF).</summary>
    private static int SameAsOneServer(RankedMethod method, IReadOnlyList<RankedMethod> all)
    {
        var reference = all.First(m => m.Name.StartsWith(method.Name.Split(',')[0], StringComparison.Ordinal) && m.Name.EndsWith("one server", StringComparison.Ordinal));
        return method.TopTen.Where((top, i) => top.SequenceEqual(reference.TopTen[i])).Count();
    }

    private static int? Rank(IReadOnlyList<long> top, long target) => top.Take(10).ToList().IndexOf(target) is var i and >= 0 ? i + 1 : null;

    /// <summary>Runs one of the lesson's distributed searches: hnsw.ef_search raised for the fused query's vector leg, carried to the shards.</summary>
    public static async Task<IReadOnlyList<long>> RankAsync(NpgsqlConnection connection, string sql, string query, Vector? embedding, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var options = HybridOptions.Default;
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var set = new NpgsqlCommand($"SET LOCAL hnsw.ef_search = {options.Candidates}", connection, transaction))
        {
            await set.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.AddWithValue("query", query);
        command.Parameters.AddWithValue("k1", options.Bm25.K1);
        command.Parameters.AddWithValue("b", options.Bm25.B);
        command.Parameters.AddWithValue("limit", 10);
        command.Parameters.AddWithValue("candidates", options.Candidates);
        command.Parameters.AddWithValue("k", options.RrfK);
        if (embedding is not null)
        {
            command.Parameters.AddWithValue("embedding", embedding);
        }

        var ids = new List<long>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                ids.Add(reader.GetInt64(reader.GetOrdinal("id")));
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return ids;
    }
}
