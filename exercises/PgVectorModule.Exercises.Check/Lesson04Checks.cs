using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Check;

/// <summary>Lesson 04: the vector table, its HNSW index in SQL and by migration, and the binary COPY.</summary>
internal static class Lesson04Checks
{
    private const string Type = "Lesson04.PgvectorSetupExercises";

    public static IEnumerable<Exercise> All() =>
    [
        Exercise.Sql("04.1", "A vector column of a fixed dimension", "the vector-model and create-table steps (the model, the table)",
            "Give the column its dimension: embedding vector(8) NOT NULL. A bare 'vector' takes vectors of any length, and an index needs one length.",
            Type, "CreateItemsTableSql", CreateTableAsync),
        Exercise.Sql("04.2", "An HNSW index for cosine distance", "the index-migration step (indexes)",
            "CREATE INDEX ... ON items USING hnsw (embedding vector_cosine_ops): the operator class decides which distance (<=>, <->, <#>) the index serves.",
            Type, "CosineIndexSql", CosineIndexAsync),
        Exercise.Method<Func<NpgsqlDataSource, IReadOnlyList<Item>, Task>>("04.3", "A bulk load with binary COPY", "the binary-copy step (the COPY loop)",
            "await using var writer = await connection.BeginBinaryImportAsync(\"COPY items (id, title, embedding) FROM STDIN (FORMAT BINARY)\"); then per item StartRowAsync and three WriteAsync; then CompleteAsync (without it nothing is kept).",
            Type, "LoadItemsAsync", LoadAsync),
        Exercise.Method<Action<Microsoft.EntityFrameworkCore.Migrations.MigrationBuilder>>("04.4", "The HNSW index by migration", "the index-migration step (indexes by migration)",
            "migrationBuilder.CreateIndex(name: \"ix_items_embedding_hnsw\", table: \"items\", column: \"embedding\") with .Annotation(\"Npgsql:IndexMethod\", \"hnsw\"), .Annotation(\"Npgsql:IndexOperators\", new[] { \"vector_cosine_ops\" }) and one .Annotation(\"Npgsql:StorageParameter:m\", 16) per parameter.",
            Type, "AddHnswIndexUp", MigrationIndexAsync),
    ];

    private static async Task<CheckResult> CreateTableAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await room.ExecuteAsync(sql, ct);
        if (await room.ScalarAsync<string>("SELECT to_regclass('items')::text", ct) is null)
        {
            return CheckResult.Fail("a table named items", "no table items after the statement ran");
        }

        var columns = await room.RowsAsync(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", ct);
        var shown = string.Join(", ", columns.Select(c => $"{c[0]} {c[1]}{((bool)c[2]! ? " not null" : "")}"));
        var embedding = columns.FirstOrDefault(c => (string)c[0]! == "embedding");
        if (embedding is null || (string)embedding[1]! != "vector(8)" || !(bool)embedding[2]!)
        {
            return CheckResult.Fail("embedding vector(8) not null", shown);
        }

        var primaryKey = await room.ScalarAsync<string>(
            "SELECT string_agg(a.attname::text, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) WHERE i.indrelid = 'items'::regclass AND i.indisprimary", ct);
        if (primaryKey != "id")
        {
            return CheckResult.Fail("id as the primary key", primaryKey is null ? "no primary key" : $"primary key ({primaryKey})");
        }

        try
        {
            await room.ExecuteAsync("INSERT INTO items (id, title, embedding) VALUES (1, 'seven', '[1,2,3,4,5,6,7]')", ct);
            return CheckResult.Fail("a 7-dimension vector refused", "the 7-dimension vector was stored");
        }
        catch (PostgresException)
        {
            return CheckResult.Pass("items (id bigint primary key, title text not null, embedding vector(8) not null)");
        }
    }

    private static async Task<CheckResult> CosineIndexAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 2000, i => "any", hnsw: false, ct);
        await room.ExecuteAsync(sql, ct);
        var indexes = await room.RowsAsync("""
            SELECT c.relname::text, am.amname::text, opc.opcname::text
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
                 JOIN pg_opclass opc ON opc.oid = i.indclass[0]
            WHERE i.indrelid = 'items'::regclass AND NOT i.indisprimary
            """, ct);
        var shown = indexes.Count == 0 ? "no index on items besides the primary key" : string.Join(", ", indexes.Select(r => $"{r[0]} using {r[1]} ({r[2]})"));
        var index = indexes.FirstOrDefault(r => (string)r[1]! == "hnsw" && (string)r[2]! == "vector_cosine_ops");
        if (index is null)
        {
            return CheckResult.Fail("an index using hnsw (vector_cosine_ops)", shown);
        }

        var plan = await room.PlanAsync("SELECT id FROM items ORDER BY embedding <=> $1 LIMIT 5", ct, CheckData.Query(7));
        return plan.Contains($"Index Scan using {index[0]}", StringComparison.Ordinal)
            ? CheckResult.Pass($"{index[0]} using hnsw (vector_cosine_ops), used by ORDER BY embedding <=> $1 LIMIT 5")
            : CheckResult.Fail($"ORDER BY embedding <=> $1 LIMIT 5 to use {index[0]}", FirstLines(plan));
    }

    private static async Task<CheckResult> LoadAsync(CheckRoom room, Func<NpgsqlDataSource, IReadOnlyList<Item>, Task> load, CancellationToken ct)
    {
        // A statement-level trigger writes down the text of every statement that adds rows: COPY fires it once.
        await room.ExecuteAsync($"""
            CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, embedding vector(8) NOT NULL);
            CREATE TABLE load_log (statement text);
            CREATE FUNCTION log_load() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO {room.Schema}.load_log VALUES (current_query()); RETURN NULL; END $$;
            CREATE TRIGGER items_load AFTER INSERT ON items FOR EACH STATEMENT EXECUTE FUNCTION {room.Schema}.log_load();
            """, ct);
        var vectors = CheckData.Vectors(500, seed: 4);
        var items = vectors.Select((v, i) => new Item(i + 1, $"item {i + 1}", v)).ToList();
        await load(room.DataSource(), items);

        var rows = await room.ScalarAsync<long>("SELECT count(*) FROM items", ct);
        var sample = await room.RowsAsync("SELECT title, embedding::text FROM items WHERE id = 250", ct);
        var expectedSample = new Vector(items[249].Embedding).ToString();
        if (rows != items.Count || sample.Count != 1 || (string)sample[0][0]! != "item 250" ||
            (string)sample[0][1]! != await room.ScalarAsync<string>("SELECT $1::vector(8)::text", ct, new Vector(items[249].Embedding)))
        {
            return CheckResult.Fail($"{items.Count} rows, item 250 as given ({expectedSample})",
                $"{rows} rows" + (sample.Count == 1 ? $", item 250 = ({sample[0][0]}, {sample[0][1]})" : ", no item 250"));
        }

        var statements = (await room.RowsAsync("SELECT statement FROM load_log", ct)).Select(r => (string)r[0]!).ToList();
        if (statements.Count != 1)
        {
            return CheckResult.Fail("one COPY statement", statements.Count == 0 ? "no statement added rows" : $"{statements.Count} statements, the first: {Short(statements[0])}");
        }

        var statement = statements[0];
        if (!statement.TrimStart().StartsWith("COPY", StringComparison.OrdinalIgnoreCase))
        {
            return CheckResult.Fail("COPY items ... FROM STDIN (FORMAT BINARY)", Short(statement));
        }

        return statement.Contains("BINARY", StringComparison.OrdinalIgnoreCase)
            ? CheckResult.Pass($"{items.Count} rows in one binary COPY")
            : CheckResult.Fail("COPY ... (FORMAT BINARY)", $"{Short(statement)} (a text COPY: every value is formatted and parsed again)");
    }

    private static async Task<CheckResult> MigrationIndexAsync(CheckRoom room, Action<Microsoft.EntityFrameworkCore.Migrations.MigrationBuilder> up, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 200, i => "any", hnsw: false, ct);
        var sql = await Migrations.ApplyAsync(room, up, ct);
        var index = await room.RowsAsync("""
            SELECT am.amname::text, opc.opcname::text, coalesce(array_to_string(c.reloptions, ','), '')
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
                 JOIN pg_opclass opc ON opc.oid = i.indclass[0]
            WHERE i.indrelid = 'items'::regclass AND c.relname = 'ix_items_embedding_hnsw'
            """, ct);
        if (index.Count == 0)
        {
            return CheckResult.Fail("an index ix_items_embedding_hnsw on items", $"the migration sent: {Short(sql)}");
        }

        var (method, operators, options) = ((string)index[0][0]!, (string)index[0][1]!, (string)index[0][2]!);
        var got = $"using {method} ({operators}) with ({options})";
        var parameters = options.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        return method == "hnsw" && operators == "vector_cosine_ops" && parameters.SetEquals(["m=16", "ef_construction=64"])
            ? CheckResult.Pass("ix_items_embedding_hnsw using hnsw (vector_cosine_ops) with (m=16, ef_construction=64)")
            : CheckResult.Fail("using hnsw (vector_cosine_ops) with (m=16,ef_construction=64)", got);
    }

    internal static string Short(string text, int most = 160)
    {
        var oneLine = string.Join(' ', (text ?? "").Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));
        return oneLine.Length <= most ? oneLine : oneLine[..most] + "...";
    }

    /// <summary>A plan's first lines, on one line: enough to see which scan it chose.</summary>
    internal static string FirstLines(string plan) =>
        "plan: " + string.Join(" | ", plan.Split('\n').Take(4).Select(l => l.Trim()));
}
