using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson05;

/// <summary>The index at work: its plan, the row cap, real approximate misses, IVFFlat's lists, iterative scans, pitfalls.</summary>
public sealed partial class VectorSearchLesson
{
    /// <summary>Rows in each generated vector table: enough for the indexes to miss, few enough to build in well under a second.</summary>
    public const int GeneratedRows = 3000;

    /// <summary>Dimensions of the generated vectors (the lesson's own tables, whatever the embedding model).</summary>
    public const int GeneratedDimensions = 128;

    /// <summary>Query vectors per measurement.</summary>
    public const int GeneratedQueries = 50;

    // The same nearest-neighbour query in SQL, on each table; @q is the query vector.
    private const string NearestSql = "SELECT id, title FROM vector_documents ORDER BY embedding <=> @q LIMIT 10";
    private const string RandomNearestSql = "SELECT id FROM random_vectors ORDER BY embedding <=> @q LIMIT 10";
    private const string ClusteredNearestSql = "SELECT id FROM clustered_vectors ORDER BY embedding <=> @q LIMIT 10";

    private static async Task IndexPlanAsync(Lesson lesson, Vector query, CancellationToken cancellationToken)
    {
        lesson.Step("explain", "Is the index used? EXPLAIN ANALYZE", "With 180 rows the planner rightly prefers an exact scan: reading every row and sorting is cheaper than walking a graph.");
        await lesson.ExplainAsync(NearestSql, null, [new NpgsqlParameter("q", query)], cancellationToken);
        lesson.Say("On a big table it would walk the HNSW graph. Shown here in a transaction rolled back afterwards (DDL is transactional in PostgreSQL): " +
                   "drop the IVFFlat index, discourage sequential scans with SET LOCAL, EXPLAIN.", Tone.Aside);
        await OnHnswOnlyAsync(lesson, connection => lesson.ExplainAsync(NearestSql, connection, [new NpgsqlParameter("q", query)], cancellationToken), cancellationToken, show: true);
    }

    private static async Task RowCapAsync(Lesson lesson, Vector query, CancellationToken cancellationToken)
    {
        lesson.DeepDive("ef-search-cap", "hnsw.ef_search caps the rows",
            "ef_search is how many candidates the graph walk keeps (default 40), and so the most rows one index scan returns: below the LIMIT, the query comes back short. " +
            $"On these 180 rows the walk reaches nearly every row, so what it returns is the true nearest; on {GeneratedRows:N0} rows (next step) it is not.");
        var exact = await ExactIdsAsync(lesson, "SELECT id FROM vector_documents ORDER BY embedding <=> @q LIMIT 10", query, cancellationToken);
        var rows = new List<(int EfSearch, int Returned, int InExactTop10)>();
        await OnHnswOnlyAsync(lesson, async connection =>
        {
            lesson.Sql("SET LOCAL hnsw.ef_search = 1 | 5 | 10 | 40;\n" + NearestSql);
            using (lesson.QuietSql())
            {
                foreach (var ef in new[] { 1, 5, 10, 40 })
                {
                    await lesson.ExecuteAsync($"SET LOCAL hnsw.ef_search = {ef}", connection, cancellationToken);
                    var ids = await IdsAsync(connection, NearestSql, query, cancellationToken);
                    rows.Add((ef, ids.Count, ids.Count(exact.Contains)));
                }
            }
        }, cancellationToken);
        lesson.Table(rows, ("hnsw.ef_search", r => r.EfSearch), ("rows returned (LIMIT 10)", r => r.Returned), ("of them in the exact top 10", r => r.InExactTop10));
        lesson.Say("So ef_search must be at least the LIMIT, and a larger one buys recall for time (pgvector's README: results are limited by hnsw.ef_search).", Tone.Aside);
    }

    private static async Task ApproximateMissAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.DeepDive("recall", "A real approximate miss: recall against ef_search",
            $"{GeneratedRows:N0} random {GeneratedDimensions}-dimension vectors, made in SQL with a fixed seed: the hardest case for an index (no clusters to follow; real embeddings are kinder). " +
            $"{GeneratedQueries} random queries, each answered exactly first, then through HNSW: recall@10 is the share of the true 10 nearest the index returns.");
        await lesson.ExecuteAsync(
            $"""
            DROP TABLE IF EXISTS random_vectors, random_queries;
            SELECT setseed(0.42);
            CREATE TABLE random_vectors (id integer PRIMARY KEY, category integer NOT NULL, embedding vector({GeneratedDimensions}) NOT NULL);
            -- "WHERE i > 0" ties the inner SELECT to each row, so every row gets vectors of its own.
            INSERT INTO random_vectors
            SELECT i, i % 20, (SELECT array_agg(random() - 0.5) FROM generate_series(1, {GeneratedDimensions}) WHERE i > 0)::vector({GeneratedDimensions})
            FROM generate_series(1, {GeneratedRows}) AS i;
            CREATE TABLE random_queries AS
            SELECT i AS id, (SELECT array_agg(random() - 0.5) FROM generate_series(1, {GeneratedDimensions}) WHERE i > 0)::vector({GeneratedDimensions}) AS embedding
            FROM generate_series(1, {GeneratedQueries}) AS i;
            ANALYZE random_vectors;
            """, cancellationToken);
        var queries = await VectorsAsync(lesson, "SELECT embedding FROM random_queries ORDER BY id", cancellationToken);
        var truth = await TruthAsync(lesson, RandomNearestSql, queries, cancellationToken);

        var watch = Stopwatch.StartNew();
        await lesson.ExecuteAsync("CREATE INDEX random_vectors_hnsw ON random_vectors USING hnsw (embedding vector_cosine_ops)", cancellationToken);
        lesson.Say($"HNSW index (m = 16, ef_construction = 64) built in {watch.Elapsed.TotalSeconds:0.0} s.");
        await lesson.ExplainAsync(RandomNearestSql, null, [new NpgsqlParameter("q", queries[0])], cancellationToken);

        var rows = new List<(int EfSearch, double Recall, double Ms)>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            lesson.Sql("SET LOCAL hnsw.ef_search = 10 | 20 | 40 | 100 | 200;\n" + RandomNearestSql, [$"@q = each of the {GeneratedQueries} query vectors"]);
            using (lesson.QuietSql())
            {
                foreach (var ef in new[] { 10, 20, 40, 100, 200 })
                {
                    await lesson.ExecuteAsync($"SET LOCAL hnsw.ef_search = {ef}", connection, cancellationToken);
                    var (recall, ms) = await MeasureAsync(connection, RandomNearestSql, queries, truth, cancellationToken);
                    rows.Add((ef, recall, ms));
                }
            }

            await transaction.RollbackAsync(cancellationToken);
        }

        lesson.Table(rows, ("hnsw.ef_search", r => r.EfSearch), ("recall@10", r => Fixed(r.Recall, 3)), ("mean ms per query", r => Fixed(r.Ms, 2)));
        lesson.Say($"At the default ef_search = 40 the index returned {Fixed(rows.Single(r => r.EfSearch == 40).Recall, 3)} of the true nearest: real misses, which a wider search buys back at some cost in time.");
    }

    private static async Task IvfFlatListsAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.DeepDive("ivfflat-lists", "IVFFlat: how many lists",
            $"IVFFlat splits the rows into lists (clusters) when it is built; a query reads the nearest ivfflat.probes of them (default 1). Fewer lists: bigger ones, more rows read, better recall, slower; more lists: the reverse. " +
            $"Measured on {GeneratedRows:N0} clustered vectors (50 centres with noise), the shape IVFFlat is made for.");
        await lesson.ExecuteAsync(
            $"""
            DROP TABLE IF EXISTS clustered_vectors, clustered_queries;
            SELECT setseed(0.7);
            CREATE TEMP TABLE centres AS
            SELECT k, (SELECT array_agg(random() - 0.5) FROM generate_series(1, {GeneratedDimensions}) WHERE k >= 0) AS centre FROM generate_series(0, 49) AS k;
            CREATE TABLE clustered_vectors (id integer PRIMARY KEY, category integer NOT NULL, embedding vector({GeneratedDimensions}) NOT NULL);
            INSERT INTO clustered_vectors
            SELECT i, i % 20, (SELECT array_agg(c.centre[d] + 0.6 * (random() - 0.5)) FROM generate_series(1, {GeneratedDimensions}) AS d)::vector({GeneratedDimensions})
            FROM generate_series(1, {GeneratedRows}) AS i JOIN centres c ON c.k = i % 50;
            CREATE TABLE clustered_queries AS
            SELECT i AS id, (SELECT array_agg(c.centre[d] + 0.6 * (random() - 0.5)) FROM generate_series(1, {GeneratedDimensions}) AS d)::vector({GeneratedDimensions}) AS embedding
            FROM generate_series(1, {GeneratedQueries}) AS i JOIN centres c ON c.k = (i * 7) % 50;
            DROP TABLE centres;
            ANALYZE clustered_vectors;
            """, cancellationToken);
        var queries = await VectorsAsync(lesson, "SELECT embedding FROM clustered_queries ORDER BY id", cancellationToken);
        var truth = await TruthAsync(lesson, ClusteredNearestSql, queries, cancellationToken);

        var rows = new List<(int Lists, double BuildMs, int Probes, double Recall, double Ms)>();
        lesson.Sql("DROP INDEX IF EXISTS clustered_vectors_ivfflat;\nCREATE INDEX clustered_vectors_ivfflat ON clustered_vectors USING ivfflat (embedding vector_cosine_ops) WITH (lists = 10 | 50 | 250);\n" +
                   "SET LOCAL ivfflat.probes = 1;\n" + ClusteredNearestSql, [$"@q = each of the {GeneratedQueries} query vectors"]);
        using (lesson.QuietSql())
        {
            foreach (var (lists, probes) in new[] { (10, 1), (50, 1), (250, 1), (250, 10) })
            {
                var build = 0.0;
                if (rows.Count == 0 || rows[^1].Lists != lists)
                {
                    await lesson.ExecuteAsync("DROP INDEX IF EXISTS clustered_vectors_ivfflat", cancellationToken);
                    var watch = Stopwatch.StartNew();
                    await lesson.ExecuteAsync($"CREATE INDEX clustered_vectors_ivfflat ON clustered_vectors USING ivfflat (embedding vector_cosine_ops) WITH (lists = {lists})", cancellationToken);
                    build = watch.Elapsed.TotalMilliseconds;
                }

                await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await lesson.ExecuteAsync($"SET LOCAL ivfflat.probes = {probes}", connection, cancellationToken);
                var (recall, ms) = await MeasureAsync(connection, ClusteredNearestSql, queries, truth, cancellationToken);
                rows.Add((lists, build, probes, recall, ms));
                await transaction.RollbackAsync(cancellationToken);
            }
        }

        lesson.Table(rows,
            ("lists", r => r.Lists),
            ("build ms", r => r.BuildMs > 0 ? Fixed(r.BuildMs, 0) : "(same index)"),
            ("probes", r => r.Probes),
            ("rows read per query (about)", r => GeneratedRows * r.Probes / r.Lists),
            ("recall@10", r => Fixed(r.Recall, 3)),
            ("mean ms per query", r => Fixed(r.Ms, 2)));
        lesson.Say($"lists = rows / 1000 would be {Math.Max(1, GeneratedRows / 1000)} here; probes is the query-time knob: more probes read more lists and recover recall (pgvector suggests sqrt(lists) to start). " +
                   $"At {GeneratedRows:N0} rows a query's time is mostly the round trip: the rows read are the cost to watch, and they grow with the table.");
    }

    private static async Task IterativeScansAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.DeepDive("iterative-scans", "Filters and the index: iterative scans",
            "An index scan hands up ef_search candidates (HNSW) or its probed lists' rows (IVFFlat); a WHERE then drops some, so a filtered query can come back short. pgvector 0.8 can keep scanning until the LIMIT is met: " +
            "strict_order keeps exact distance order; relaxed_order may return rows out of order but finds more of the true nearest, and ORDER BY distance + 0 over a MATERIALIZED CTE re-sorts them. " +
            "hnsw.max_scan_tuples and ivfflat.max_probes bound the work.");
        var version = (string?)(await lesson.QueryAsync("SELECT extversion FROM pg_extension WHERE extname = 'vector'", cancellationToken))[0]["extversion"];
        if (!Version.TryParse(version, out var v) || v < new Version(0, 8, 0))
        {
            lesson.Say($"pgvector {version} has no iterative index scans (they came in 0.8.0): raise ef_search, or filter with a partial index.", Tone.Warning);
            return;
        }

        // One category in 20: about 2 of ef_search = 40 candidates pass the filter.
        const string filtered = "SELECT id, embedding <=> @q AS distance FROM random_vectors WHERE category = 3 ORDER BY embedding <=> @q LIMIT 10";
        // "+ 0" makes the sort key an expression: no planner can take it for the order the CTE already has.
        const string resorted = $"WITH relaxed AS MATERIALIZED ({filtered}) SELECT id, distance FROM relaxed ORDER BY distance + 0";
        const string trusting = $"WITH relaxed AS MATERIALIZED ({filtered}) SELECT id, distance FROM relaxed ORDER BY distance";
        var q = (await VectorsAsync(lesson, "SELECT embedding FROM random_queries WHERE id = 1", cancellationToken))[0];
        var exact = await ExactIdsAsync(lesson, "SELECT id FROM random_vectors WHERE category = 3 ORDER BY embedding <=> @q LIMIT 10", q, cancellationToken);
        lesson.Sql(filtered);
        lesson.Sql(resorted);

        var rows = new List<(string Setting, int Returned, int Found, bool InOrder)>();
        async Task TryAsync(string setting, string[] settings, string table, string sql)
        {
            await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            foreach (var set in settings.Prepend("SET LOCAL enable_seqscan = off"))
            {
                await lesson.ExecuteAsync(set, connection, cancellationToken);
            }

            var hits = await lesson.QueryAsync(sql.Replace("random_vectors", table, StringComparison.Ordinal), connection, [new NpgsqlParameter("q", q)], cancellationToken);
            var distances = hits.Select(h => (double)h["distance"]!).ToList();
            var truth = table == "random_vectors" ? exact : null;
            rows.Add((setting, hits.Count, truth is null ? -1 : hits.Count(h => truth.Contains((int)h["id"]!)), distances.SequenceEqual(distances.Order())));
            await transaction.RollbackAsync(cancellationToken);
        }

        using (lesson.QuietSql())
        {
            await TryAsync("HNSW, off (default)", [], "random_vectors", filtered);
            await TryAsync("HNSW, strict_order", ["SET LOCAL hnsw.iterative_scan = strict_order"], "random_vectors", filtered);
            await TryAsync("HNSW, relaxed_order", ["SET LOCAL hnsw.iterative_scan = relaxed_order"], "random_vectors", filtered);
            await TryAsync("HNSW, relaxed_order + CTE re-sort (+ 0)", ["SET LOCAL hnsw.iterative_scan = relaxed_order"], "random_vectors", resorted);
            await TryAsync("HNSW, relaxed_order, max_scan_tuples 50", ["SET LOCAL hnsw.iterative_scan = relaxed_order", "SET LOCAL hnsw.max_scan_tuples = 50"], "random_vectors", filtered);
            await TryAsync("IVFFlat (lists 250), off (default)", [], "clustered_vectors", filtered);
            await TryAsync("IVFFlat, relaxed_order", ["SET LOCAL ivfflat.iterative_scan = relaxed_order"], "clustered_vectors", filtered);
            await TryAsync("IVFFlat, relaxed_order, max_probes 2", ["SET LOCAL ivfflat.iterative_scan = relaxed_order", "SET LOCAL ivfflat.max_probes = 2"], "clustered_vectors", filtered);
        }

        lesson.Table(rows,
            ("index, iterative_scan (SET LOCAL)", r => r.Setting),
            ("rows (LIMIT 10)", r => r.Returned),
            ("in the exact filtered top 10", r => r.Found < 0 ? "" : r.Found.ToString(CultureInfo.InvariantCulture)),
            ("in distance order", r => r.InOrder ? "yes" : "no"));
        lesson.Say("ivfflat.iterative_scan has no strict_order: IVFFlat returns lists, not a distance-ordered stream; re-sort as above where order matters.", Tone.Aside);

        // One query may happen to come back in order; all of them show what relaxed_order does, and that the re-sort undoes it.
        var queries = await VectorsAsync(lesson, "SELECT embedding FROM random_queries ORDER BY id", cancellationToken);
        var disorder = new List<(string Shape, int OutOfOrder)>();
        foreach (var (shape, sql) in new[] { ("relaxed_order, no re-sort", filtered), ("relaxed_order, ORDER BY distance + 0 over the CTE", resorted) })
        {
            await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            using (lesson.QuietSql())
            {
                await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
                await lesson.ExecuteAsync("SET LOCAL hnsw.iterative_scan = relaxed_order", connection, cancellationToken);
                var outOfOrder = 0;
                foreach (var query in queries)
                {
                    var distances = (await lesson.QueryAsync(sql, connection, [new NpgsqlParameter("q", query)], cancellationToken)).Select(h => (double)h["distance"]!).ToList();
                    outOfOrder += distances.SequenceEqual(distances.Order()) ? 0 : 1;
                }

                disorder.Add((shape, outOfOrder));
            }

            await transaction.RollbackAsync(cancellationToken);
        }

        lesson.Table(disorder, ("HNSW, category = 3, each of the 50 random queries", r => r.Shape), ("queries whose rows came out of distance order", r => r.OutOfOrder));

        string server;
        using (lesson.QuietSql())
        {
            server = (string)(await lesson.QueryAsync("SHOW server_version_num", cancellationToken))[0]["server_version_num"]!;
        }

        var major = int.Parse(server, CultureInfo.InvariantCulture) / 10000;
        lesson.Say($"The two re-sorts, planned by this server (PostgreSQL {major}): a plain ORDER BY distance, then ORDER BY distance + 0. " +
                   "Up to 16 both sort; from 17 the planner takes the CTE's order as given and drops the first one's Sort, so relaxed rows come out as the scan found them " +
                   "(pgvector's README: \"+ 0 is needed for Postgres 17+\"). The + 0 plan sorts on every version.", Tone.Aside);
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            using (lesson.QuietSql())
            {
                await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
                await lesson.ExecuteAsync("SET LOCAL hnsw.iterative_scan = relaxed_order", connection, cancellationToken);
            }

            await lesson.ExplainAsync(trusting, connection, [new NpgsqlParameter("q", q)], cancellationToken);
            await lesson.ExplainAsync(resorted, connection, [new NpgsqlParameter("q", q)], cancellationToken);
            await transaction.RollbackAsync(cancellationToken);
        }
    }

    private static async Task PitfallsAsync(Lesson lesson, Vector query, CancellationToken cancellationToken)
    {
        lesson.DeepDive("pitfalls", "Pitfalls: query shapes that skip the index", "An index answers only \"the k nearest\": ORDER BY the distance operator itself, ascending, with a LIMIT. Each plan below has sequential scans discouraged, and still reads every row.");
        await OnHnswOnlyAsync(lesson, async connection =>
        {
            await lesson.ExplainAsync("SELECT id FROM vector_documents ORDER BY embedding <=> @q DESC LIMIT 10", connection, [new NpgsqlParameter("q", query)], cancellationToken);
            await lesson.ExplainAsync("SELECT id FROM vector_documents ORDER BY 1 - (embedding <=> @q) DESC LIMIT 10", connection, [new NpgsqlParameter("q", query)], cancellationToken);
            await lesson.ExplainAsync("SELECT id FROM vector_documents WHERE embedding <=> @q < 0.5", connection, [new NpgsqlParameter("q", query)], cancellationToken);
        }, cancellationToken);
        lesson.Table(Pitfalls, ("query shape", r => r.Shape), ("result", r => r.Result), ("fix", r => r.Fix));
    }

    private static readonly (string Shape, string Result, string Fix)[] Pitfalls =
    [
        ("ORDER BY distance DESC (farthest first)", "exact scan", "the index only walks towards the query"),
        ("ORDER BY 1 - distance DESC (similarity)", "exact scan", "order by the operator itself, ascending; compute the similarity in the SELECT list"),
        ("no LIMIT", "exact scan", "an index scan needs a k; add LIMIT"),
        ("WHERE distance < x without ORDER BY ... LIMIT", "exact scan", "ORDER BY distance LIMIT k in a subquery or MATERIALIZED CTE, then the threshold outside it (step 6)"),
        ("operator not matching the index (<-> on a vector_cosine_ops index)", "exact scan", "build the index with the operator class you query: vector_cosine_ops for <=>"),
        ("a selective WHERE with the default ef_search", "too few rows", "hnsw.iterative_scan / ivfflat.iterative_scan (0.8+), a larger ef_search, or a partial index (step 12)"),
        ("ef_search below the LIMIT", "too few rows", "ef_search at least the LIMIT, higher for recall (steps 9 and 10)"),
    ];

    /// <summary>
    /// Runs <paramref name="action"/> in a transaction where the HNSW index is the only way in: the IVFFlat index is
    /// dropped and sequential scans discouraged. The transaction is rolled back, so the index is back afterwards. Its
    /// lock holds other connections off vector_documents until then: compute exact answers before.
    /// </summary>
    private static async Task OnHnswOnlyAsync(Lesson lesson, Func<NpgsqlConnection, Task> action, CancellationToken cancellationToken, bool show = false)
    {
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Shown, this set-up is folded by default (the narration says what it does); otherwise it is not shown at all.
        using (show ? lesson.Detail() : lesson.QuietSql())
        {
            await lesson.ExecuteAsync($"DROP INDEX {VectorDocumentConfiguration.IvfFlatIndex}", connection, cancellationToken);
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
        }

        await action(connection);
        await transaction.RollbackAsync(cancellationToken);
    }

    /// <summary>The exact answer: no index at all (index scans off in a transaction of its own), every row compared.</summary>
    private static async Task<HashSet<int>> ExactIdsAsync(Lesson lesson, string sql, Vector query, CancellationToken cancellationToken)
    {
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var off = new NpgsqlCommand("SET LOCAL enable_indexscan = off", connection))
        {
            await off.ExecuteNonQueryAsync(cancellationToken);
        }

        return [.. await IdsAsync(connection, sql, query, cancellationToken)];
    }

    private static async Task<List<HashSet<int>>> TruthAsync(Lesson lesson, string sql, IReadOnlyList<Vector> queries, CancellationToken cancellationToken)
    {
        var truth = new List<HashSet<int>>(queries.Count);
        foreach (var query in queries)
        {
            truth.Add(await ExactIdsAsync(lesson, sql, query, cancellationToken));
        }

        return truth;
    }

    /// <summary>Mean recall@10 against the exact answers, and mean time per query as the client sees it.</summary>
    private static async Task<(double Recall, double MeanMs)> MeasureAsync(NpgsqlConnection connection, string sql, IReadOnlyList<Vector> queries,
        IReadOnlyList<HashSet<int>> truth, CancellationToken cancellationToken)
    {
        var found = 0;
        var watch = new Stopwatch();
        for (var i = 0; i < queries.Count; i++)
        {
            watch.Start();
            var ids = await IdsAsync(connection, sql, queries[i], cancellationToken);
            watch.Stop();
            found += ids.Count(truth[i].Contains);
        }

        return (found / (10.0 * queries.Count), watch.Elapsed.TotalMilliseconds / queries.Count);
    }

    private static async Task<List<int>> IdsAsync(NpgsqlConnection connection, string sql, Vector query, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("q", query);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var ids = new List<int>();
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetInt32(0));
        }

        return ids;
    }

    private static async Task<List<Vector>> VectorsAsync(Lesson lesson, string sql, CancellationToken cancellationToken)
    {
        using (lesson.QuietSql())
        {
            return (await lesson.QueryAsync(sql, cancellationToken)).Select(r => (Vector)r["embedding"]!).ToList();
        }
    }

    private static string Fixed(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
