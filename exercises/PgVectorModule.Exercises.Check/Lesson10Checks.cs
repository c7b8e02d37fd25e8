using System.Globalization;

namespace PgVectorModule.Exercises.Check;

/// <summary>Lesson 10: a chunks table that belongs to its documents, and each document once with its best chunk.</summary>
internal static class Lesson10Checks
{
    private const string Type = "Lesson10.SearchToAnswersExercises";

    public static IEnumerable<Exercise> All() =>
    [
        Exercise.Sql("10.1", "Chunks that belong to their document", "the chunks-migration step (CreateDocumentsAndChunks)",
            "doc_id bigint NOT NULL REFERENCES docs (id) ON DELETE CASCADE, UNIQUE (doc_id, position), embedding vector(8) NOT NULL, then CREATE INDEX ... USING hnsw (embedding vector_cosine_ops).",
            Type, "ChunksTableSql", ChunksTableAsync),
        Exercise.Sql("10.2", "Each document once, with its best chunk", "the parent-documents step (ParentDocuments)",
            "SELECT DISTINCT ON (doc_id) ... ORDER BY doc_id, embedding <=> $1, id keeps each document's nearest chunk; an outer query orders those by distance, then doc_id, and takes $2.",
            Type, "BestChunkPerDocumentSql", BestChunkAsync),
    ];

    private static async Task CreateDocsAsync(CheckRoom room, int count, CancellationToken ct)
    {
        await room.ExecuteAsync("CREATE TABLE docs (id bigint PRIMARY KEY, title text NOT NULL)", ct);
        for (var i = 1; i <= count; i++)
        {
            await room.ExecuteAsync("INSERT INTO docs (id, title) VALUES ($1, $2)", ct, (long)i, $"document {i}");
        }
    }

    private static async Task<CheckResult> ChunksTableAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CreateDocsAsync(room, 3, ct);
        await room.ExecuteAsync(sql, ct);
        const string Insert = "INSERT INTO chunks (doc_id, position, body, token_count, embedding) VALUES ($1, $2, 'a chunk', 2, $3)";
        var vector = CheckData.Query(10);
        foreach (var (doc, position) in new[] { (1L, 0), (1L, 1), (2L, 0), (3L, 0) })
        {
            if (await room.RefusedAsync(Insert, ct, doc, position, vector) is { } state)
            {
                return CheckResult.Fail($"chunk {position} of document {doc} accepted", $"refused ({state})");
            }
        }

        if (await room.RefusedAsync(Insert, ct, 1L, 1, vector) is not "23505")
        {
            return CheckResult.Fail("a second chunk at position 1 of document 1 refused (a unique constraint on doc_id, position)", "accepted");
        }

        if (await room.RefusedAsync(Insert, ct, 99L, 0, vector) is not "23503")
        {
            return CheckResult.Fail("a chunk of document 99, which does not exist, refused (a foreign key)", "accepted");
        }

        if (await room.RefusedAsync("INSERT INTO chunks (doc_id, position, body, token_count) VALUES (2, 5, 'no vector', 2)", ct) is null)
        {
            return CheckResult.Fail("a chunk without an embedding refused", "accepted");
        }

        if (await room.RefusedAsync("DELETE FROM docs WHERE id = 1", ct) is { } deleteState)
        {
            return CheckResult.Fail("document 1 deleted, and its chunks with it (ON DELETE CASCADE)", $"the DELETE was refused ({deleteState})");
        }

        var left = await room.ScalarAsync<long>("SELECT count(*) FROM chunks WHERE doc_id = 1", ct);
        if (left != 0)
        {
            return CheckResult.Fail("the chunks of a deleted document gone with it", $"{left} chunks of document 1 left");
        }

        var plan = await room.PlanAsync("SELECT id FROM chunks ORDER BY embedding <=> $1 LIMIT 2", ct, vector);
        if (!plan.Contains("Index Scan using", StringComparison.Ordinal) || (await room.ScalarAsync<string>(
                "SELECT string_agg(indexdef, '; ') FROM pg_indexes WHERE tablename = 'chunks' AND schemaname = current_schema() AND indexdef LIKE '%hnsw%vector_cosine_ops%'", ct)) is null)
        {
            return CheckResult.Fail("an HNSW index with vector_cosine_ops answering ORDER BY embedding <=> $1", Lesson04Checks.Short(plan));
        }

        return CheckResult.Pass("chunks refused at a taken position, for a missing document and without a vector; deleted with their document; searched on HNSW");
    }

    private static async Task<CheckResult> BestChunkAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CreateDocsAsync(room, 12, ct);
        await room.ExecuteAsync("CREATE TABLE chunks (id bigint PRIMARY KEY, doc_id bigint NOT NULL REFERENCES docs (id), position int NOT NULL, body text NOT NULL, embedding vector(8) NOT NULL)", ct);
        // 1 to 4 chunks a document, their ids not in document order, so neither the first chunk nor the lowest id is the best.
        var vectors = CheckData.Vectors(40, seed: 10);
        var next = 0;
        for (var doc = 1; doc <= 12; doc++)
        {
            for (var position = 0; position < 1 + (doc * 7 % 4); position++)
            {
                var id = 1000 - (next * 13 % 97) - next;
                await room.ExecuteAsync("INSERT INTO chunks (id, doc_id, position, body, embedding) VALUES ($1, $2, $3, $4, $5)", ct,
                    (long)id, (long)doc, position, $"chunk {position} of document {doc}", new Vector(vectors[next++]));
            }
        }

        const string Expected = """
            SELECT doc_id, chunk_id, distance FROM (
                SELECT DISTINCT ON (doc_id) doc_id, id AS chunk_id, embedding <=> $1 AS distance FROM chunks ORDER BY doc_id, embedding <=> $1, id
            ) best ORDER BY distance, doc_id LIMIT $2
            """;
        foreach (var seed in new[] { 101, 102, 103 })
        {
            var query = CheckData.Query(seed);
            var expected = Rows(await room.RowsAsync(Expected, ct, query, 5));
            var got = Rows(await room.RowsAsync(sql, ct, query, 5));
            var same = got.Count == expected.Count && got.Zip(expected, (g, e) => g.Doc == e.Doc && g.Chunk == e.Chunk && Math.Abs(g.Distance - e.Distance) < 1e-6).All(x => x);
            if (!same)
            {
                return CheckResult.Fail(Show(expected), Show(got));
            }
        }

        return CheckResult.Pass("three queries: each document once, its nearest chunk, the 5 nearest documents in order");
    }

    private static List<(long Doc, long Chunk, double Distance)> Rows(List<object?[]> rows) =>
        rows.Select(r => (Convert.ToInt64(r[0], CultureInfo.InvariantCulture), r.Length > 1 ? Convert.ToInt64(r[1], CultureInfo.InvariantCulture) : -1,
            r.Length > 2 ? Convert.ToDouble(r[2], CultureInfo.InvariantCulture) : double.NaN)).ToList();

    private static string Show(List<(long Doc, long Chunk, double Distance)> rows) =>
        string.Join(", ", rows.Select(r => $"doc {r.Doc} chunk {r.Chunk} ({r.Distance.ToString("0.0000", CultureInfo.InvariantCulture)})"));
}
