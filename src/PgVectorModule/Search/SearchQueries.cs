using Pgvector.EntityFrameworkCore;
using PgVectorModule.Configuration;

namespace PgVectorModule.Search;

/// <summary>One search result. <see cref="Score"/> is "higher is better" for every method.</summary>
public sealed record SearchHit(int Id, string Title, string? Source, double Score);

/// <summary>A vector search result with the raw distance beside the similarity derived from it.</summary>
public sealed record VectorHit(int Id, string Title, string? Source, double Distance)
{
    /// <summary>Cosine similarity = 1 - cosine distance.</summary>
    public double Similarity => 1 - Distance;
}

public enum DistanceMetric
{
    /// <summary><c>&lt;=&gt;</c>, 1 - cosine similarity: direction only. The usual choice for text embeddings.</summary>
    Cosine,

    /// <summary><c>&lt;-&gt;</c>, Euclidean distance. For unit vectors it ranks exactly like cosine.</summary>
    L2,

    /// <summary><c>&lt;#&gt;</c>, the negative inner product (negative so that smaller is nearer, like the others).</summary>
    InnerProduct,
}

/// <summary>Checks a user's query text before any work is done with it.</summary>
public static class SearchInput
{
    /// <summary>Longer queries are cut here (and the caller is told): a search box is not a document.</summary>
    public const int MaxQueryLength = 2000;

    public static string Validate(string? query, out bool truncated)
    {
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new SetupException("The search query is empty: pass a question in quotes, for example \"how do vector indexes work?\".", ExitCodes.InvalidInput);
        }

        var trimmed = query.Trim();
        truncated = trimmed.Length > MaxQueryLength;
        return truncated ? trimmed[..MaxQueryLength] : trimmed;
    }
}

/// <summary>Nearest-neighbour queries through Pgvector.EntityFrameworkCore: LINQ that becomes ORDER BY distance LIMIT k.</summary>
public static class VectorSearch
{
    public static IQueryable<VectorHit> Nearest(SearchDbContext db, Vector query, DistanceMetric metric = DistanceMetric.Cosine,
        int limit = 5, string? source = null, double? maxDistance = null)
    {
        ArgumentNullException.ThrowIfNull(db);
        var documents = db.Documents.AsNoTracking();
        if (source is not null)
        {
            documents = documents.Where(d => d.Source == source);
        }

        // Each branch is written out so EF sees one operator per query: <=>, <-> or <#>.
        var projected = metric switch
        {
            DistanceMetric.Cosine => documents.Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.CosineDistance(query) }),
            DistanceMetric.L2 => documents.Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.L2Distance(query) }),
            _ => documents.Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.MaxInnerProduct(query) }),
        };

        if (maxDistance is { } threshold)
        {
            projected = projected.Where(h => h.Distance < threshold);
        }

        // Ascending distance with a LIMIT: the only shape an HNSW or IVFFlat index can answer.
        return projected.OrderBy(h => h.Distance).Take(limit).Select(h => new VectorHit(h.Id, h.Title, h.Source, h.Distance));
    }

    // EF Core binds a compiled query to the model it first ran with; each vector shape (dimension, index settings) has a
    // model of its own, so each model gets its compiled query.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Microsoft.EntityFrameworkCore.Metadata.IModel,
        Func<SearchDbContext, Vector, int, IAsyncEnumerable<VectorHit>>> CompiledNearest = new();

    /// <summary>
    /// The hot path: <see cref="Nearest"/> by cosine distance without a filter or threshold, compiled once with
    /// <c>EF.CompileAsyncQuery</c>. The SQL is the same; what it saves is EF Core looking the LINQ up in its query
    /// cache on every call. With prepared statements (<c>Max Auto Prepare</c> in the connection string), which save
    /// the server's parse and plan, the benchmark measures it 0.1 to 0.3 ms a query faster (docs/benchmarks.md).
    /// </summary>
    public static IAsyncEnumerable<VectorHit> NearestCosineCompiled(SearchDbContext db, Vector query, int limit = 5)
    {
        ArgumentNullException.ThrowIfNull(db);
        var compiled = CompiledNearest.GetValue(db.Model, _ => EF.CompileAsyncQuery((SearchDbContext context, Vector q, int k) =>
            context.Documents.AsNoTracking()
                .Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.CosineDistance(q) })
                .OrderBy(h => h.Distance)
                .Take(k)
                .Select(h => new VectorHit(h.Id, h.Title, h.Source, h.Distance))));
        return compiled(db, query, limit);
    }
}

/// <summary>
/// The search SQL the lessons and the benchmark share: keyword, weighted hybrid and reciprocal rank fusion, each
/// one statement. Parameters: @query (text), @embedding (vector), @source (text or NULL), @limit, and per method more.
/// </summary>
public static class SearchSql
{
    /// <summary>
    /// The user's words as an OR of their stemmed lexemes. to_tsvector never fails on input (operators, quotes and
    /// brackets are just text to it), stop words drop out, and OR means a long question still matches documents
    /// that share some of its terms; ts_rank_cd then ranks documents with more of them, closer together, higher.
    /// </summary>
    public const string AnyTermQuery =
        "(SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '), '')) " +
        "FROM unnest(tsvector_to_array(to_tsvector('english', @query))) AS lexeme)";

    /// <summary>Search-engine syntax for people who type it ("quoted phrase", or, -exclude): every other term is ANDed.</summary>
    public const string AllTermsQuery = "websearch_to_tsquery('english', @query)";

    /// <summary>
    /// Each query term with its weight, inverse document frequency ln(1 + N / df): a word in three documents
    /// ("42p01") outweighs one in sixty ("error"). ts_rank_cd alone cannot tell them apart, so with OR queries every
    /// document matching any one word would tie. A term no document holds weighs most (df counted as 1): it is still
    /// part of what was asked. MATERIALIZED: computed once per query; where the statement names idf only once,
    /// PostgreSQL would otherwise inline it and count every term's documents again for each matching document.
    /// </summary>
    private const string TermWeights = """
        terms AS (
            SELECT to_tsquery('simple', quote_literal(lexeme)) AS term
            FROM unnest(tsvector_to_array(to_tsvector('english', @query))) AS lexeme),
        idf AS MATERIALIZED (
            SELECT t.term, ln(1 + (SELECT count(*) FROM vector_documents)::float8
                                  / greatest((SELECT count(*) FROM vector_documents d WHERE d.content_tsv @@ t.term), 1)) AS weight
            FROM terms t)
        """;

    /// <summary>
    /// For fusion, a keyword candidate must hold at least @min_coverage of the query's term weight ("minimum should
    /// match"): a document sharing one common word with a paraphrase is no keyword evidence, and rank fusion would
    /// otherwise reward it for appearing in both lists.
    /// </summary>
    private const string KeywordCoverage =
        "(SELECT sum(i.weight) FROM idf i WHERE d.content_tsv @@ i.term) >= @min_coverage * (SELECT sum(weight) FROM idf)";

    /// <summary>The keyword score: the weights of the query terms a document holds, raised by ts_rank_cd (0..1), which rewards terms that occur often and close together.</summary>
    private const string KeywordScore =
        "(SELECT sum(i.weight) FROM idf i WHERE d.content_tsv @@ i.term) * (1 + ts_rank_cd(d.content_tsv, q.query, 32))";

    /// <summary>Full-text search with every term required: websearch_to_tsquery, ranked by ts_rank_cd (normalization 32: rank / (rank + 1), so 0..1).</summary>
    public static readonly string KeywordAllTerms = $"""
        SELECT d.id, d.title, d.source, ts_rank_cd(d.content_tsv, q.query, 32) AS score
        FROM vector_documents d, {AllTermsQuery} AS q(query)
        WHERE d.content_tsv @@ q.query AND (@source::text IS NULL OR d.source = @source)
        ORDER BY score DESC, d.id
        LIMIT @limit
        """;

    /// <summary>Full-text search with any term: the GIN index finds documents holding at least one, the weighted score ranks them.</summary>
    public static readonly string Keyword = $"""
        WITH q AS (SELECT {AnyTermQuery} AS query),
        {TermWeights}
        SELECT d.id, d.title, d.source, {KeywordScore} AS score
        FROM vector_documents d, q
        WHERE d.content_tsv @@ q.query AND (@source::text IS NULL OR d.source = @source)
        ORDER BY score DESC, d.id
        LIMIT @limit
        """;

    /// <summary>
    /// Weighted hybrid: the best @candidates of each method, each list's scores min-max normalized to 0..1 (so a
    /// weight of 0.7 means 70 % of the say, whatever scales cosine similarity and the keyword score happen to have),
    /// then @vector_weight * vector + @keyword_weight * keyword; a document missing from one list gets 0 there.
    /// </summary>
    public static readonly string Weighted = $"""
        WITH q AS (SELECT @embedding::vector AS embedding, {AnyTermQuery} AS query),
        {TermWeights},
        vector AS (
            SELECT d.id, 1 - (d.embedding <=> q.embedding) AS score
            FROM vector_documents d, q
            WHERE @source::text IS NULL OR d.source = @source
            ORDER BY d.embedding <=> q.embedding
            LIMIT @candidates),
        keyword AS (
            SELECT d.id, {KeywordScore} AS score
            FROM vector_documents d, q
            WHERE d.content_tsv @@ q.query AND (@source::text IS NULL OR d.source = @source) AND {KeywordCoverage}
            ORDER BY score DESC
            LIMIT @candidates),
        normalized AS (
            SELECT id, coalesce((score - min(score) OVER ()) / nullif(max(score) OVER () - min(score) OVER (), 0), 1) AS v, 0.0 AS k FROM vector
            UNION ALL
            SELECT id, 0.0, coalesce((score - min(score) OVER ()) / nullif(max(score) OVER () - min(score) OVER (), 0), 1) FROM keyword)
        SELECT d.id, d.title, d.source, @vector_weight * max(n.v) + @keyword_weight * max(n.k) AS score
        FROM normalized n JOIN vector_documents d ON d.id = n.id
        GROUP BY d.id, d.title, d.source
        ORDER BY score DESC, d.id
        LIMIT @limit
        """;

    /// <summary>
    /// Reciprocal rank fusion: only ranks count, 1 / (@k + rank) from each list, summed. No scores to normalize, and
    /// k = 60 keeps one list's first place from drowning everything else.
    /// </summary>
    public static readonly string ReciprocalRankFusion = $"""
        WITH q AS (SELECT @embedding::vector AS embedding, {AnyTermQuery} AS query),
        {TermWeights},
        vector AS (
            SELECT d.id, rank() OVER (ORDER BY d.embedding <=> q.embedding) AS rank
            FROM vector_documents d, q
            WHERE @source::text IS NULL OR d.source = @source
            ORDER BY d.embedding <=> q.embedding
            LIMIT @candidates),
        keyword AS (
            SELECT d.id, rank() OVER (ORDER BY {KeywordScore} DESC) AS rank
            FROM vector_documents d, q
            WHERE d.content_tsv @@ q.query AND (@source::text IS NULL OR d.source = @source) AND {KeywordCoverage}
            ORDER BY rank
            LIMIT @candidates),
        fused AS (
            SELECT coalesce(v.id, k.id) AS id,
                   coalesce(1.0 / (@k + v.rank), 0.0) + coalesce(1.0 / (@k + k.rank), 0.0) AS score
            FROM vector v FULL OUTER JOIN keyword k ON v.id = k.id)
        SELECT d.id, d.title, d.source, f.score
        FROM fused f JOIN vector_documents d ON d.id = f.id
        ORDER BY f.score DESC, d.id
        LIMIT @limit
        """;
}

/// <summary>Runs the shared search SQL through a data source.</summary>
public static class HybridSearch
{
    public const int DefaultCandidates = 40;
    public const int RrfK = 60;

    /// <summary>The share of the query's term weight a document must hold to count as a keyword candidate in fusion.</summary>
    public const double MinCoverage = 0.5;

    public static Task<IReadOnlyList<SearchHit>> KeywordAsync(NpgsqlDataSource dataSource, string query, bool allTerms = false,
        int limit = 5, string? source = null, CancellationToken cancellationToken = default) =>
        RunAsync(dataSource, allTerms ? SearchSql.KeywordAllTerms : SearchSql.Keyword,
            p => { p.AddWithValue("query", query); }, limit, source, cancellationToken);

    public static Task<IReadOnlyList<SearchHit>> WeightedAsync(NpgsqlDataSource dataSource, string query, Vector embedding,
        double vectorWeight = 0.7, int limit = 5, string? source = null, int candidates = DefaultCandidates, CancellationToken cancellationToken = default) =>
        RunAsync(dataSource, SearchSql.Weighted, p =>
        {
            p.AddWithValue("query", query);
            p.AddWithValue("embedding", embedding);
            p.AddWithValue("candidates", candidates);
            p.AddWithValue("vector_weight", vectorWeight);
            p.AddWithValue("min_coverage", MinCoverage);
            p.AddWithValue("keyword_weight", 1 - vectorWeight);
        }, limit, source, cancellationToken);

    public static Task<IReadOnlyList<SearchHit>> ReciprocalRankFusionAsync(NpgsqlDataSource dataSource, string query, Vector embedding,
        int limit = 5, string? source = null, int candidates = DefaultCandidates, CancellationToken cancellationToken = default) =>
        RunAsync(dataSource, SearchSql.ReciprocalRankFusion, p =>
        {
            p.AddWithValue("query", query);
            p.AddWithValue("embedding", embedding);
            p.AddWithValue("candidates", candidates);
            p.AddWithValue("k", RrfK);
            p.AddWithValue("min_coverage", MinCoverage);
        }, limit, source, cancellationToken);

    private static async Task<IReadOnlyList<SearchHit>> RunAsync(NpgsqlDataSource dataSource, string sql,
        Action<NpgsqlParameterCollection> bind, int limit, string? source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand(sql);
        bind(command.Parameters);
        command.Parameters.AddWithValue("limit", limit);
        command.Parameters.Add(new NpgsqlParameter("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)source ?? DBNull.Value });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var hits = new List<SearchHit>();
        while (await reader.ReadAsync(cancellationToken))
        {
            hits.Add(new SearchHit(reader.GetInt32(0), reader.GetString(1), await reader.IsDBNullAsync(2, cancellationToken) ? null : reader.GetString(2),
                Convert.ToDouble(reader.GetValue(3), System.Globalization.CultureInfo.InvariantCulture)));
        }

        return hits;
    }
}
