namespace PgVectorModule.Search;

/// <summary>
/// The search SQL the lessons and the benchmark share: BM25 keyword search, weighted hybrid and reciprocal rank fusion,
/// each one statement. Parameters: @query (text), @embedding (vector), @source (text or NULL), @limit, @candidates,
/// @k1 and @b (BM25), and per method more. Run them through <see cref="HybridSearch"/>, which also sets the HNSW scan
/// up so the vector leg really returns @candidates rows.
/// </summary>
public static class SearchSql
{
    /// <summary>
    /// The question's terms: the lexemes to_tsvector makes of it with the same parser and dictionary that built
    /// content_tsv, so query and documents meet on the same stems. to_tsvector never fails on input (operators, quotes
    /// and brackets are just text to it) and stop words drop out.
    /// </summary>
    public const string QueryLexemes = "SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('english', @query))) AS lexeme";

    /// <summary>Search-engine syntax for people who type it ("quoted phrase", or, -exclude): every other term is ANDed.</summary>
    public const string AllTermsQuery = "websearch_to_tsquery('english', @query)";

    /// <summary>
    /// Okapi BM25 over the postings table, as CTEs ending in <c>bm25(id, score)</c>: one row per document holding any
    /// query term. The query terms' postings come from one index (an index-only scan over a few thousand entries), the
    /// document frequency of each term is counted from those same postings (a window over the lexeme), and the corpus
    /// size and average length are the sums of bm25_corpus's few rows (<see cref="Bm25Index"/>), so no statement ever
    /// scans the documents. The idf is Lucene's ln(1 + (N - df + 0.5) / (df + 0.5)), never negative. The source filter
    /// keeps df corpus-wide.
    /// </summary>
    public const string Bm25 = $"""
        corpus AS (
            SELECT sum(document_count)::float8 AS n, sum(total_length)::float8 / greatest(sum(document_count), 1) AS average_length
            FROM bm25_corpus),
        postings AS (
            SELECT t.document_id, t.term_frequency AS tf, t.document_length AS dl, count(*) OVER (PARTITION BY t.lexeme)::float8 AS df
            FROM document_terms t
            WHERE t.lexeme IN ({QueryLexemes})),
        bm25 AS (
            SELECT p.document_id AS id,
                   sum(ln(1 + (c.n - p.df + 0.5) / (p.df + 0.5))
                       * p.tf * (@k1 + 1) / (p.tf + @k1 * (1 - @b + @b * p.dl / c.average_length))) AS score
            FROM postings p, corpus c
            WHERE @source::text IS NULL OR p.document_id IN (SELECT id FROM vector_documents WHERE source = @source)
            GROUP BY p.document_id)
        """;

    /// <summary>
    /// The vector leg: the query vector is a parameter right in the ORDER BY, the one shape an HNSW index can answer
    /// (against a CTE's column the planner would scan every row). <see cref="HybridSearch"/> raises hnsw.ef_search to
    /// @candidates and, under a filter, turns on an iterative scan, whose relaxed order the outer ranking re-sorts
    /// (<see cref="ByDistance"/>).
    /// </summary>
    private const string NearestCandidates = $"""
        SELECT id, embedding <=> @embedding AS distance
                  {NearestRows}
        """;

    /// <summary>
    /// The vector leg's ranking: by distance, then id. Written <c>distance + 0</c> (pgvector's README) because the planner
    /// takes the subquery's ORDER BY embedding &lt;=&gt; @embedding as given and would only sort ties by id (an Incremental
    /// Sort with the distance as its presorted key); a relaxed-order iterative scan does not keep that order, so the
    /// ranks would follow the scan, not the distance. An expression the index does not order by forces a full Sort.
    /// </summary>
    private const string ByDistance = "ORDER BY distance + 0, id";

    /// <summary>Where the vector leg's candidates come from, in the order an HNSW index returns them.</summary>
    private const string NearestRows = """
        FROM vector_documents
                  WHERE @source::text IS NULL OR source = @source
                  ORDER BY embedding <=> @embedding
                  LIMIT @candidates
        """;

    /// <summary>
    /// The fused queries' vector leg as a statement of its own (<see cref="StagedHybridSearch"/>): the same candidates,
    /// with their titles, so the C# fusion needs no further round trip. Under a filter the iterative scan's relaxed order
    /// comes back as it is; the fusion ranks by distance, then id, as row_number() does in the fused queries.
    /// </summary>
    public const string VectorLeg = $"""
        SELECT id, title, source, embedding <=> @embedding AS distance
                  {NearestRows}
        """;

    /// <summary>The best @limit of a CTE <c>fused(id, score, vector_rank, keyword_rank)</c>, with titles: the only rows read from the table.</summary>
    private const string TopFused = """
        best AS (SELECT * FROM fused ORDER BY score DESC, id LIMIT @limit)
        SELECT d.id, d.title, d.source, b.score, b.vector_rank, b.keyword_rank
        FROM best b JOIN vector_documents d ON d.id = b.id
        ORDER BY b.score DESC, d.id
        """;

    /// <summary>Full-text search with every term required: websearch_to_tsquery, ranked by ts_rank_cd (normalization 32: rank / (rank + 1), so 0..1).</summary>
    public const string KeywordAllTerms = $"""
        SELECT d.id, d.title, d.source, ts_rank_cd(d.content_tsv, q.query, 32) AS score
        FROM vector_documents d, {AllTermsQuery} AS q(query)
        WHERE d.content_tsv @@ q.query AND (@source::text IS NULL OR d.source = @source)
        ORDER BY score DESC, d.id
        LIMIT @limit
        """;

    /// <summary>
    /// BM25 keyword search: any query term may match, the rarer and the more often present, the higher. With @limit set to
    /// @candidates it is also the fused queries' keyword leg as a statement of its own (<see cref="StagedHybridSearch"/>):
    /// the same best rows by score, then id, with their titles.
    /// </summary>
    public const string Keyword = $"""
        WITH {Bm25},
        best AS (SELECT id, score FROM bm25 ORDER BY score DESC, id LIMIT @limit)
        SELECT d.id, d.title, d.source, b.score
        FROM best b JOIN vector_documents d ON d.id = b.id
        ORDER BY b.score DESC, d.id
        """;

    /// <summary>
    /// Weighted hybrid: the best @candidates of each leg, each list's scores min-max normalized to 0..1 (so a weight of
    /// 0.7 means 70 % of the say, whatever scales cosine similarity and BM25 happen to have), then
    /// @vector_weight * vector + (1 - @vector_weight) * keyword; a document missing from one list gets 0 there.
    /// </summary>
    public const string Weighted = $"""
        WITH vector AS (
            SELECT id, row_number() OVER ({ByDistance}) AS rank,
                   coalesce((max(distance) OVER () - distance) / nullif(max(distance) OVER () - min(distance) OVER (), 0), 1) AS normalized
            FROM ({NearestCandidates}) nearest),
        {Bm25},
        keyword AS (
            SELECT id, rank, coalesce((score - min(score) OVER ()) / nullif(max(score) OVER () - min(score) OVER (), 0), 1) AS normalized
            FROM (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank
                  FROM bm25 ORDER BY score DESC, id LIMIT @candidates) best_keyword),
        fused AS (
            SELECT coalesce(v.id, k.id) AS id,
                   @vector_weight * coalesce(v.normalized, 0) + (1 - @vector_weight) * coalesce(k.normalized, 0) AS score,
                   v.rank AS vector_rank, k.rank AS keyword_rank
            FROM vector v FULL JOIN keyword k ON k.id = v.id),
        {TopFused}
        """;

    /// <summary>
    /// Reciprocal rank fusion: only ranks count, 1 / (@k + rank) from each list, summed. Nothing to normalize; k keeps
    /// one list's first place from drowning everything else.
    /// </summary>
    public const string ReciprocalRankFusion = $"""
        WITH vector AS (
            SELECT id, row_number() OVER ({ByDistance}) AS rank
            FROM ({NearestCandidates}) nearest),
        {Bm25},
        keyword AS (
            SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank
            FROM bm25 ORDER BY score DESC, id LIMIT @candidates),
        fused AS (
            SELECT coalesce(v.id, k.id) AS id,
                   coalesce(1.0 / (@k + v.rank), 0.0) + coalesce(1.0 / (@k + k.rank), 0.0) AS score,
                   v.rank AS vector_rank, k.rank AS keyword_rank
            FROM vector v FULL JOIN keyword k ON k.id = v.id),
        {TopFused}
        """;
}
