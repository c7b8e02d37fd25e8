using System.Globalization;
using System.Text.Json;

namespace PgVectorModule.Exercises.Check;

/// <summary>
/// Lesson 11, on one server (no Citus needed): the coordinator's merge of each shard's top k, the keys a table
/// distributed by tenant needs, and BM25 statistics counted over the whole corpus.
/// </summary>
internal static class Lesson11Checks
{
    private const string Type = "Lesson11.ScaleOutExercises";

    /// <summary>The shard tables of 11.1 and their rows: uneven, as a large tenant makes them.</summary>
    private static readonly int[] ShardRows = [600, 300, 150];

    public static IEnumerable<Exercise> All() =>
    [
        Exercise.Sql("11.1", "The coordinator's merge: each shard's k nearest, then the best k", "the all-shards step",
            "Each shard in parentheses: (SELECT id, embedding <=> $1 AS distance FROM documents_s0 ORDER BY embedding <=> $1 LIMIT $2), joined by UNION ALL; around them ORDER BY distance, id LIMIT $2. <=> is cosine distance (<-> is L2).",
            Type, "GlobalNearestSql", GlobalNearestAsync),
        Exercise.Sql("11.2", "Keys for a table distributed by tenant", "the distribute step",
            "Every key holds the distribution column: PRIMARY KEY (tenant_id, id), and FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE; every column NOT NULL.",
            Type, "ChunksKeysSql", ChunksKeysAsync),
        Exercise.Sql("11.3", "BM25 statistics over the whole corpus", "the hybrid-across-shards step (RefreshGlobalStatistics)",
            "TRUNCATE both tables first (a lexeme gone from the corpus must go too), then INSERT ... SELECT lexeme, count(*) ... GROUP BY lexeme, and SELECT 1, count(DISTINCT (tenant_id, article_id)), sum(term_frequency): article ids repeat across tenants.",
            Type, "RefreshGlobalStatisticsSql", GlobalStatisticsAsync),
    ];

    private static string Shard(int shard) => $"documents_s{shard}";

    private static string ShardIndex(int shard) => $"documents_s{shard}_hnsw";

    private static async Task<CheckResult> GlobalNearestAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        // Ids spread over the shards and not in distance order; tenant_id % 3 says the shard, as a hash of it would.
        var vectors = CheckData.Vectors(ShardRows.Sum(), seed: 11);
        var next = 0;
        for (var shard = 0; shard < ShardRows.Length; shard++)
        {
            await room.ExecuteAsync($"CREATE TABLE {Shard(shard)} (id bigint PRIMARY KEY, tenant_id int NOT NULL, embedding vector({CheckData.Dimensions}) NOT NULL)", ct);
            for (var row = 0; row < ShardRows[shard]; row++, next++)
            {
                await room.ExecuteAsync($"INSERT INTO {Shard(shard)} (id, tenant_id, embedding) VALUES ($1, $2, $3)", ct,
                    (long)(1 + (next * 7919 % 10007)), shard + (3 * (row % 5)), new Vector(vectors[next]));
            }

            await room.ExecuteAsync($"CREATE INDEX {ShardIndex(shard)} ON {Shard(shard)} USING hnsw (embedding vector_cosine_ops)", ct);
            await room.ExecuteAsync($"ANALYZE {Shard(shard)}", ct);
        }

        // Every row of every shard sorted: "+ 0" makes the ORDER BY an expression no index can return.
        var exact = string.Join(" UNION ALL ", Enumerable.Range(0, ShardRows.Length).Select(s => $"SELECT id, embedding <=> $1 AS distance FROM {Shard(s)}"));
        exact = $"SELECT id, distance FROM ({exact}) every_row ORDER BY distance + 0, id LIMIT $2";
        foreach (var (seed, k) in new[] { (111, 10), (112, 10), (113, 4) })
        {
            var query = CheckData.Query(seed);
            var expected = Rows(await room.RowsAsync(exact, ct, query, k));
            var got = Rows(await IndexedRowsAsync(room, sql, ct, query, k));
            var same = got.Count == expected.Count && got.Zip(expected, (g, e) => g.Id == e.Id && Math.Abs(g.Distance - e.Distance) < 1e-6).All(x => x);
            if (!same)
            {
                return CheckResult.Fail($"the {k} nearest of all shards by cosine distance, nearest first: {Show(expected)}", Show(got));
            }
        }

        var plan = await JsonPlanAsync(room, sql, ct, CheckData.Query(111), 10);
        for (var shard = 0; shard < ShardRows.Length; shard++)
        {
            if (ShardScan(plan, shard) is { } problem)
            {
                return CheckResult.Fail($"each shard's own $2 nearest from its HNSW index (a Limit over Index Scan using {ShardIndex(shard)})", problem);
            }
        }

        return CheckResult.Pass("three queries: the k nearest of all shards, in order; each shard's own k nearest from its HNSW index, merged");
    }

    /// <summary>
    /// The learner's query with sequential scans discouraged (as on shards of millions of rows) and each HNSW search wide
    /// enough to hold a whole shard (ef_search 1000 against 600 rows at most): the index's answer is then the exact one,
    /// and a difference from it is the query's, not the graph's.
    /// </summary>
    private static Task<List<object?[]>> IndexedRowsAsync(CheckRoom room, string sql, CancellationToken ct, params object?[] values) =>
        room.RowsWithSettingsAsync("SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = 1000", sql, ct, values);

    /// <summary>The plan as JSON (EXPLAIN (FORMAT JSON)), sequential scans discouraged.</summary>
    private static async Task<JsonElement> JsonPlanAsync(CheckRoom room, string sql, CancellationToken ct, params object?[] values)
    {
        var rows = await IndexedRowsAsync(room, "EXPLAIN (FORMAT JSON, COSTS OFF) " + CheckRoom.Statement(sql), ct, values);
        using var json = JsonDocument.Parse((string)rows[0][0]!);
        return json.RootElement[0].GetProperty("Plan").Clone();
    }

    /// <summary>
    /// Null when the shard is read by its HNSW index under a Limit of its own (Result, Subquery Scan and Incremental Sort
    /// may stand between them); else what the plan does instead.
    /// </summary>
    private static string? ShardScan(JsonElement plan, int shard)
    {
        var scans = new List<(JsonElement Node, string? Above)>();
        Walk(plan, null);
        var indexed = scans.Where(s => Text(s.Node, "Index Name") == ShardIndex(shard)).ToList();
        if (indexed.Count == 0)
        {
            var how = scans.Where(s => Text(s.Node, "Relation Name") == Shard(shard)).Select(s => Text(s.Node, "Node Type")).Distinct().ToList();
            return how.Count == 0
                ? $"{Shard(shard)} not read at all"
                : $"{Shard(shard)} read by {string.Join(", ", how)}, not its HNSW index: its ORDER BY embedding <=> $1 LIMIT $2 of its own is what the index serves";
        }

        return indexed.FirstOrDefault(s => s.Above != "Limit") is { Node.ValueKind: JsonValueKind.Object } unlimited
            ? $"Index Scan using {ShardIndex(shard)} feeds a {unlimited.Above ?? "result"} with no LIMIT of its own: the shard would send the coordinator every row, in distance order"
            : null;

        // Each scan with the nearest node above it that does more than pass rows on.
        void Walk(JsonElement node, string? above)
        {
            var type = Text(node, "Node Type");
            if (Text(node, "Relation Name") is not null)
            {
                scans.Add((node, above));
            }

            var next = type is "Result" or "Subquery Scan" or "Incremental Sort" ? above : type;
            if (node.TryGetProperty("Plans", out var children))
            {
                foreach (var child in children.EnumerateArray())
                {
                    Walk(child, next);
                }
            }
        }
    }

    private static string? Text(JsonElement node, string property) =>
        node.TryGetProperty(property, out var value) ? value.GetString() : null;

    private static List<(long Id, double Distance)> Rows(List<object?[]> rows) =>
        rows.Select(r => (Convert.ToInt64(r[0], CultureInfo.InvariantCulture), r.Length > 1 && r[1] is not null ? Convert.ToDouble(r[1], CultureInfo.InvariantCulture) : double.NaN)).ToList();

    private static string Show(List<(long Id, double Distance)> rows) =>
        rows.Count == 0 ? "no rows" : string.Join(", ", rows.Take(10).Select(r => $"{r.Id} ({r.Distance.ToString("0.0000", CultureInfo.InvariantCulture)})")) + (rows.Count > 10 ? $", ... ({rows.Count} rows)" : "");

    private static async Task<CheckResult> ChunksKeysAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        // The lesson's documents: distributed by tenant_id, so its key holds tenant_id; ids repeat across tenants and are
        // never a tenant's number, so a foreign key with its columns swapped finds nothing.
        await room.ExecuteAsync("CREATE TABLE documents (tenant_id int NOT NULL, id bigint NOT NULL, title text NOT NULL, PRIMARY KEY (tenant_id, id))", ct);
        await room.ExecuteAsync("INSERT INTO documents (tenant_id, id, title) VALUES (1, 10, 'ten of tenant 1'), (1, 20, 'twenty of tenant 1'), (2, 10, 'ten of tenant 2'), (2, 30, 'thirty of tenant 2')", ct);
        await room.ExecuteAsync(sql, ct);

        const string Insert = "INSERT INTO chunks (tenant_id, id, document_id, body, embedding) VALUES ($1, $2, $3, 'a chunk', $4)";
        var vector = CheckData.Query(11);
        foreach (var (tenant, chunk, document) in new[] { (1, 1L, 10L), (1, 2L, 10L), (1, 3L, 20L), (2, 1L, 10L), (2, 2L, 30L) })
        {
            if (await room.RefusedAsync(Insert, ct, tenant, chunk, document, vector) is { } state)
            {
                return CheckResult.Fail($"chunk {chunk} of tenant {tenant}, of its document {document}, accepted" + (tenant == 2 && chunk == 1 ? " (tenant 1 has a chunk 1 too: ids are unique per tenant)" : ""),
                    $"refused ({state})");
            }
        }

        if (await room.RefusedAsync(Insert, ct, 1, 1L, 20L, vector) is not "23505")
        {
            return CheckResult.Fail("a second chunk 1 of tenant 1 refused (a primary key on tenant_id and id)", "accepted");
        }

        if (await room.RefusedAsync(Insert, ct, 2, 9L, 20L, vector) is not "23503")
        {
            return CheckResult.Fail("a chunk of tenant 2 in document 20, which is tenant 1's, refused (a foreign key on tenant_id and document_id)", "accepted");
        }

        if (await room.RefusedAsync(Insert, ct, 1, 9L, 99L, vector) is not "23503")
        {
            return CheckResult.Fail("a chunk of document 99, which does not exist, refused (a foreign key)", "accepted");
        }

        if (await room.RefusedAsync(Insert, ct, 1, 9L, null, vector) is null)
        {
            return CheckResult.Fail("a chunk without a document refused (document_id NOT NULL: a foreign key lets a NULL through)", "accepted");
        }

        if (await room.RefusedAsync("DELETE FROM documents WHERE tenant_id = 1 AND id = 10", ct) is { } deleteState)
        {
            return CheckResult.Fail("tenant 1's document 10 deleted, and its chunks with it (ON DELETE CASCADE)", $"the DELETE was refused ({deleteState})");
        }

        var left = await room.RowsAsync("SELECT tenant_id, id FROM chunks ORDER BY tenant_id, id", ct);
        var chunks = string.Join(", ", left.Select(r => $"{r[0]}/{r[1]}"));
        if (chunks != "1/3, 2/1, 2/2")
        {
            return CheckResult.Fail("chunks 1/3, 2/1, 2/2 left (tenant/chunk): tenant 1's document 10 gone with its chunks, tenant 2's document 10 kept with its chunk",
                chunks.Length == 0 ? "no chunk left" : chunks);
        }

        // What Citus asks of a distributed table: every unique index holds the distribution column; every column required.
        var withoutTenant = await room.ScalarAsync<string>("""
            SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ')
            FROM pg_index i
            WHERE i.indrelid = 'chunks'::regclass AND i.indisunique
              AND NOT (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attname = 'tenant_id') = ANY (i.indkey)
            """, ct);
        if (withoutTenant is not null)
        {
            return CheckResult.Fail("every unique key of chunks with tenant_id in it (Citus refuses one without the distribution column)", withoutTenant);
        }

        var nullable = await room.ScalarAsync<string>("""
            SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = 'chunks'::regclass AND attnum > 0 AND NOT attisdropped AND NOT attnotnull
            """, ct);
        if (nullable is not null)
        {
            return CheckResult.Fail("every column of chunks NOT NULL", $"nullable: {nullable}");
        }

        var embedding = await room.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'", ct);
        return embedding == $"vector({CheckData.Dimensions})"
            ? CheckResult.Pass("chunk ids per tenant; a chunk only in a document of its own tenant, gone with it; every key holds tenant_id")
            : CheckResult.Fail($"embedding vector({CheckData.Dimensions})", $"embedding {embedding ?? "missing"}");
    }

    /// <summary>11.3's articles: (tenant, article id, text). Ids repeat across tenants, as the lesson's keys allow.</summary>
    private static readonly (int Tenant, long Id, string Body)[] Articles =
    [
        (1, 1, "An HNSW index finds the nearest vectors without reading every row."),
        (1, 2, "A vector index trades a little recall for speed."),
        (2, 1, "A standby replica replays the primary's log and answers reads."),
        (2, 2, "Shards spread a table's rows over servers: each tenant's rows stay on one shard."),
        (3, 1, "The coordinator merges the nearest vectors each shard returns."),
    ];

    private static async Task InsertArticleAsync(CheckRoom room, (int Tenant, long Id, string Body) article, CancellationToken ct) =>
        // As the lesson fills its postings: a row per lexeme, with its frequency and the article's length.
        await room.ExecuteAsync("""
            INSERT INTO article_terms (tenant_id, article_id, lexeme, term_frequency, article_length)
            SELECT $1, $2, t.lexeme, coalesce(array_length(t.positions, 1), 1),
                   sum(coalesce(array_length(t.positions, 1), 1)) OVER ()
            FROM unnest(to_tsvector('english', $3)) AS t(lexeme, positions, weights)
            """, ct, article.Tenant, article.Id, article.Body);

    private static async Task<CheckResult> GlobalStatisticsAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await room.ExecuteAsync("""
            CREATE TABLE article_terms (
                tenant_id int NOT NULL, article_id bigint NOT NULL, lexeme text NOT NULL,
                term_frequency int NOT NULL, article_length int NOT NULL,
                PRIMARY KEY (tenant_id, lexeme, article_id));
            CREATE TABLE term_statistics (lexeme text PRIMARY KEY, document_frequency bigint NOT NULL);
            CREATE TABLE corpus_statistics (id int PRIMARY KEY CHECK (id = 1), article_count bigint NOT NULL, total_length bigint NOT NULL);
            """, ct);
        foreach (var article in Articles)
        {
            await InsertArticleAsync(room, article, ct);
        }

        // An earlier refresh's figures: a lexeme no article holds any more, a count grown since, a smaller corpus.
        await room.ExecuteAsync("INSERT INTO term_statistics VALUES ('stale', 99), ('vector', 1); INSERT INTO corpus_statistics VALUES (1, 2, 10)", ct);
        await room.ExecuteAsync(sql, ct);
        if (await CompareAsync(room, "after the first refresh", ct) is { } first)
        {
            return first;
        }

        // The corpus changes: an article goes (with the only 'standbi'), one comes, its id 1 again, under a fourth tenant.
        await room.ExecuteAsync("DELETE FROM article_terms WHERE tenant_id = 2 AND article_id = 1", ct);
        await InsertArticleAsync(room, (4, 1, "Global statistics give every shard the same idf for every vector."), ct);
        await room.ExecuteAsync(sql, ct);
        if (await CompareAsync(room, "after the corpus changed", ct) is { } second)
        {
            return second;
        }

        await room.ExecuteAsync(sql, ct);
        return await CompareAsync(room, "run again with nothing changed", ct)
            ?? CheckResult.Pass("document frequencies, article count and total length of the whole corpus, refreshed after a change and run twice");
    }

    /// <summary>Null when the statistics tables hold what article_terms says, counted here in C#; else the first differences.</summary>
    private static async Task<CheckResult?> CompareAsync(CheckRoom room, string when, CancellationToken ct)
    {
        var postings = await room.RowsAsync("SELECT tenant_id, article_id, lexeme, term_frequency FROM article_terms", ct);
        var expected = postings.GroupBy(r => (string)r[2]!).ToDictionary(g => g.Key, g => (long)g.Count(), StringComparer.Ordinal);
        var got = (await room.RowsAsync("SELECT lexeme, document_frequency FROM term_statistics", ct))
            .ToDictionary(r => (string)r[0]!, r => Convert.ToInt64(r[1], CultureInfo.InvariantCulture), StringComparer.Ordinal);
        var differ = expected.Keys.Union(got.Keys).Order(StringComparer.Ordinal)
            .Where(l => expected.GetValueOrDefault(l, -1) != got.GetValueOrDefault(l, -1)).Take(4).ToList();
        if (differ.Count > 0)
        {
            string Said(Dictionary<string, long> counts, string lexeme) => counts.TryGetValue(lexeme, out var n) ? $"'{lexeme}' {n}" : $"no '{lexeme}'";
            return CheckResult.Fail($"{when}, term_statistics as the corpus has it: " + string.Join(", ", differ.Select(l => Said(expected, l))),
                string.Join(", ", differ.Select(l => Said(got, l))));
        }

        var articles = postings.Select(r => (Convert.ToInt32(r[0], CultureInfo.InvariantCulture), Convert.ToInt64(r[1], CultureInfo.InvariantCulture))).Distinct().Count();
        var length = postings.Sum(r => Convert.ToInt64(r[3], CultureInfo.InvariantCulture));
        var corpus = await room.RowsAsync("SELECT id, article_count, total_length FROM corpus_statistics ORDER BY id", ct);
        var shown = string.Join("; ", corpus.Select(r => $"id {r[0]}: {r[1]} articles, total length {r[2]}"));
        return corpus.Count == 1 && Convert.ToInt64(corpus[0][1], CultureInfo.InvariantCulture) == articles && Convert.ToInt64(corpus[0][2], CultureInfo.InvariantCulture) == length
            ? null
            : CheckResult.Fail($"{when}, corpus_statistics: id 1: {articles} articles, total length {length}", shown.Length == 0 ? "no row" : shown);
    }
}
