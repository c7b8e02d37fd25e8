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
    /// Okapi BM25 over the postings table, as CTEs ending in <c>bm25(id, score)</c>: the best <paramref name="depth"/>
    /// documents (@limit, or @candidates for a fused query's leg) with their exact scores, found without scoring every
    /// document that holds a query term. The corpus size and average length are the sums of bm25_corpus's few rows, each
    /// term's document frequency the sum of its few rows in bm25_document_frequencies (<see cref="Bm25Index"/>), so no
    /// statement scans the documents or counts a term's postings. The idf is Lucene's ln(1 + (N - df + 0.5) / (df + 0.5)),
    /// never negative. The source filter keeps df corpus-wide. The statement must begin WITH RECURSIVE.
    /// <para>
    /// The search is MaxScore over impact-ordered postings. A posting's weight,
    /// idf (k1 + 1) / (1 + k1 (1 - b) / tf + (k1 b / average length) x length / tf), is at most
    /// idf (k1 + 1) / (1 + (k1 b / average length) x length_per_occurrence) for k1 &gt;= 0 and b in 0..1, and the postings
    /// index lists each term's postings by length_per_occurrence (length / tf): a term's first posting bounds the whole
    /// term (<c>most</c>), and each posting every one after it. <c>bm25_search</c> walks the terms from the one that can
    /// add the most, and each term's postings in that order, a batch at a time (<paramref name="depth"/> postings, then
    /// twice as many each time); the documents a batch finds are scored (the posting's weight plus their postings of the
    /// later terms, one probe of ix_document_terms_document each) and merged into the best <paramref name="depth"/> so
    /// far, whose last score is the threshold. A document worth scoring when the walk reaches a term holds none of the
    /// terms before it (those were walked: a document holding one was scored then, or shown below the threshold, and a
    /// score that leaves its earlier terms out is lower still), so its score is exact, and at most its posting's
    /// weight plus the <c>most</c> of every later term: a posting for which that stays below the threshold is not scored,
    /// a term's postings are read only as far as their bound can reach it, and the walk stops at the first term whose
    /// <c>most</c>, with every later term's, cannot. Everything skipped scores below the threshold, which the final best
    /// cannot fall under, so the result is the exhaustive one (a relative margin of 1e-9 covers rounding: a skipped
    /// document is below the threshold by more than that). Outside k1 &gt;= 0 and 0 &lt;= b &lt;= 1 the bound does not hold
    /// and a weight may be negative: <c>most</c> is infinite, every posting is read, and every found document is scored
    /// from all its query terms.
    /// </para>
    /// <para>
    /// Where the query's terms have few postings for the rows asked for, reading them all is cheaper than the walk's index
    /// probes, and as exact: <see cref="Bm25ReadAll"/> chooses, and only the chosen plan runs.
    /// </para>
    /// </summary>
    private static string Bm25(string depth) => $"""
        {Bm25Search(depth)},
        {Bm25ReadAll(depth)},
        bm25 AS (
            SELECT x.id, x.score
            FROM (SELECT ids, scores FROM bm25_search ORDER BY step DESC LIMIT 1) searched, unnest(searched.ids, searched.scores) AS x(id, score)
            WHERE NOT (SELECT read_all FROM bm25_plan)
            UNION ALL
            (SELECT id, score FROM bm25_all WHERE (SELECT read_all FROM bm25_plan) ORDER BY score DESC, id LIMIT {depth}))
        """;

    /// <summary>
    /// Postings per result row asked for up to which the keyword search reads every posting of the query's terms instead of
    /// walking them (<see cref="Bm25"/>): reading a posting in index order costs a small fraction of the index probe the walk
    /// pays for each later term of each document it scores, so below this many the plain sum is the cheaper of two exact
    /// answers. A cost constant, like the planner's, set from latencies at 106,216 passages (docs/benchmarks.md); the
    /// results do not depend on it. <see cref="ReadAllSetting"/> overrides it for a session.
    /// </summary>
    public const int ReadAllPostingsPerRow = 500;

    /// <summary>The session setting that overrides <see cref="ReadAllPostingsPerRow"/> (0: always walk).</summary>
    public const string ReadAllSetting = "pgvector_module.bm25_read_all_per_row";

    /// <summary>
    /// The other exact plan: <c>bm25_plan</c> decides from the terms' document frequencies (already summed for the idf)
    /// whether the postings are few enough to read them all (at most <see cref="ReadAllPostingsPerRow"/> per row asked
    /// for, or k1 and b outside the bounds, where the walk reads everything anyway), and <c>bm25_all</c> is BM25 over every
    /// posting. <see cref="Bm25"/> runs one of the two: the other branch stands behind a one-time filter, so it never runs.
    /// </summary>
    private static string Bm25ReadAll(string depth) => $"""
        bm25_plan AS (
            SELECT NOT c.bounded OR coalesce(sum(b.df), 0) <= {depth} * coalesce(
                       nullif(current_setting('{ReadAllSetting}', true), '')::float8, {ReadAllPostingsPerRow}) AS read_all
            FROM corpus c LEFT JOIN bm25_bounds b ON true
            GROUP BY c.bounded),
        bm25_all AS (
            SELECT p.document_id AS id, sum({Weight("q", "p")}) AS score
            FROM bm25_terms q JOIN document_terms p ON p.lexeme = q.lexeme, corpus c
            WHERE @source::text IS NULL OR p.source = @source
            GROUP BY p.document_id)
        """;

    /// <summary>
    /// What the keyword search did for a query (parameters as <see cref="Keyword"/>, @limit the depth): how many postings
    /// it read, how many documents it scored in full, and whether it read every posting of the query's terms (few enough:
    /// <see cref="ReadAllPostingsPerRow"/>) rather than walking them. An exhaustive BM25 reads every posting of every query
    /// term and scores every document holding one; <c>bench scale</c> sets the two side by side.
    /// </summary>
    public static readonly string KeywordWork = $"""
        WITH RECURSIVE {Bm25Search("@limit")},
        {Bm25ReadAll("@limit")}
        (SELECT postings_read, documents_scored, false AS read_all FROM bm25_search
         WHERE NOT (SELECT read_all FROM bm25_plan) ORDER BY step DESC LIMIT 1)
        UNION ALL
        SELECT (SELECT coalesce(sum(df), 0)::bigint FROM bm25_bounds), (SELECT count(*) FROM bm25_all), true
        WHERE (SELECT read_all FROM bm25_plan)
        """;

    /// <summary>A posting's BM25 weight: idf (of <paramref name="term"/>) x tf (k1 + 1) / (tf + k1 (1 - b + b x length / average length)).</summary>
    private static string Weight(string term, string posting) =>
        $"{term}.idf * {posting}.term_frequency * (@k1 + 1) / ({posting}.term_frequency + @k1 * (1 - @b + @b * {posting}.document_length / c.average_length))";

    /// <summary>The CTEs of <see cref="Bm25"/> up to <c>bm25_search</c>, the walk, whose last row holds the best documents.</summary>
    private static string Bm25Search(string depth) => $"""
        corpus AS (
            SELECT sum(document_count)::float8 AS n, sum(total_length)::float8 / greatest(sum(document_count), 1) AS average_length,
                   @k1 >= 0 AND @b >= 0 AND @b <= 1 AS bounded
            FROM bm25_corpus),
        bm25_bounds AS MATERIALIZED (
            SELECT f.lexeme, f.idf, f.df,
                   CASE WHEN c.bounded
                        THEN f.idf * (@k1 + 1) / (1 + @k1 * @b / c.average_length * (
                            SELECT t.length_per_occurrence FROM document_terms t WHERE t.lexeme = f.lexeme
                            ORDER BY t.length_per_occurrence LIMIT 1))
                        ELSE 'Infinity' END AS most
            FROM (SELECT d.lexeme, d.df, ln(1 + (c.n - d.df + 0.5) / (d.df + 0.5)) AS idf
                  FROM (SELECT lexeme, sum(change)::float8 AS df FROM bm25_document_frequencies
                        WHERE lexeme IN ({QueryLexemes}) GROUP BY lexeme) d, corpus c
                  WHERE d.df > 0) f, corpus c),
        bm25_terms AS (
            SELECT lexeme, idf, most, row_number() OVER w AS position,
                   coalesce(sum(most) OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0) AS most_after
            FROM bm25_bounds
            WINDOW w AS (ORDER BY most DESC, lexeme)),
        bm25_search (step, position, after_key, after_id, batch, ids, scores, threshold, postings_read, documents_scored) AS (
            SELECT 0, 1::bigint, '-Infinity'::float8, 0, {depth}, '{"{}"}'::int[], '{"{}"}'::float8[], 0::float8, 0::bigint, 0::bigint
            UNION ALL
            SELECT s.step + 1,
                   CASE WHEN n.read < s.batch THEN s.position + 1 ELSE s.position END,
                   CASE WHEN n.read < s.batch THEN '-Infinity' ELSE n.last_key END,
                   CASE WHEN n.read < s.batch THEN 0 ELSE n.last_id END,
                   CASE WHEN n.read < s.batch THEN {depth} ELSE 2 * s.batch END,
                   n.ids, n.scores, greatest(s.threshold, n.threshold),
                   s.postings_read + n.read, s.documents_scored + n.scored
            FROM bm25_search s JOIN bm25_terms q ON q.position = s.position, corpus c,
            LATERAL (
                -- What a document found here must add to reach the threshold, and so how far this term's postings can do it.
                SELECT s.threshold * (1 - 1e-9) - q.most_after AS needed) need,
            LATERAL (
                WITH batch AS (
                    SELECT p.document_id, p.length_per_occurrence, {Weight("q", "p")} AS weight
                    FROM document_terms p
                    WHERE p.lexeme = q.lexeme
                      AND (p.length_per_occurrence, p.document_id) > (s.after_key, s.after_id)
                      AND p.length_per_occurrence <= CASE
                          WHEN NOT c.bounded OR need.needed <= 0 OR @k1 * @b = 0 THEN 'Infinity'
                          WHEN q.idf * (@k1 + 1) < need.needed THEN '-Infinity'
                          ELSE (q.idf * (@k1 + 1) / need.needed - 1) * c.average_length / (@k1 * @b) END
                      AND (@source::text IS NULL OR p.source = @source)
                      AND p.document_id <> ALL (s.ids)
                    ORDER BY p.length_per_occurrence, p.document_id
                    LIMIT s.batch),
                scored AS (
                    -- The posting's weight plus the document's postings of the later terms: one probe of
                    -- ix_document_terms_document per (document, later term). The earlier terms are not looked up: a
                    -- document holding one was scored in full when that term was walked, or shown below the threshold
                    -- then, and the weights left out only lower this score, which stays below it.
                    SELECT d.id, d.weight + coalesce(l.later, 0) AS score
                    FROM (SELECT document_id AS id, weight FROM batch WHERE weight >= need.needed) d
                    LEFT JOIN LATERAL (
                        SELECT sum({Weight("w", "t")}) AS later
                        FROM bm25_terms w
                        CROSS JOIN LATERAL (
                            SELECT p.term_frequency, p.document_length FROM document_terms p
                            WHERE p.document_id = d.id AND p.lexeme = w.lexeme OFFSET 0) t
                        -- Unbounded (k1 or b out of range), a weight may be negative: every other term then.
                        WHERE w.position > q.position OR (NOT c.bounded AND w.position <> q.position)) l ON true),
                kept AS (
                    SELECT x.id, x.score FROM unnest(s.ids, s.scores) AS x(id, score)
                    UNION ALL
                    SELECT id, score FROM scored
                    ORDER BY score DESC, id
                    LIMIT {depth})
                SELECT (SELECT count(*) FROM batch) AS read,
                       (SELECT count(*) FROM scored) AS scored,
                       (SELECT length_per_occurrence FROM batch ORDER BY length_per_occurrence DESC, document_id DESC LIMIT 1) AS last_key,
                       (SELECT document_id FROM batch ORDER BY length_per_occurrence DESC, document_id DESC LIMIT 1) AS last_id,
                       ARRAY(SELECT id FROM kept ORDER BY score DESC, id) AS ids,
                       ARRAY(SELECT score FROM kept ORDER BY score DESC, id) AS scores,
                       (SELECT CASE WHEN count(*) >= {depth} THEN min(score) ELSE 0 END FROM kept) AS threshold) n
            WHERE q.most + q.most_after >= s.threshold * (1 - 1e-9))
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
    /// The fused queries' vector leg as a statement of its own (<see cref="StagedHybridSearch"/>): the same candidates, id
    /// and distance. Under a filter the iterative scan's relaxed order comes back as it is; the fusion ranks by distance,
    /// then id (<see cref="FuseLegs"/>).
    /// </summary>
    public const string VectorLeg = NearestCandidates;

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
    public static readonly string Keyword = $"""
        WITH RECURSIVE {Bm25("@limit")},
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
    public static readonly string Weighted = $"""
        WITH RECURSIVE {WeightedVector($"({NearestCandidates})")},
        {Bm25("@candidates")},
        {WeightedFusion("bm25")}
        """;

    /// <summary>
    /// Reciprocal rank fusion: only ranks count, 1 / (@k + rank) from each list, summed. Nothing to normalize; k keeps
    /// one list's first place from drowning everything else.
    /// </summary>
    public static readonly string ReciprocalRankFusion = $"""
        WITH RECURSIVE {RrfVector($"({NearestCandidates})")},
        {Bm25("@candidates")},
        {RrfFusion("bm25")}
        """;

    /// <summary>
    /// The fusion of legs that ran as statements of their own (<see cref="StagedHybridSearch"/>): the same fusion as
    /// <see cref="Weighted"/> or <see cref="ReciprocalRankFusion"/>, over the legs' ids and values sent back as arrays
    /// (@vector_ids and @vector_distances, @keyword_ids and @keyword_scores) instead of the legs' subqueries.
    /// </summary>
    public static string FuseLegs(SearchMethod method)
    {
        const string Vector = "(SELECT * FROM unnest(@vector_ids::int[], @vector_distances::float8[]) AS v(id, distance))";
        const string Keyword = "(SELECT * FROM unnest(@keyword_ids::int[], @keyword_scores::float8[]) AS k(id, score)) keyword_leg";
        return method switch
        {
            SearchMethod.Weighted => $"WITH {WeightedVector(Vector)},\n{WeightedFusion(Keyword)}",
            SearchMethod.ReciprocalRankFusion => $"WITH {RrfVector(Vector)},\n{RrfFusion(Keyword)}",
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Only the hybrid searches fuse two legs."),
        };
    }

    /// <summary>The weighted fusion's vector leg, ranked and normalized: <paramref name="nearest"/> is a subquery of id and distance.</summary>
    private static string WeightedVector(string nearest) => $"""
        vector AS (
            SELECT id, row_number() OVER ({ByDistance}) AS rank,
                   coalesce((max(distance) OVER () - distance) / nullif(max(distance) OVER () - min(distance) OVER (), 0), 1) AS normalized
            FROM {nearest} nearest)
        """;

    /// <summary>
    /// The rest of the weighted fusion, after <see cref="WeightedVector"/>: the keyword leg (<paramref name="keywordRows"/>,
    /// rows of id and score) ranked and normalized, the fused score, the best rows.
    /// </summary>
    private static string WeightedFusion(string keywordRows) => $"""
        keyword AS (
            SELECT id, rank, coalesce((score - min(score) OVER ()) / nullif(max(score) OVER () - min(score) OVER (), 0), 1) AS normalized
            FROM (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank
                  FROM {keywordRows} ORDER BY score DESC, id LIMIT @candidates) best_keyword),
        fused AS (
            SELECT coalesce(v.id, k.id) AS id,
                   @vector_weight * coalesce(v.normalized, 0) + (1 - @vector_weight) * coalesce(k.normalized, 0) AS score,
                   v.rank AS vector_rank, k.rank AS keyword_rank
            FROM vector v FULL JOIN keyword k ON k.id = v.id),
        {TopFused}
        """;

    /// <summary>Reciprocal rank fusion's vector leg, ranked: <paramref name="nearest"/> is a subquery of id and distance.</summary>
    private static string RrfVector(string nearest) => $"""
        vector AS (
            SELECT id, row_number() OVER ({ByDistance}) AS rank
            FROM {nearest} nearest)
        """;

    /// <summary>The rest of reciprocal rank fusion, after <see cref="RrfVector"/>, as <see cref="WeightedFusion"/>.</summary>
    private static string RrfFusion(string keywordRows) => $"""
        keyword AS (
            SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank
            FROM {keywordRows} ORDER BY score DESC, id LIMIT @candidates),
        fused AS (
            SELECT coalesce(v.id, k.id) AS id,
                   coalesce(1.0 / (@k + v.rank), 0.0) + coalesce(1.0 / (@k + k.rank), 0.0) AS score,
                   v.rank AS vector_rank, k.rank AS keyword_rank
            FROM vector v FULL JOIN keyword k ON k.id = v.id),
        {TopFused}
        """;
}
