using System.Globalization;

namespace PgVectorModule.Lessons.Lesson10;

/// <summary>A document found through its chunks: its best chunk, how each leg ranked that chunk, and a highlighted snippet.</summary>
public sealed record ParentHit(int DocumentId, string Title, long ChunkId, int Position, string Chunk, double Score,
    long? VectorRank, long? KeywordRank, long ChunksFound, string Snippet);

public sealed partial class SearchToAnswersLesson
{
    /// <summary>Each leg's candidates, and the documents the first stage hands to the second.</summary>
    public const int Candidates = 50;

    /// <summary>Reciprocal rank fusion's k, the literature's 60 (pgvector-dotnet's Hybrid example).</summary>
    public const int RrfK = 60;

    /// <summary>
    /// Parent-document retrieval in one statement. The vector leg and the keyword leg rank chunks (the query vector a
    /// parameter in the ORDER BY, so HNSW answers; any question term may match, so a sentence still finds chunks), RRF
    /// fuses them per chunk, DISTINCT ON keeps each document's best chunk, and ts_headline marks the question's words in it.
    /// </summary>
    public const string ParentDocuments = """
        WITH question AS (
            SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '), '')) AS query
            FROM unnest(tsvector_to_array(to_tsvector('english', @query))) AS lexeme
        ),
        vector AS (
            SELECT id, row_number() OVER (ORDER BY embedding <=> @embedding) AS rank
            FROM chunks
            ORDER BY embedding <=> @embedding
            LIMIT @candidates
        ),
        keyword AS (
            SELECT id, row_number() OVER (ORDER BY ts_rank_cd(content_tsv, question.query) DESC, id) AS rank
            FROM chunks, question
            WHERE content_tsv @@ question.query
            ORDER BY ts_rank_cd(content_tsv, question.query) DESC, id
            LIMIT @candidates
        ),
        fused AS (
            SELECT coalesce(v.id, k.id) AS chunk_id, v.rank AS vector_rank, k.rank AS keyword_rank,
                   coalesce(1.0 / (@k + v.rank), 0.0) + coalesce(1.0 / (@k + k.rank), 0.0) AS score
            FROM vector v
            FULL OUTER JOIN keyword k ON v.id = k.id
        ),
        best AS (
            SELECT DISTINCT ON (c.document_id) c.document_id, c.id AS chunk_id, c.position, c.content, f.score, f.vector_rank, f.keyword_rank,
                   count(*) OVER (PARTITION BY c.document_id) AS chunks_found
            FROM fused f
            JOIN chunks c ON c.id = f.chunk_id
            ORDER BY c.document_id, f.score DESC, c.position
        )
        SELECT d.id AS document_id, d.title, b.chunk_id, b.position, b.content AS chunk, b.score, b.vector_rank, b.keyword_rank, b.chunks_found,
               ts_headline('english', b.content, question.query, 'StartSel=«, StopSel=», MinWords=12, MaxWords=30') AS snippet
        FROM best b
        JOIN documents d ON d.id = b.document_id
        CROSS JOIN question
        ORDER BY b.score DESC, d.id
        LIMIT @limit
        """;

    private static NpgsqlParameter[] Parameters(string question, Vector embedding, int limit) =>
        [new("query", question), new("embedding", embedding), new("candidates", Candidates), new("k", RrfK), new("limit", limit)];

    private static async Task<IReadOnlyList<ParentHit>> ParentDocumentsAsync(Lesson lesson, string question, Vector embedding, CancellationToken cancellationToken)
    {
        lesson.Step("parent-documents", "Search chunks, return documents",
            $"The chunks are searched, by meaning (HNSW) and by words (GIN, any question term), {Candidates} candidates each, fused by RRF (k = {RrfK}); DISTINCT ON keeps each document's best chunk, so a document appears once however many of its chunks matched, " +
            "and ts_headline marks the question's words in that chunk: «like this». The first stage hands its best documents to the second.");
        IReadOnlyList<IReadOnlyDictionary<string, object?>> rows;
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            // An HNSW scan returns at most ef_search rows (40 by default): raise it to the candidates, for this transaction only.
            await lesson.ExecuteAsync($"SET LOCAL hnsw.ef_search = {Candidates}", connection, cancellationToken);
            rows = await lesson.QueryAsync(ParentDocuments, connection, Parameters(question, embedding, Candidates), cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        var hits = rows.Select(r => new ParentHit(
            (int)r["document_id"]!, (string)r["title"]!, (long)r["chunk_id"]!, (int)r["position"]!, (string)r["chunk"]!,
            Convert.ToDouble(r["score"], CultureInfo.InvariantCulture), r["vector_rank"] as long?, r["keyword_rank"] as long?,
            (long)r["chunks_found"]!, (string)r["snippet"]!)).ToList();
        // Shown: each document, its best chunk, how many of its chunks were found, its rank in each leg and its fused score,
        // then the first one's snippet; the full table (every snippet) is the detail.
        lesson.Table(hits.Take(5),
            ("document", h => Lesson.Excerpt(h.Title, head: 32)), ("chunk", h => h.Position), ("found", h => h.ChunksFound),
            ("vector", h => h.VectorRank), ("keyword", h => h.KeywordRank), ("RRF", h => Number(h.Score)));
        if (hits.Count > 0)
        {
            lesson.Say($"The first one's snippet: {hits[0].Snippet}", Tone.Aside);
        }

        using (lesson.Detail())
        {
            lesson.Table(hits.Take(5),
                ("title", h => h.Title), ("best chunk", h => h.Position), ("its chunks found", h => h.ChunksFound),
                ("vector rank", h => h.VectorRank), ("keyword rank", h => h.KeywordRank), ("RRF score", h => Number(h.Score)), ("snippet", h => h.Snippet));
        }

        var chunksMatched = hits.Sum(h => h.ChunksFound);
        lesson.Say($"{hits.Count} documents from {chunksMatched} matching chunks: {chunksMatched - hits.Count} chunks were a second or third hit on a document already listed, and were folded into it.");
        return hits;
    }

    private static async Task PlanAsync(Lesson lesson, string question, Vector embedding, CancellationToken cancellationToken)
    {
        lesson.Step("plan", "The plan: both indexes",
            "The same statement explained. On a table this small the planner would rather read every row; with sequential scans discouraged (as pgvector's README advises to see an index at work; the library's searches do the same), " +
            "the vector leg is an index scan of the HNSW index and the keyword leg a bitmap scan of the GIN index. In a transaction that is rolled back.");
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // The statement and its whole plan are for reading later: the table below says what each leg read.
        string plan;
        using (lesson.Detail())
        {
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            await lesson.ExecuteAsync($"SET LOCAL hnsw.ef_search = {Candidates}", connection, cancellationToken);
            plan = await lesson.ExplainAsync(ParentDocuments, connection, Parameters(question, embedding, Candidates), cancellationToken);
        }

        await transaction.RollbackAsync(cancellationToken);
        lesson.Table(
            [
                ("vector leg", plan.Contains($"Index Scan using {ChunksContext.HnswIndex}", StringComparison.Ordinal) ? $"Index Scan using {ChunksContext.HnswIndex}" : "another plan"),
                ("keyword leg", plan.Contains($"Bitmap Index Scan on {ChunksContext.GinIndex}", StringComparison.Ordinal) ? $"Bitmap Index Scan on {ChunksContext.GinIndex}" : "another plan"),
            ],
            ("leg", r => r.Item1), ("read through", r => r.Item2));
        lesson.Say("The query vector is a parameter right in the vector leg's ORDER BY; the tsquery sits in a CTE that the keyword leg and ts_headline share, which costs nothing: no ORDER BY on a vector reads it.", Tone.Aside);
    }
}
