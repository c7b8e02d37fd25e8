using System.Globalization;
using PgVectorModule.Embeddings;

namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Not in the Python module: smaller vectors (halfvec, binary quantization with re-ranking).</summary>
public sealed partial class ProductionLesson
{
    private static async Task SmallerVectorsAsync(Lesson lesson, int dims, IReadOnlyList<Vector> vectors, CancellationToken cancellationToken)
    {
        lesson.DeepDive("smaller-vectors", "Smaller vectors: halfvec and binary quantization",
            "halfvec stores 2 bytes per dimension instead of 4; binary_quantize keeps one bit per dimension (its sign), searched by Hamming distance <~>. Both index the same vector column as expressions.");
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
        lesson.Say($"The bit index holds {dims} bits a row against {dims * 4:N0} bytes; Hamming distance ranks coarsely, so its top {RerankCandidates} are re-ranked by the exact distance.", Tone.Aside);

        await OverTwoThousandDimensionsAsync(lesson, cancellationToken);
    }

    /// <summary>
    /// text-embedding-3-large returns 3,072 dimensions; pgvector indexes vector up to 2,000 and halfvec up to 4,000. Two ways
    /// out, measured on synthetic vectors of that width: a halfvec expression index over the full vectors, or shorter vectors
    /// (what OpenAI's dimensions parameter returns) in a plain vector column.
    /// </summary>
    private static async Task OverTwoThousandDimensionsAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.Say($"Over 2,000 dimensions (text-embedding-3-large returns {LargeDimensions:N0}): {LargeRows:N0} synthetic vectors of that width, 20 more as queries. A plain HNSW index first:", Tone.Aside);
        var (rows, queries) = LargeVectors(LargeRows, 20);
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("DROP TABLE IF EXISTS large_vectors, shortened_vectors", cancellationToken);
        }

        await lesson.ExecuteAsync($"CREATE TABLE large_vectors (id integer PRIMARY KEY, embedding vector({LargeDimensions}) NOT NULL)", cancellationToken);
        await lesson.ExecuteAsync($"CREATE TABLE shortened_vectors (id integer PRIMARY KEY, embedding vector({ShortenedDimensions}) NOT NULL)", cancellationToken);
        await CopyRowsAsync(lesson, "large_vectors", rows, cancellationToken);
        await CopyRowsAsync(lesson, "shortened_vectors", rows.Select(Shorten).ToList(), cancellationToken);

        try
        {
            await lesson.ExecuteAsync("CREATE INDEX large_vectors_hnsw ON large_vectors USING hnsw (embedding vector_cosine_ops)", cancellationToken);
            lesson.Say("The index was built: this pgvector indexes vector beyond 2,000 dimensions.", Tone.Bad);
        }
        catch (PostgresException e)
        {
            lesson.Say($"PostgreSQL: {e.MessageText} (SQLSTATE {e.SqlState}); halfvec is indexed up to 4,000.", Tone.Warning);
        }

        await lesson.ExecuteAsync($"CREATE INDEX large_vectors_halfvec_hnsw ON large_vectors USING hnsw ((embedding::halfvec({LargeDimensions})) halfvec_cosine_ops)", cancellationToken);
        await lesson.ExecuteAsync("CREATE INDEX shortened_vectors_hnsw ON shortened_vectors USING hnsw (embedding vector_cosine_ops)", cancellationToken);
        await lesson.ExecuteAsync("ANALYZE large_vectors, shortened_vectors", cancellationToken);

        var exactSql = "SELECT id FROM large_vectors ORDER BY embedding <=> @q LIMIT 10";
        var halfSql = $"SELECT id FROM large_vectors ORDER BY embedding::halfvec({LargeDimensions}) <=> @q::halfvec({LargeDimensions}) LIMIT 10";
        var shortSql = "SELECT id FROM shortened_vectors ORDER BY embedding <=> @q LIMIT 10";
        var truths = new List<IReadOnlyList<int>>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("SET LOCAL enable_indexscan = off", connection, cancellationToken);
            foreach (var query in queries)
            {
                truths.Add(await IdsAsync(lesson, exactSql, connection, query, cancellationToken));
            }
        }

        var results = new List<(string Search, string Index, double Recall)>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            await lesson.ExecuteAsync("SET LOCAL hnsw.ef_search = 100", connection, cancellationToken);
            await lesson.ExplainAsync(halfSql, connection, [new NpgsqlParameter("q", queries[0])], cancellationToken);
            using (lesson.QuietSql())
            {
                foreach (var (search, index, sql, shorten) in new[]
                         {
                             ($"vector({LargeDimensions}), halfvec expression index", "large_vectors_halfvec_hnsw", halfSql, false),
                             ($"vector({ShortenedDimensions}), the first {ShortenedDimensions:N0} dimensions again at unit length", "shortened_vectors_hnsw", shortSql, true),
                         })
                {
                    var total = 0.0;
                    for (var i = 0; i < queries.Count; i++)
                    {
                        var found = await IdsAsync(lesson, sql, connection, shorten ? Shorten(queries[i]) : queries[i], cancellationToken);
                        total += truths[i].Intersect(found).Count() / 10.0;
                    }

                    results.Add((search, index, total / queries.Count));
                }
            }

            await transaction.RollbackAsync(cancellationToken);
        }

        var sizes = (await lesson.QueryAsync("""
            SELECT c.relname AS name, pg_table_size(c.oid) AS bytes FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relname IN ('large_vectors', 'shortened_vectors', 'large_vectors_halfvec_hnsw', 'shortened_vectors_hnsw')
            """, cancellationToken)).ToDictionary(r => (string)r["name"]!, r => (long)r["bytes"]!);
        lesson.Table(results,
            ("stored as, searched by", r => r.Search),
            ("table size", r => Size(sizes[r.Index.StartsWith("large", StringComparison.Ordinal) ? "large_vectors" : "shortened_vectors"])),
            ("index", r => r.Index),
            ("index size", r => Size(sizes[r.Index])),
            ($"recall@10 vs exact search of the full {LargeDimensions:N0} (20 queries)", r => r.Recall.ToString("0.00", CultureInfo.InvariantCulture)));
        lesson.Say($"Both indexes hold {ShortenedDimensions * 4:N0} bytes a vector. The halfvec index keeps every dimension at half precision (recall {results[0].Recall:0.00}); " +
                   $"OPENAI_EMBEDDING_DIMENSIONS={ShortenedDimensions} asks text-embedding-3-large for a vector({ShortenedDimensions}), cut short, that a plain index takes (recall {results[1].Recall:0.00}).", Tone.Aside);
        using (lesson.Detail())
        {
            lesson.Say($"The halfvec way keeps the full vectors in the table ({LargeDimensions * 4 + 8:N0} bytes a row) for anything else; the cut one stores a smaller table. " +
                       "The synthetic vectors are clusters whose spread falls along the dimensions, as in models trained to be shortened: what the cut costs in recall depends on the model, " +
                       "and only your own embeddings, searched both ways, tell.", Tone.Aside);
        }
    }

    /// <summary>Writes <paramref name="vectors"/> into <paramref name="table"/> (id, embedding) with one binary COPY.</summary>
    private static async Task CopyRowsAsync(Lesson lesson, string table, IReadOnlyList<Vector> vectors, CancellationToken cancellationToken)
    {
        var copy = $"COPY {table} (id, embedding) FROM STDIN (FORMAT BINARY)";
        lesson.Sql(copy, [$"{vectors.Count:N0} rows"]);
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var writer = await connection.BeginBinaryImportAsync(copy, cancellationToken);
        for (var i = 0; i < vectors.Count; i++)
        {
            await writer.WriteRowAsync(cancellationToken, i + 1, vectors[i]);
        }

        await writer.CompleteAsync(cancellationToken);
    }

    /// <summary>What the dimensions parameter returns: the first dimensions, rescaled to unit length.</summary>
    private static Vector Shorten(Vector vector)
    {
        var head = vector.ToArray()[..ShortenedDimensions];
        UnitVector.Normalize(head);
        return new Vector(head);
    }

    /// <summary>
    /// Unit vectors of <see cref="LargeDimensions"/> around 40 centres, each dimension's spread falling as 1 / sqrt(1 + d / 64),
    /// seeded: the rows, then <paramref name="queryCount"/> queries from the same clusters.
    /// </summary>
    private static (List<Vector> Rows, List<Vector> Queries) LargeVectors(int rowCount, int queryCount)
    {
        var random = new Random(3072);
        var scale = Enumerable.Range(0, LargeDimensions).Select(d => (float)(1 / Math.Sqrt(1 + (d / 64.0)))).ToArray();
        var centres = Enumerable.Range(0, 40).Select(_ => Enumerable.Range(0, LargeDimensions).Select(_ => (float)GaussianNoise.Next(random)).ToArray()).ToArray();
        Vector Next(int i)
        {
            var centre = centres[i % centres.Length];
            var v = new float[LargeDimensions];
            for (var d = 0; d < LargeDimensions; d++)
            {
                v[d] = scale[d] * (centre[d] + (0.8f * (float)GaussianNoise.Next(random)));
            }

            UnitVector.Normalize(v);
            return new Vector(v);
        }

        var rows = Enumerable.Range(0, rowCount).Select(Next).ToList();
        var queries = Enumerable.Range(0, queryCount).Select(i => Next(i * 7)).ToList();
        return (rows, queries);
    }

    private static async Task<IReadOnlyList<int>> IdsAsync(Lesson lesson, string sql, NpgsqlConnection connection, Vector q, CancellationToken cancellationToken) =>
        (await lesson.QueryAsync(sql, connection, [new NpgsqlParameter("q", q)], cancellationToken)).Select(r => (int)r["id"]!).ToList();

    private static string Size(long bytes) => bytes >= 1 << 20
        ? (bytes / 1048576.0).ToString("0.0 'MB'", CultureInfo.InvariantCulture)
        : (bytes / 1024.0).ToString("0 'kB'", CultureInfo.InvariantCulture);
}
