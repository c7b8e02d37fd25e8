using System.Globalization;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Lessons.Lesson05;

/// <summary>
/// Lesson 05: nearest-neighbour search with Pgvector.EntityFrameworkCore (cosine, L2, inner product), filters and
/// thresholds, then what happens inside PostgreSQL: the plan, the index's query-time knobs, its recall, filtered
/// index scans, and the query shapes that silently skip the index.
/// </summary>
public sealed class VectorSearchLesson : ILesson
{
    public const string DefaultQuestion = "how do vector indexes work?";
    public const string OffTopicQuestion = "sourdough bread starter recipe";

    /// <summary>Cosine distance below which a document counts as related (similarity above 0.25) for all-MiniLM-L6-v2.</summary>
    public const double MaxDistance = 0.75;

    public static LessonInfo Info => LessonCatalog.Get("05");

    // The nearest-neighbour query in SQL, as the EF queries below send it; EXPLAIN runs it with @q.
    private const string NearestSql = "SELECT id, title FROM vector_documents ORDER BY embedding <=> @q LIMIT 10";

    // The same query with k as a parameter and ids only, for the recall measurements.
    private const string NearestIdsSql = "SELECT id FROM vector_documents ORDER BY embedding <=> @q LIMIT @k";

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        var question = SearchLessonSetup.Question(lesson, DefaultQuestion);

        lesson.Step("Load the corpus", "This lesson's own copy of the sample corpus, embedded and indexed as in lesson 04.");
        await using var db = await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, cancellationToken);
        await EmbeddingGuard.EnsureCompatibleAsync(db, embedder.Identity, cancellationToken);

        lesson.Step("Embed the question", $"\"{question}\" becomes a vector by the same model as the documents: only then are distances meaningful.");
        var query = await SearchLessonSetup.EmbedQuestionAsync(lesson, embedder, question, cancellationToken);

        lesson.Step("Cosine distance", "CosineDistance() becomes <=>. Ordered ascending with a LIMIT: the k nearest. Similarity = 1 - distance.");
        ShowHits(lesson, await Search.VectorSearch.Nearest(db, query).ToListAsync(cancellationToken), "cosine distance");

        lesson.Step("L2 and inner product", "L2Distance() is <->, MaxInnerProduct() is <#> (the inner product negated, so smaller is nearer). For unit-length vectors all three rank alike, and each converts to cosine similarity.");
        ShowHits(lesson, await Search.VectorSearch.Nearest(db, query, DistanceMetric.L2).ToListAsync(cancellationToken), "L2 distance");
        ShowHits(lesson, await Search.VectorSearch.Nearest(db, query, DistanceMetric.InnerProduct).ToListAsync(cancellationToken), "negative inner product");

        lesson.Step("With a filter", "An ordinary WHERE beside the vector ORDER BY: only research papers.");
        ShowHits(lesson, await Search.VectorSearch.Nearest(db, query, source: "research").ToListAsync(cancellationToken), "cosine distance");

        lesson.Step("A distance threshold", $"Keep only documents closer than {MaxDistance} (similarity above {1 - MaxDistance:0.00}): an off-topic question then gets nothing rather than the least bad documents.");
        ShowHits(lesson, await Search.VectorSearch.Nearest(db, query, limit: 10, maxDistance: MaxDistance).ToListAsync(cancellationToken), "cosine distance");
        var offTopic = await embedder.EmbedQueryAsync(OffTopicQuestion, cancellationToken);
        var none = await Search.VectorSearch.Nearest(db, offTopic, limit: 10, maxDistance: MaxDistance).ToListAsync(cancellationToken);
        lesson.Say($"\"{OffTopicQuestion}\": [bold]{none.Count}[/] documents within the threshold.");

        var q = () => new NpgsqlParameter("q", query);
        // Exact answers for the recall steps, computed now: the transaction below holds a lock that would block them.
        var exact = await ExactTopAsync(lesson, query, 10, cancellationToken);
        var probes = await ProbeVectorsAsync(lesson, 30, cancellationToken);
        var truths = new List<IReadOnlyList<int>>();
        foreach (var probe in probes)
        {
            truths.Add(await ExactTopAsync(lesson, probe, 10, cancellationToken));
        }

        lesson.Step("Is the index used? EXPLAIN ANALYZE", "With 180 rows the planner rightly prefers an exact scan: reading every row and sorting is cheaper than walking a graph.");
        await lesson.ExplainAsync(NearestSql, null, [q()], cancellationToken);

        lesson.Say("[grey]On a big table it would walk the HNSW graph. Show that here: in a transaction, drop the IVFFlat index (DDL is transactional in PostgreSQL), " +
                   "discourage sequential scans with SET LOCAL, EXPLAIN, and roll back: nothing outlives the transaction.[/]");
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await lesson.ExecuteAsync($"DROP INDEX {VectorDocumentConfiguration.IvfFlatIndex}", connection, cancellationToken);
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            await lesson.ExplainAsync(NearestSql, connection, [q()], cancellationToken);

            lesson.Step("Tuning at query time: hnsw.ef_search", "ef_search is how many candidates the graph walk keeps (default 40). SET LOCAL changes it for this transaction only. It also caps the rows an index scan can return.");
            var rows = new List<(int EfSearch, int Returned, double Recall)>();
            lesson.EchoSql = false;
            foreach (var ef in new[] { 1, 5, 10, 40 })
            {
                await lesson.ExecuteAsync($"SET LOCAL hnsw.ef_search = {ef}", connection, cancellationToken);
                var ids = await TopIdsAsync(connection, query, 10, cancellationToken);
                rows.Add((ef, ids.Count, Recall(exact, ids)));
            }

            lesson.EchoSql = true;
            lesson.Sql("SET LOCAL hnsw.ef_search = 1 | 5 | 10 | 40;\n" + NearestSql);
            lesson.Table(rows, ("hnsw.ef_search", r => r.EfSearch), ("rows returned (LIMIT 10)", r => r.Returned), ("recall@10 vs exact", r => r.Recall.ToString("0.00", CultureInfo.InvariantCulture)));
            lesson.Say($"[grey]ivfflat.probes is IVFFlat's knob: how many of its lists to search. Here lists = {db.Shape.IvfFlatLists} (rows / 1000, at least 1), so one probe already reads every row; " +
                       "on a million rows with 1000 lists, probes = 1 reads a thousandth of them, fast but with lower recall.[/]");

            lesson.Step("Recall@10 over many queries", "How many of the true 10 nearest the index returns, averaged over 30 documents used as queries.");
            lesson.EchoSql = false;
            var recallRows = new List<(int EfSearch, double Recall)>();

            foreach (var ef in new[] { 10, 40 })
            {
                await lesson.ExecuteAsync($"SET LOCAL hnsw.ef_search = {ef}", connection, cancellationToken);
                var total = 0.0;
                for (var i = 0; i < probes.Count; i++)
                {
                    total += Recall(truths[i], await TopIdsAsync(connection, probes[i], 10, cancellationToken));
                }

                recallRows.Add((ef, total / probes.Count));
            }

            lesson.EchoSql = true;
            lesson.Table(recallRows, ("hnsw.ef_search", r => r.EfSearch), ("mean recall@10", r => r.Recall.ToString("0.000", CultureInfo.InvariantCulture)));
            lesson.Say("[grey]A graph over 180 points is small enough to be searched almost exhaustively; on 100,000 vectors recall falls below 1 at low ef_search. " +
                       "The benchmark tool measures that trade-off at scale.[/]");

            lesson.Step("Filters and the index: iterative scans", "The index returns ef_search candidates, then WHERE removes some: a filtered query can come back short. pgvector 0.8 can keep scanning until LIMIT is met.");
            var version = (string?)(await lesson.QueryAsync("SELECT extversion FROM pg_extension WHERE extname = 'vector'", cancellationToken))[0]["extversion"];
            await lesson.ExecuteAsync("SET LOCAL hnsw.ef_search = 10", connection, cancellationToken);
            const string filtered = "SELECT id FROM vector_documents WHERE source = 'docs' ORDER BY embedding <=> @q LIMIT 10";
            var before = await lesson.QueryAsync(filtered, connection, [q()], cancellationToken);
            lesson.Say($"Without iterative scan: [bold]{before.Count}[/] of 10 rows.");
            if (Version.TryParse(version, out var v) && v >= new Version(0, 8, 0))
            {
                await lesson.ExecuteAsync("SET LOCAL hnsw.iterative_scan = relaxed_order", connection, cancellationToken);
                var after = await lesson.QueryAsync(filtered, connection, [q()], cancellationToken);
                lesson.Say($"With hnsw.iterative_scan = relaxed_order: [bold]{after.Count}[/] of 10 rows. (strict_order keeps exact distance order; relaxed_order may return a slightly out-of-order list, faster.)");
            }
            else
            {
                lesson.Say($"[yellow]pgvector {version} has no iterative index scans (they came in 0.8.0): raise ef_search, or filter with a partial index.[/]");
            }

            lesson.Step("Pitfalls: query shapes that skip the index", "An index answers only \"the k nearest\": ORDER BY the distance, ascending, with a LIMIT.");
            await lesson.ExplainAsync("SELECT id FROM vector_documents ORDER BY embedding <=> @q DESC LIMIT 10", connection, [q()], cancellationToken);
            await lesson.ExplainAsync("SELECT id FROM vector_documents WHERE embedding <=> @q < 0.5", connection, [q()], cancellationToken);
            await transaction.RollbackAsync(cancellationToken);
        }

        lesson.Table(new[]
            {
                ("ORDER BY distance DESC (farthest first)", "exact scan", "the index only walks towards the query"),
                ("no LIMIT", "exact scan", "an index scan needs a k; add LIMIT"),
                ("WHERE distance < x without ORDER BY ... LIMIT", "exact scan", "write ORDER BY distance LIMIT k, then filter the threshold"),
                ("operator not matching the index (<-> on a vector_cosine_ops index)", "exact scan", "build the index with the opclass you query: vector_cosine_ops for <=>"),
                ("a selective WHERE with a small ef_search", "too few rows", "hnsw.iterative_scan (0.8+), a larger ef_search, or a partial index"),
            },
            ("query shape", r => r.Item1), ("result", r => r.Item2), ("fix", r => r.Item3));
    }

    private static void ShowHits(Lesson lesson, IReadOnlyList<VectorHit> hits, string distanceName) =>
        lesson.Table(hits,
            ("title", h => h.Title),
            ("source", h => h.Source),
            (distanceName, h => h.Distance.ToString("0.0000", CultureInfo.InvariantCulture)),
            ("cosine similarity", h => (distanceName switch
            {
                "negative inner product" => -h.Distance,    // unit vectors: inner product = cosine similarity
                "L2 distance" => 1 - (h.Distance * h.Distance / 2), // unit vectors: |a - b|² = 2 - 2 cos
                _ => h.Similarity,
            }).ToString("0.0000", CultureInfo.InvariantCulture)));

    // The exact answer: an index-free scan, forced in a transaction of its own.
    private static async Task<IReadOnlyList<int>> ExactTopAsync(Lesson lesson, Vector query, int k, CancellationToken cancellationToken)
    {
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var off = new NpgsqlCommand("SET LOCAL enable_indexscan = off", connection))
        {
            await off.ExecuteNonQueryAsync(cancellationToken);
        }

        return await TopIdsAsync(connection, query, k, cancellationToken);
    }

    private static async Task<IReadOnlyList<int>> TopIdsAsync(NpgsqlConnection connection, Vector query, int k, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(NearestIdsSql, connection);
        command.Parameters.AddWithValue("q", query);
        command.Parameters.AddWithValue("k", k);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var ids = new List<int>();
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetInt32(0));
        }

        return ids;
    }

    private static async Task<IReadOnlyList<Vector>> ProbeVectorsAsync(Lesson lesson, int count, CancellationToken cancellationToken)
    {
        await using var command = lesson.DataSource.CreateCommand("SELECT embedding FROM vector_documents ORDER BY id LIMIT @n");
        command.Parameters.AddWithValue("n", count * 6);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var vectors = new List<Vector>();
        for (var i = 0; await reader.ReadAsync(cancellationToken); i++)
        {
            if (i % 6 == 0)
            {
                vectors.Add(reader.GetFieldValue<Vector>(0));
            }
        }

        return vectors;
    }

    private static double Recall(IReadOnlyList<int> truth, IReadOnlyList<int> found) =>
        truth.Count == 0 ? 1 : (double)found.Intersect(truth).Count() / truth.Count;
}
