using System.Diagnostics;
using System.Globalization;

namespace PgVectorModule.Exercises.Check;

/// <summary>Lesson 06: a search box that survives any text, reciprocal rank fusion, BM25 by hand, a generated tsvector.</summary>
internal static class Lesson06Checks
{
    private const string Type = "Lesson06.HybridSearchExercises";

    /// <summary>The check's documents: (title or null, body).</summary>
    private static readonly (string? Title, string Body)[] Docs =
    [
        ("Vector indexes", "An HNSW index finds the nearest vectors without reading every row."),
        ("IVFFlat lists", "IVFFlat splits the vectors into lists and searches the nearest lists."),
        (null, "A vector search with a filter may return fewer rows than the limit."),
        ("Full-text search", "PostgreSQL turns text into lexemes with to_tsvector and matches a tsquery."),
        ("Ranking", "ts_rank_cd ranks documents by how close the query terms stand."),
        ("Hybrid search", "Fuse keyword and vector results with reciprocal rank fusion."),
        ("Connection pooling", "A pool keeps connections open so each search does not pay for a new one."),
        ("pgBouncer", "pgBouncer in transaction mode shares server connections between clients."),
        ("Backups", "pg_dump writes a logical backup; point-in-time recovery replays the WAL."),
        ("Replication", "A standby replays the primary's WAL and serves read-only queries."),
        ("Row-level security", "A policy keeps each tenant to its own rows, the table owner included when forced."),
        ("Bulk loading", "Binary COPY writes many rows in one statement, far faster than INSERT."),
        ("Half precision", "halfvec stores each dimension in two bytes: half the index size."),
        ("Quantization", "Binary quantization keeps one bit per dimension and re-ranks the candidates."),
        ("Migrations", "EF Core migrations add columns and indexes in order, and roll them back."),
        ("Upserts", "INSERT ON CONFLICT updates the row that is already there."),
        ("Index search", "The planner picks an index scan when the query orders by distance with a limit."),
        ("Search quality", "Recall at ten counts how many of the true nearest the index search found."),
        ("Thresholds", "A distance threshold turns the least bad answer into no answer."),
        ("Vector types", "vector, halfvec and sparsevec store embeddings of a fixed dimension."),
        (null, "Keyword search finds exact terms such as error codes that vectors blur."),
        ("Tenants", "Search under a tenant filter needs an iterative scan or a partial index."),
        ("Statistics", "ANALYZE gives the planner the row counts it estimates costs with."),
        ("Vacuum", "VACUUM removes dead rows so the index stays small and fast."),
    ];

    public static IEnumerable<Exercise> All() =>
    [
        Exercise.Method<Func<NpgsqlDataSource, string, Task<List<long>>>>("06.1", "A search box that survives any text", "the smallest-hybrid step (websearch_to_tsquery)",
            "Put $1 in the SQL and the text in command.Parameters: never the text itself in the SQL string. websearch_to_tsquery reads quotes, 'or' and '-' and never fails on odd input; to_tsquery fails on it.",
            Type, "SearchBoxAsync", SearchBoxAsync),
        Exercise.Sql("06.2", "Reciprocal rank fusion with k = 60", "the smallest-hybrid and refined-hybrid steps (MinimalRrf, the refined fusion)",
            "Two CTEs with row_number() OVER (ORDER BY ... , id) AS rank and LIMIT 20, a FULL JOIN on id, and coalesce(1.0 / (60 + k.rank), 0) + coalesce(1.0 / (60 + s.rank), 0) AS score.",
            Type, "RrfSql", RrfAsync),
        Exercise.Sql("06.3", "BM25 for one term, by hand", "the bm25 step (BM25 in PostgreSQL)",
            "Compute N, n and avgdl in a CTE (count(*) and avg(length) over doc_lengths, count(*) over the term's postings), cast to float8, then the formula per posting. idf is ln(1 + (N - n + 0.5) / (n + 0.5)).",
            Type, "Bm25TermSql", Bm25Async),
        Exercise.Sql("06.4", "A tsvector PostgreSQL keeps up to date, with its GIN index", "the smallest-hybrid step (content_tsv, the generated column lesson 04's vector-model step declares)",
            "ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(title, '') || ' ' || body)) STORED, then CREATE INDEX ... USING gin (tsv). A NULL title makes title || body NULL: coalesce it.",
            Type, "SearchColumnSql", SearchColumnAsync),
    ];

    private static async Task CreateDocsAsync(CheckRoom room, bool withTsv, bool withEmbedding, CancellationToken ct)
    {
        var columns = "id bigint PRIMARY KEY, title text, body text NOT NULL" +
                      (withEmbedding ? $", embedding vector({CheckData.Dimensions}) NOT NULL" : "") +
                      (withTsv ? ", tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(title, '') || ' ' || body)) STORED" : "");
        await room.ExecuteAsync($"CREATE TABLE docs ({columns})", ct);
        var vectors = CheckData.Vectors(Docs.Length, seed: 6);
        for (var i = 0; i < Docs.Length; i++)
        {
            if (withEmbedding)
            {
                await room.ExecuteAsync("INSERT INTO docs (id, title, body, embedding) VALUES ($1, $2, $3, $4)", ct, (long)(i + 1), Docs[i].Title, Docs[i].Body, new Vector(vectors[i]));
            }
            else
            {
                await room.ExecuteAsync("INSERT INTO docs (id, title, body) VALUES ($1, $2, $3)", ct, (long)(i + 1), Docs[i].Title, Docs[i].Body);
            }
        }
    }

    private static async Task<CheckResult> SearchBoxAsync(CheckRoom room, Func<NpgsqlDataSource, string, Task<List<long>>> search, CancellationToken ct)
    {
        await CreateDocsAsync(room, withTsv: true, withEmbedding: false, ct);
        const string Expected = """
            SELECT id FROM docs, websearch_to_tsquery('english', $1) AS query WHERE tsv @@ query
            ORDER BY ts_rank_cd(tsv, query) DESC, id LIMIT 10
            """;
        string[] inputs =
        [
            "vector index", "vector -filter", "\"reciprocal rank\" or pgBouncer",
            // Hostile text: SQL that would run if pasted into the statement, and tsquery syntax that to_tsquery refuses.
            "'; DROP TABLE docs; --", "x' OR '1'='1", "O'Reilly's index", "index & | ! ( :* <->", "\"unclosed quote", "\\'; SELECT pg_sleep(5); --", "$1", "",
        ];
        var learner = room.DataSource();
        foreach (var input in inputs)
        {
            var sent = new List<string>();
            List<long> ids;
            using (var listener = Listen(sent))
            using (var call = Source.StartActivity("search box"))
            {
                listener.Trace = call?.TraceId;
                try
                {
                    ids = await search(learner, input);
                }
                catch (Exception e) when (e is not OperationCanceledException and not NotImplementedException)
                {
                    return CheckResult.Fail($"an answer for the text {Quote(input)}", $"{e.GetType().Name}: {Lesson04Checks.Short(e.Message)}");
                }
            }

            if (await room.ScalarAsync<string>("SELECT to_regclass('docs')::text", ct) is null)
            {
                return CheckResult.Fail("the table docs still there", $"the text {Quote(input)} dropped it: it was run as SQL");
            }

            var pasted = input.Length >= 3 ? sent.FirstOrDefault(sql => sql.Contains(input, StringComparison.Ordinal) ||
                                                                         sql.Contains(input.Replace("'", "''", StringComparison.Ordinal), StringComparison.Ordinal)) : null;
            if (pasted is not null)
            {
                return CheckResult.Fail($"the text {Quote(input)} sent as a parameter", $"it is part of the SQL: {Lesson04Checks.Short(pasted)}");
            }

            var expected = Lesson05Checks.Ids(await room.RowsAsync(Expected, ct, input));
            if (!ids.SequenceEqual(expected))
            {
                return CheckResult.Fail($"for {Quote(input)}: {CheckData.Show(expected)}", CheckData.Show(ids));
            }
        }

        return CheckResult.Pass($"{inputs.Length} texts, hostile ones among them, each sent as a parameter and answered");
    }

    /// <summary>The check's own activity around the learner's call: Npgsql's activities inside it share its trace.</summary>
    private static readonly ActivitySource Source = new("PgVectorModule.Exercises.Check");

    /// <summary>
    /// Collects the SQL text of every command Npgsql sends (its tracing activities) within the trace the check starts
    /// around the learner's call, so that nothing else running in the process (another check, a test) is counted.
    /// </summary>
    private static SqlListener Listen(List<string> sent)
    {
        var listener = new SqlListener();
        listener.Listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith("Npgsql", StringComparison.Ordinal) || source == Source,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.Source == Source || activity.TraceId != listener.Trace)
                {
                    return;
                }

                lock (sent)
                {
                    sent.AddRange(activity.Tags.Where(t => t.Value is not null).Select(t => t.Value!));
                    sent.Add(activity.DisplayName);
                }
            },
        };
        ActivitySource.AddActivityListener(listener.Listener);
        return listener;
    }

    private sealed class SqlListener : IDisposable
    {
        public ActivityListener? Listener { get; set; }

        public ActivityTraceId? Trace { get; set; }

        public void Dispose() => Listener?.Dispose();
    }

    private static string Quote(string text) => "\"" + text + "\"";

    private static async Task<CheckResult> RrfAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CreateDocsAsync(room, withTsv: true, withEmbedding: true, ct);
        const string Question = "vector index search";
        var query = CheckData.Query(60);
        var keyword = Lesson05Checks.Ids(await room.RowsAsync("""
            SELECT id FROM docs, websearch_to_tsquery('english', $1) AS q WHERE tsv @@ q ORDER BY ts_rank_cd(tsv, q) DESC, id LIMIT 20
            """, ct, Question));
        var semantic = Lesson05Checks.Ids(await room.RowsAsync("SELECT id FROM docs ORDER BY embedding <=> $1, id LIMIT 20", ct, query));
        var scores = new Dictionary<long, double>();
        foreach (var leg in new[] { keyword, semantic })
        {
            for (var i = 0; i < leg.Count; i++)
            {
                scores[leg[i]] = scores.GetValueOrDefault(leg[i]) + 1.0 / (60 + i + 1);
            }
        }

        var expected = scores.OrderByDescending(p => p.Value).ThenBy(p => p.Key).Take(10).ToList();
        var rows = await room.RowsAsync(sql, ct, Question, query, 10);
        var got = rows.Select(r => (Id: Convert.ToInt64(r[0], CultureInfo.InvariantCulture), Score: r.Length > 1 ? Convert.ToDouble(r[1], CultureInfo.InvariantCulture) : double.NaN)).ToList();
        string Show(IEnumerable<(long Id, double Score)> list) => string.Join(", ", list.Take(4).Select(p => $"{p.Id}: {p.Score.ToString("0.000000", CultureInfo.InvariantCulture)}")) + ", ...";
        var same = got.Count == expected.Count &&
                   got.Zip(expected, (g, e) => g.Id == e.Key && Math.Abs(g.Score - e.Value) < 1e-9).All(x => x);
        return same
            ? CheckResult.Pass("the fusion the check computed: the same 10 ids, the same scores")
            : CheckResult.Fail($"{expected.Count} rows: {Show(expected.Select(p => (p.Key, p.Value)))}", $"{got.Count} rows: {Show(got)}");
    }

    private static async Task<CheckResult> Bm25Async(CheckRoom room, string sql, CancellationToken ct)
    {
        // Twelve documents of different lengths; "vector" in five of them, as often as tf says.
        int[] lengths = [12, 40, 7, 25, 60, 18, 33, 9, 50, 21, 14, 45];
        var vectorTf = new Dictionary<long, int> { [1] = 2, [2] = 1, [5] = 4, [8] = 1, [9] = 3 };
        await room.ExecuteAsync("CREATE TABLE postings (term text NOT NULL, doc_id bigint NOT NULL, tf int NOT NULL); CREATE TABLE doc_lengths (doc_id bigint PRIMARY KEY, length int NOT NULL)", ct);
        for (var doc = 1; doc <= lengths.Length; doc++)
        {
            await room.ExecuteAsync("INSERT INTO doc_lengths VALUES ($1, $2)", ct, (long)doc, lengths[doc - 1]);
            await room.ExecuteAsync("INSERT INTO postings VALUES ('index', $1, $2)", ct, (long)doc, 1 + doc % 3);
            if (vectorTf.TryGetValue(doc, out var tf))
            {
                await room.ExecuteAsync("INSERT INTO postings VALUES ('vector', $1, $2)", ct, (long)doc, tf);
            }
        }

        const double K1 = 1.2, B = 0.75;
        double n = vectorTf.Count, total = lengths.Length, avgdl = lengths.Average();
        var idf = Math.Log(1 + (total - n + 0.5) / (n + 0.5));
        var expected = vectorTf
            .Select(p => (Id: p.Key, Score: idf * p.Value * (K1 + 1) / (p.Value + K1 * (1 - B + B * lengths[p.Key - 1] / avgdl))))
            .OrderByDescending(p => p.Score).ThenBy(p => p.Id).ToList();
        var rows = await room.RowsAsync(sql, ct, "vector");
        var got = rows.Select(r => (Id: Convert.ToInt64(r[0], CultureInfo.InvariantCulture), Score: r.Length > 1 ? Convert.ToDouble(r[1], CultureInfo.InvariantCulture) : double.NaN)).ToList();
        string Show(IEnumerable<(long Id, double Score)> list) => string.Join(", ", list.Select(p => $"{p.Id}: {p.Score.ToString("0.0000", CultureInfo.InvariantCulture)}"));
        var same = got.Count == expected.Count && got.Zip(expected, (g, e) => g.Id == e.Id && Math.Abs(g.Score - e.Score) < 1e-6).All(x => x);
        return same
            ? CheckResult.Pass("BM25 of 'vector' for its five documents, as the check computed it")
            : CheckResult.Fail(Show(expected), got.Count == 0 ? "no rows" : Show(got));
    }

    private static async Task<CheckResult> SearchColumnAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CreateDocsAsync(room, withTsv: false, withEmbedding: false, ct);
        await room.ExecuteAsync(sql, ct);
        await room.ExecuteAsync("INSERT INTO docs (id, title, body) VALUES (100, 'Pelicans', 'A pelican migration, new since the column was added.')", ct);
        await room.ExecuteAsync("UPDATE docs SET body = body || ' A walrus too.' WHERE id = 2", ct);
        (string Word, long Id, string Why)[] probes =
        [
            ("pelican", 100, "a row inserted after the statement"),
            ("walrus", 2, "a row whose body changed after the statement"),
            ("blur", 21, "a row whose title is NULL"),
            ("pooling", 7, "a word of the title"),
        ];
        foreach (var (word, id, why) in probes)
        {
            var found = Lesson05Checks.Ids(await room.RowsAsync("SELECT id FROM docs WHERE tsv @@ websearch_to_tsquery('english', $1) ORDER BY id", ct, word));
            if (!found.Contains(id))
            {
                return CheckResult.Fail($"'{word}' to find doc {id} ({why})", $"it finds {CheckData.Show(found)}");
            }
        }

        var plan = await room.PlanAsync("SELECT id FROM docs WHERE tsv @@ websearch_to_tsquery('english', $1)", ct, "pelican");
        var gin = await room.ScalarAsync<string>("""
            SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
            WHERE i.indrelid = 'docs'::regclass AND am.amname = 'gin' LIMIT 1
            """, ct);
        return gin is not null && plan.Contains($"Index Scan on {gin}", StringComparison.Ordinal)
            ? CheckResult.Pass($"tsv kept up to date by PostgreSQL, searched through {gin}")
            : CheckResult.Fail("a GIN index on tsv that the search uses", gin is null ? "no GIN index on docs" : Lesson04Checks.FirstLines(plan));
    }
}
