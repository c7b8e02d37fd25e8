using System.Globalization;

namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Not in the Python module: smaller vectors (halfvec, binary quantization with re-ranking).</summary>
public sealed partial class ProductionLesson
{
    private static async Task SmallerVectorsAsync(Lesson lesson, int dims, IReadOnlyList<Vector> vectors, CancellationToken cancellationToken)
    {
        lesson.Step("Smaller vectors: halfvec and binary quantization",
            "halfvec stores 2 bytes per dimension instead of 4; binary_quantize keeps one bit per dimension (its sign), searched by Hamming distance <~>. Both can be expression indexes over the same vector column: nothing else in the table changes.");
        await lesson.ExecuteAsync($"CREATE INDEX bulk_vectors_halfvec_hnsw ON bulk_vectors USING hnsw ((embedding::halfvec({dims})) halfvec_cosine_ops)", cancellationToken);
        await lesson.ExecuteAsync($"CREATE INDEX bulk_vectors_bit_hnsw ON bulk_vectors USING hnsw ((binary_quantize(embedding)::bit({dims})) bit_hamming_ops)", cancellationToken);
        await lesson.ExecuteAsync("ANALYZE bulk_vectors", cancellationToken);

        var exactSql = "SELECT id FROM bulk_vectors ORDER BY embedding <=> @q LIMIT 10";
        var halfSql = $"SELECT id FROM bulk_vectors ORDER BY embedding::halfvec({dims}) <=> @q::halfvec({dims}) LIMIT 10";
        var bitSql = $"SELECT id FROM bulk_vectors ORDER BY binary_quantize(embedding)::bit({dims}) <~> binary_quantize(@q) LIMIT 10";
        var rerankSql = $"""
            SELECT id FROM (
                SELECT id, embedding FROM bulk_vectors
                ORDER BY binary_quantize(embedding)::bit({dims}) <~> binary_quantize(@q)
                LIMIT {RerankCandidates}
            ) candidates
            ORDER BY embedding <=> @q
            LIMIT 10
            """;
        var probes = Enumerable.Range(0, 20).Select(i => vectors[i * 97 % vectors.Count]).ToList();

        // Exact answers: no index at all (enable_indexscan off), every row compared.
        var truths = new List<IReadOnlyList<int>>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("SET LOCAL enable_indexscan = off", connection, cancellationToken);
            foreach (var probe in probes)
            {
                truths.Add(await IdsAsync(lesson, exactSql, connection, probe, cancellationToken));
            }
        }

        var rows = new List<(string Method, string Index, double Recall)>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            await lesson.ExecuteAsync("SET LOCAL hnsw.ef_search = 100", connection, cancellationToken);
            await lesson.ExplainAsync(halfSql, connection, [new NpgsqlParameter("q", probes[0])], cancellationToken);
            await lesson.ExplainAsync(rerankSql, connection, [new NpgsqlParameter("q", probes[0])], cancellationToken);
            using (lesson.QuietSql())
            {
                foreach (var (method, index, sql) in new[]
                         {
                             ("vector, HNSW", "bulk_vectors_hnsw", exactSql),
                             ("halfvec, HNSW", "bulk_vectors_halfvec_hnsw", halfSql),
                             ("binary, Hamming only", "bulk_vectors_bit_hnsw", bitSql),
                             ($"binary top {RerankCandidates}, re-ranked by full vector", "bulk_vectors_bit_hnsw", rerankSql),
                         })
                {
                    var total = 0.0;
                    for (var i = 0; i < probes.Count; i++)
                    {
                        var found = await IdsAsync(lesson, sql, connection, probes[i], cancellationToken);
                        total += truths[i].Intersect(found).Count() / 10.0;
                    }

                    rows.Add((method, index, total / probes.Count));
                }
            }

            await transaction.RollbackAsync(cancellationToken);
        }

        var sizes = await lesson.QueryAsync("""
            SELECT indexrelid::regclass::text AS index, pg_relation_size(indexrelid) AS bytes
            FROM pg_index WHERE indrelid = 'bulk_vectors'::regclass
            """, cancellationToken);
        var bytes = sizes.ToDictionary(r => (string)r["index"]!, r => (long)r["bytes"]!);
        lesson.Table(rows,
            ("search", r => r.Method),
            ("index", r => r.Index),
            ("index size", r => Size(bytes.GetValueOrDefault(r.Index))),
            ("recall@10 vs exact (20 queries)", r => r.Recall.ToString("0.00", CultureInfo.InvariantCulture)));
        lesson.Say($"[grey]The bit index holds {dims} bits per row against {dims * 4} bytes for the full vector; Hamming distance alone ranks coarsely, " +
                   $"so it fetches {RerankCandidates} candidates and the exact distance on the stored vectors picks the 10.[/]");
    }

    private static async Task<IReadOnlyList<int>> IdsAsync(Lesson lesson, string sql, NpgsqlConnection connection, Vector q, CancellationToken cancellationToken) =>
        (await lesson.QueryAsync(sql, connection, [new NpgsqlParameter("q", q)], cancellationToken)).Select(r => (int)r["id"]!).ToList();

    private static string Size(long bytes) => bytes >= 1 << 20
        ? (bytes / 1048576.0).ToString("0.0 'MB'", CultureInfo.InvariantCulture)
        : (bytes / 1024.0).ToString("0 'kB'", CultureInfo.InvariantCulture);
}
