using PgVectorModule.Search;

namespace PgVectorModule.Citus;

/// <summary>Where BM25's statistics come from on a distributed table.</summary>
public enum Bm25Statistics
{
    /// <summary>Counted where the query runs: each tenant's own document frequencies, size and average length.</summary>
    PerTenant,

    /// <summary>The whole corpus' counts, kept in reference tables (a copy on every node) and refreshed after each load.</summary>
    Global,
}

/// <param name="TenantId">The tenant the passage belongs to (the distribution column).</param>
public sealed record DistributedHit(int TenantId, long Id);

/// <summary>
/// Vector, BM25 and hybrid search on a Citus cluster, as lesson 11 teaches them, for passages distributed by tenant:
/// <c>passages</c> (text, vector, tsvector) distributed by tenant_id, its BM25 postings and per-tenant counts co-located
/// with it, and the global counts in reference tables. Every query comes in two forms: over all tenants (a task per
/// shard, merged by the coordinator) and for one tenant (routed to its shard). The statements work in the search path's
/// first schema, like the library's single-server search.
/// </summary>
public static class DistributedSearch
{
    public const string Table = "passages";

    /// <summary>Tables, distribution and co-location; <paramref name="shardCount"/> null keeps Citus's default (32).</summary>
    public static IReadOnlyList<string> CreateStatements(int dimensions, int? shardCount = null) =>
    [
        "DROP TABLE IF EXISTS passages, passage_terms, tenant_statistics, term_statistics, corpus_statistics",
        $"""
        CREATE TABLE passages (
            tenant_id int NOT NULL, id bigint NOT NULL, title text NOT NULL, content text NOT NULL,
            embedding vector({dimensions}) NOT NULL,
            content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || content)) STORED,
            PRIMARY KEY (tenant_id, id))
        """,
        $"SELECT create_distributed_table('passages', 'tenant_id'{(shardCount is { } n ? $", shard_count => {n}" : "")})",
        """
        CREATE TABLE passage_terms (
            tenant_id int NOT NULL, passage_id bigint NOT NULL, lexeme text NOT NULL,
            term_frequency int NOT NULL, passage_length int NOT NULL,
            PRIMARY KEY (tenant_id, lexeme, passage_id))
        """,
        "SELECT create_distributed_table('passage_terms', 'tenant_id', colocate_with => 'passages')",
        "CREATE TABLE tenant_statistics (tenant_id int PRIMARY KEY, passage_count bigint NOT NULL, total_length bigint NOT NULL)",
        "SELECT create_distributed_table('tenant_statistics', 'tenant_id', colocate_with => 'passages')",
        "CREATE TABLE term_statistics (lexeme text PRIMARY KEY, document_frequency bigint NOT NULL)",
        "SELECT create_reference_table('term_statistics')",
        "CREATE TABLE corpus_statistics (id int PRIMARY KEY CHECK (id = 1), passage_count bigint NOT NULL, total_length bigint NOT NULL)",
        "SELECT create_reference_table('corpus_statistics')",
    ];

    public const string CopyCommand = "COPY passages (tenant_id, id, title, content, embedding) FROM STDIN (FORMAT BINARY)";

    /// <summary>After a load: the postings and per-tenant counts (pushed down to every shard), the indexes, the global counts.</summary>
    public static IReadOnlyList<string> IndexStatements { get; } =
    [
        """
        INSERT INTO passage_terms (tenant_id, passage_id, lexeme, term_frequency, passage_length)
        SELECT p.tenant_id, p.id, t.lexeme, coalesce(array_length(t.positions, 1), 1),
               sum(coalesce(array_length(t.positions, 1), 1)) OVER (PARTITION BY p.tenant_id, p.id)
        FROM passages p, unnest(p.content_tsv) AS t(lexeme, positions, weights)
        """,
        "INSERT INTO tenant_statistics SELECT tenant_id, count(DISTINCT passage_id), sum(term_frequency) FROM passage_terms GROUP BY tenant_id",
        "CREATE INDEX passage_terms_lexeme ON passage_terms (lexeme) INCLUDE (term_frequency, passage_length)",
        "CREATE INDEX passages_hnsw ON passages USING hnsw (embedding vector_cosine_ops)",
        RefreshGlobalStatistics,
        "VACUUM ANALYZE passages, passage_terms",
    ];

    /// <summary>The global counts, recounted in one transaction: run again after every load that adds passages.</summary>
    public const string RefreshGlobalStatistics = """
        BEGIN;
        TRUNCATE term_statistics, corpus_statistics;
        INSERT INTO term_statistics (lexeme, document_frequency) SELECT lexeme, count(*) FROM passage_terms GROUP BY lexeme;
        INSERT INTO corpus_statistics (id, passage_count, total_length) SELECT 1, sum(passage_count), sum(total_length) FROM tenant_statistics;
        COMMIT;
        """;

    private static string TenantFilter(bool oneTenant, string alias) => oneTenant ? $"{alias}tenant_id = @tenant AND " : "";

    /// <summary>The nearest passages: every shard's own nearest merged by the coordinator, or one tenant's shard alone.</summary>
    public static string Vector(bool oneTenant) => $"""
        SELECT tenant_id, id FROM passages
        WHERE {TenantFilter(oneTenant, "")}true
        ORDER BY embedding <=> @embedding
        LIMIT @limit
        """;

    /// <summary>Okapi BM25 with the statistics <paramref name="statistics"/> names; LIMIT <paramref name="limit"/>.</summary>
    public static string Bm25(Bm25Statistics statistics, bool oneTenant, string limit) => statistics switch
    {
        Bm25Statistics.PerTenant => $"""
            WITH postings AS (
                SELECT t.tenant_id, t.passage_id, t.term_frequency AS tf, t.passage_length AS dl,
                       count(*) OVER (PARTITION BY t.tenant_id, t.lexeme)::float8 AS df
                FROM passage_terms t
                WHERE {TenantFilter(oneTenant, "t.")}t.lexeme = ANY (tsvector_to_array(to_tsvector('english', @query))))
            SELECT p.tenant_id, p.passage_id AS id,
                   sum(ln(1 + (s.passage_count - p.df + 0.5) / (p.df + 0.5))
                       * p.tf * (@k1 + 1) / (p.tf + @k1 * (1 - @b + @b * p.dl / (s.total_length::float8 / s.passage_count)))) AS score
            FROM postings p JOIN tenant_statistics s ON s.tenant_id = p.tenant_id
            GROUP BY p.tenant_id, p.passage_id
            ORDER BY score DESC, id
            LIMIT {limit}
            """,
        _ => $"""
            WITH corpus AS (SELECT passage_count::float8 AS n, total_length::float8 / passage_count AS average_length FROM corpus_statistics)
            SELECT t.tenant_id, t.passage_id AS id,
                   sum(ln(1 + (c.n - s.document_frequency::float8 + 0.5) / (s.document_frequency::float8 + 0.5))
                       * t.term_frequency * (@k1 + 1) / (t.term_frequency + @k1 * (1 - @b + @b * t.passage_length / c.average_length))) AS score
            FROM passage_terms t
            JOIN term_statistics s ON s.lexeme = t.lexeme
            CROSS JOIN corpus c
            WHERE {TenantFilter(oneTenant, "t.")}t.lexeme = ANY (tsvector_to_array(to_tsvector('english', @query)))
            GROUP BY t.tenant_id, t.passage_id
            ORDER BY score DESC, id
            LIMIT {limit}
            """,
    };

    /// <summary>Reciprocal rank fusion of the two legs, each fanned out (or routed) and merged, fused on the coordinator.</summary>
    public static string ReciprocalRankFusion(Bm25Statistics statistics, bool oneTenant) => $"""
        WITH vector AS (
            SELECT tenant_id, id, row_number() OVER (ORDER BY distance, id) AS rank
            FROM (SELECT tenant_id, id, embedding <=> @embedding AS distance
                  FROM passages WHERE {TenantFilter(oneTenant, "")}true
                  ORDER BY embedding <=> @embedding LIMIT @candidates) nearest),
        keyword AS (
            SELECT tenant_id, id, row_number() OVER (ORDER BY score DESC, id) AS rank
            FROM ({Bm25(statistics, oneTenant, "@candidates")}) best),
        fused AS (
            SELECT coalesce(v.tenant_id, k.tenant_id) AS tenant_id, coalesce(v.id, k.id) AS id,
                   coalesce(1.0 / (@k + v.rank), 0.0) + coalesce(1.0 / (@k + k.rank), 0.0) AS score
            FROM vector v FULL JOIN keyword k ON k.tenant_id = v.tenant_id AND k.id = v.id)
        SELECT tenant_id, id FROM fused ORDER BY score DESC, id LIMIT @limit
        """;

    /// <summary>
    /// Runs one of the statements above in a transaction whose SET LOCALs reach the shards (the data source needs
    /// -c citus.propagate_set_commands=local): hnsw.ef_search raised to the candidate count, and for one tenant an
    /// iterative scan, so the HNSW scan goes on past the other tenants' rows of its shard.
    /// </summary>
    public static async Task<IReadOnlyList<DistributedHit>> SearchAsync(NpgsqlDataSource citus, string sql, string? query, Vector? embedding,
        int? tenant, int limit, HybridOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(citus);
        var settings = options ?? HybridOptions.Default;
        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var set = $"SET LOCAL hnsw.ef_search = {Math.Max(Math.Max(settings.Candidates, limit), HybridSearch.PgvectorDefaultEfSearch)}";
        await using (var command = new NpgsqlCommand(tenant is null ? set : set + "; SET LOCAL hnsw.iterative_scan = relaxed_order", connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        var hits = new List<DistributedHit>();
        await using (var command = new NpgsqlCommand(sql, connection, transaction))
        {
            command.Parameters.AddWithValue("query", query ?? "");
            command.Parameters.AddWithValue("k1", settings.Bm25.K1);
            command.Parameters.AddWithValue("b", settings.Bm25.B);
            command.Parameters.AddWithValue("limit", limit);
            command.Parameters.AddWithValue("candidates", settings.Candidates);
            command.Parameters.AddWithValue("k", settings.RrfK);
            command.Parameters.AddWithValue("tenant", tenant ?? 0);
            if (embedding is not null)
            {
                command.Parameters.AddWithValue("embedding", embedding);
            }

            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                hits.Add(new DistributedHit(reader.GetInt32(0), reader.GetInt64(1)));
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return hits;
    }

    /// <summary>A data source on a coordinator whose SET LOCALs are carried to the shards' connections.</summary>
    public static NpgsqlDataSource CoordinatorSource(NpgsqlConnectionStringBuilder coordinator, string schema)
    {
        ArgumentNullException.ThrowIfNull(coordinator);
        var cs = new NpgsqlConnectionStringBuilder(coordinator.ConnectionString)
        {
            SearchPath = $"{schema}, public",
            Options = $"{coordinator.Options} -c citus.propagate_set_commands=local".Trim(),
            CommandTimeout = 0,
        };
        var builder = new NpgsqlDataSourceBuilder(cs.ConnectionString);
        builder.UseVector();
        return builder.Build();
    }
}
