using Microsoft.EntityFrameworkCore.Migrations;
using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Tests.Exercises;

/// <summary>Answers a learner could plausibly write that are wrong: each must fail its exercise's check.</summary>
internal static class WrongAnswers
{
    public static IReadOnlyDictionary<string, (string Id, object Answer)> All { get; } = new Dictionary<string, (string, object)>
    {
        ["01.1 filtered in memory after ToListAsync"] = ("01.1", (Func<ExerciseContext, string, int, Task<List<string>>>)(async (db, category, count) =>
            (await db.Notes.ToListAsync()).Where(n => n.Category == category).OrderByDescending(n => n.CreatedAt).Take(count).Select(n => n.Title).ToList())),
        ["01.1 ordered by id, not by date"] = ("01.1", (Func<ExerciseContext, string, int, Task<List<string>>>)((db, category, count) =>
            db.Notes.Where(n => n.Category == category).OrderByDescending(n => n.Id).Take(count).Select(n => n.Title).ToListAsync())),
        ["01.2 one SaveChanges per note"] = ("01.2", (Func<ExerciseContext, string, IReadOnlyList<string>, Task>)(async (db, category, titles) =>
        {
            foreach (var title in titles)
            {
                db.Notes.Add(new Note { Title = title, Category = category, CreatedAt = DateTime.UtcNow });
                await db.SaveChangesAsync();
            }
        })),
        ["02.1 DO NOTHING keeps the old price"] = ("02.1", "INSERT INTO products (sku, name, category, price) VALUES ($1, $2, 'new', $3) ON CONFLICT (sku) DO NOTHING"),
        ["02.1 a plain INSERT"] = ("02.1", "INSERT INTO products (sku, name, category, price) VALUES ($1, $2, 'new', $3)"),
        ["02.1 an upsert that overwrites the category"] = ("02.1", "INSERT INTO products (sku, name, category, price) VALUES ($1, $2, 'new', $3) ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price, category = EXCLUDED.category"),
        ["02.2 load, change, SaveChanges"] = ("02.2", (Func<ExerciseContext, string, decimal, Task<int>>)(async (db, category, percent) =>
        {
            foreach (var product in await db.Products.Where(p => p.Category == category).ToListAsync())
            {
                product.Price *= 1 + percent / 100;
            }

            return await db.SaveChangesAsync();
        })),
        ["03.1 a NOT NULL column with no backfill"] = ("03.1", (Action<MigrationBuilder>)(mb => mb.AddColumn<string>(name: "slug", table: "notes", type: "text", nullable: false, defaultValue: ""))),
        ["03.1 backfilled but left nullable"] = ("03.1", (Action<MigrationBuilder>)(mb =>
        {
            mb.AddColumn<string>(name: "slug", table: "notes", type: "text", nullable: true);
            mb.Sql("UPDATE notes SET slug = replace(lower(title), ' ', '-')");
        })),
        ["03.2 a Down that does nothing"] = ("03.2", (Action<MigrationBuilder>)(_ => { })),
        ["03.2 a Down that drops the table"] = ("03.2", (Action<MigrationBuilder>)(mb => mb.DropTable("notes"))),
        ["04.1 a vector column without its dimension"] = ("04.1", "CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, embedding vector NOT NULL)"),
        ["04.1 a nullable embedding"] = ("04.1", "CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, embedding vector(8))"),
        ["04.2 the L2 operator class"] = ("04.2", "CREATE INDEX ON items USING hnsw (embedding vector_l2_ops)"),
        ["04.2 IVFFlat instead of HNSW"] = ("04.2", "CREATE INDEX ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 10)"),
        ["04.3 one INSERT per row"] = ("04.3", (Func<NpgsqlDataSource, IReadOnlyList<Item>, Task>)InsertPerRowAsync),
        ["04.3 a text COPY"] = ("04.3", (Func<NpgsqlDataSource, IReadOnlyList<Item>, Task>)TextCopyAsync),
        ["04.4 no operator class (L2 by default)"] = ("04.4", (Action<MigrationBuilder>)(mb => mb.CreateIndex("ix_items_embedding_hnsw", "items", "embedding")
            .Annotation("Npgsql:IndexMethod", "hnsw").Annotation("Npgsql:StorageParameter:m", 16).Annotation("Npgsql:StorageParameter:ef_construction", 64))),
        ["05.1 the L2 operator where cosine was asked"] = ("05.1", "SELECT id, embedding <-> $1 AS distance FROM items WHERE category = $2 ORDER BY embedding <-> $1 LIMIT $3"),
        ["05.1 a missing LIMIT"] = ("05.1", "SELECT id, embedding <=> $1 AS distance FROM items WHERE category = $2 ORDER BY embedding <=> $1"),
        ["05.1 the inner product where cosine was asked"] = ("05.1", "SELECT id, embedding <#> $1 AS distance FROM items WHERE category = $2 ORDER BY embedding <#> $1 LIMIT $3"),
        ["05.2 a WHERE with no ORDER BY"] = ("05.2", "SELECT id, embedding <=> $1 AS distance FROM items WHERE embedding <=> $1 < $2 LIMIT $3"),
        ["05.2 a threshold in a MATERIALIZED CTE"] = ("05.2", """
            WITH d AS MATERIALIZED (SELECT id, embedding <=> $1 AS distance FROM items)
            SELECT id, distance FROM d WHERE distance < $2 ORDER BY distance LIMIT $3
            """),
        ["05.3 ef_search left at 40 for 100 candidates"] = ("05.3", (Func<NpgsqlDataSource, Vector, int, Task<List<long>>>)((ds, q, n) => IdsAsync(ds, null, "SELECT id FROM items ORDER BY embedding <=> $1 LIMIT $2", q, n))),
        ["05.3 an exact scan instead of the index"] = ("05.3", (Func<NpgsqlDataSource, Vector, int, Task<List<long>>>)((ds, q, n) =>
            IdsAsync(ds, null, "SELECT id FROM items ORDER BY (embedding <=> $1) + 0 LIMIT $2", q, n))),
        ["05.4 no iterative scan"] = ("05.4", (Func<NpgsqlDataSource, Vector, string, int, Task<List<long>>>)((ds, q, c, k) =>
            IdsAsync(ds, null, "SELECT id FROM items WHERE category = $3 ORDER BY embedding <=> $1 LIMIT $2", q, k, c))),
        ["06.1 string concatenation"] = ("06.1", (Func<NpgsqlDataSource, string, Task<List<long>>>)((ds, text) => IdsAsync(ds, null,
            "SELECT id FROM docs, websearch_to_tsquery('english', '" + text.Replace("'", "''", StringComparison.Ordinal) + "') AS query WHERE tsv @@ query ORDER BY ts_rank_cd(tsv, query) DESC, id LIMIT 10"))),
        ["06.1 to_tsquery with a parameter"] = ("06.1", (Func<NpgsqlDataSource, string, Task<List<long>>>)((ds, text) => IdsAsync(ds, null,
            "SELECT id FROM docs, to_tsquery('english', $1) AS query WHERE tsv @@ query ORDER BY ts_rank_cd(tsv, query) DESC, id LIMIT 10", text))),
        ["06.2 RRF with the wrong k"] = ("06.2", Solution06Rrf.Replace("60 +", "10 +", StringComparison.Ordinal)),
        ["06.2 RRF that keeps only the keyword leg's documents"] = ("06.2", Solution06Rrf.Replace("FULL JOIN", "LEFT JOIN", StringComparison.Ordinal)),
        ["06.3 idf without the 1 +"] = ("06.3", Solution06Bm25.Replace("ln(1 + ", "ln(", StringComparison.Ordinal)),
        ["06.3 no length normalisation"] = ("06.3", Solution06Bm25.Replace("(1 - 0.75 + 0.75 * d.length / c.avgdl)", "1", StringComparison.Ordinal)),
        ["06.4 a NULL title makes the whole text NULL"] = ("06.4", """
            ALTER TABLE docs ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || body)) STORED;
            CREATE INDEX ON docs USING gin (tsv);
            """),
        ["06.4 a column filled once"] = ("06.4", """
            ALTER TABLE docs ADD COLUMN tsv tsvector;
            UPDATE docs SET tsv = to_tsvector('english', coalesce(title, '') || ' ' || body);
            CREATE INDEX ON docs USING gin (tsv);
            """),
        ["06.4 no GIN index"] = ("06.4", """
            ALTER TABLE docs ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(title, '') || ' ' || body)) STORED;
            """),
        ["07.1 the column itself turned into halfvec"] = ("07.1", """
            ALTER TABLE items ALTER COLUMN embedding TYPE halfvec(8);
            CREATE INDEX ON items USING hnsw (embedding halfvec_cosine_ops)
            """),
        ["07.1 the L2 operator class"] = ("07.1", "CREATE INDEX ON items USING hnsw ((embedding::halfvec(8)) halfvec_l2_ops)"),
        ["07.2 the full-precision distance (no index)"] = ("07.2", "SELECT id FROM items ORDER BY embedding <=> $1 LIMIT $2"),
        ["07.3 GRANT ALL"] = ("07.3", (Func<string, string, string>)((schema, role) => $"GRANT USAGE ON SCHEMA {schema} TO {role}; GRANT ALL ON {schema}.items TO {role};")),
        ["07.3 SELECT on every table"] = ("07.3", (Func<string, string, string>)((schema, role) => $"GRANT USAGE ON SCHEMA {schema} TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};")),
        ["08.1 positions compared as text"] = ("08.1", (Func<NpgsqlTypes.NpgsqlLogSequenceNumber?, NpgsqlTypes.NpgsqlLogSequenceNumber, Route>)((write, replayed) =>
            write is { } w && string.CompareOrdinal(replayed.ToString(), w.ToString()) < 0 ? Route.Primary : Route.Standby)),
        ["08.1 always the standby"] = ("08.1", (Func<NpgsqlTypes.NpgsqlLogSequenceNumber?, NpgsqlTypes.NpgsqlLogSequenceNumber, Route>)((_, _) => Route.Standby)),
        ["08.2 a plain SET search_path"] = ("08.2", (Func<NpgsqlDataSource, string, Task<long>>)(async (ds, schema) =>
        {
            await using var connection = await ds.OpenConnectionAsync();
            await using (var set = new NpgsqlCommand($"SET search_path = {schema}", connection))
            {
                await set.ExecuteNonQueryAsync();
            }

            await using var count = new NpgsqlCommand("SELECT count(*) FROM notes", connection);
            return (long)(await count.ExecuteScalarAsync())!;
        })),
        ["09.1 a policy without FORCE ROW LEVEL SECURITY"] = ("09.1", """
            ALTER TABLE tenant_docs ENABLE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON tenant_docs USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::int);
            """),
        ["09.1 current_setting that fails when no tenant is set"] = ("09.1", """
            ALTER TABLE tenant_docs ENABLE ROW LEVEL SECURITY;
            ALTER TABLE tenant_docs FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON tenant_docs USING (tenant_id = current_setting('app.tenant_id')::int);
            """),
        ["09.2 the tenant set for the whole session"] = ("09.2", (Func<NpgsqlDataSource, int, Vector, int, Task<List<long>>>)(async (ds, tenant, query, k) =>
        {
            await using (var set = ds.CreateCommand($"SELECT set_config('app.tenant_id', '{tenant}', false)"))
            {
                await set.ExecuteNonQueryAsync();
            }

            return await IdsAsync(ds, null, "SELECT id FROM tenant_docs ORDER BY embedding <=> $1 LIMIT $2", query, k);
        })),
        ["09.2 a WHERE on tenant_id, no tenant set"] = ("09.2", (Func<NpgsqlDataSource, int, Vector, int, Task<List<long>>>)((ds, tenant, query, k) =>
            IdsAsync(ds, null, "SELECT id FROM tenant_docs WHERE tenant_id = $3 ORDER BY embedding <=> $1 LIMIT $2", query, k, tenant))),
        ["10.1 a document whose chunks block its deletion"] = ("10.1", Solution10Chunks.Replace(" ON DELETE CASCADE", "", StringComparison.Ordinal)),
        ["10.1 two chunks at one position"] = ("10.1", Solution10Chunks.Replace(",\n    UNIQUE (doc_id, position)", "", StringComparison.Ordinal)),
        ["10.1 the L2 operator class"] = ("10.1", Solution10Chunks.Replace("vector_cosine_ops", "vector_l2_ops", StringComparison.Ordinal)),
        ["10.2 every chunk, a document several times"] = ("10.2", "SELECT doc_id, id AS chunk_id, embedding <=> $1 AS distance FROM chunks ORDER BY distance, doc_id LIMIT $2"),
        ["10.2 the first chunk of each document, not its best"] = ("10.2", """
            SELECT doc_id, chunk_id, distance FROM (
                SELECT DISTINCT ON (doc_id) doc_id, id AS chunk_id, embedding <=> $1 AS distance FROM chunks ORDER BY doc_id, position
            ) first ORDER BY distance, doc_id LIMIT $2
            """),
        ["11.1 only the outer LIMIT"] = ("11.1", """
            SELECT id, distance FROM (
                SELECT id, embedding <=> $1 AS distance FROM documents_s0
                UNION ALL SELECT id, embedding <=> $1 FROM documents_s1
                UNION ALL SELECT id, embedding <=> $1 FROM documents_s2
            ) shards ORDER BY distance, id LIMIT $2
            """),
        ["11.1 one outer ORDER BY the planner merges, no LIMIT per shard"] = ("11.1", """
            SELECT id, distance FROM (
                SELECT id, embedding, embedding <=> $1 AS distance FROM documents_s0
                UNION ALL SELECT id, embedding, embedding <=> $1 FROM documents_s1
                UNION ALL SELECT id, embedding, embedding <=> $1 FROM documents_s2
            ) shards ORDER BY embedding <=> $1 LIMIT $2
            """),
        ["11.1 a LIMIT per shard with no ORDER BY"] = ("11.1", Solution11Nearest.Replace(" ORDER BY embedding <=> $1 LIMIT $2)", " LIMIT $2)", StringComparison.Ordinal)),
        ["11.1 each shard's nearest one"] = ("11.1", Solution11Nearest.Replace("embedding <=> $1 LIMIT $2)", "embedding <=> $1 LIMIT 1)", StringComparison.Ordinal)),
        ["11.1 the L2 operator where cosine was asked"] = ("11.1", Solution11Nearest.Replace("<=>", "<->", StringComparison.Ordinal)),
        ["11.1 the shards' rows not sorted again"] = ("11.1", Solution11Nearest.Replace("ORDER BY distance, id\n", "", StringComparison.Ordinal)),
        ["11.2 a primary key on id alone"] = ("11.2", Solution11Chunks.Replace("PRIMARY KEY (tenant_id, id)", "PRIMARY KEY (id)", StringComparison.Ordinal)),
        ["11.2 a foreign key on document_id alone"] = ("11.2", Solution11Chunks.Replace("FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id)", "FOREIGN KEY (document_id) REFERENCES documents (id)", StringComparison.Ordinal)),
        ["11.2 the foreign key's columns swapped"] = ("11.2", Solution11Chunks.Replace("FOREIGN KEY (tenant_id, document_id)", "FOREIGN KEY (document_id, tenant_id)", StringComparison.Ordinal)),
        ["11.2 a document whose chunks block its deletion"] = ("11.2", Solution11Chunks.Replace(" ON DELETE CASCADE", "", StringComparison.Ordinal)),
        ["11.2 a chunk id unique across tenants too"] = ("11.2", Solution11Chunks.Replace("PRIMARY KEY (tenant_id, id),", "PRIMARY KEY (tenant_id, id),\n    UNIQUE (id),", StringComparison.Ordinal)),
        ["11.3 an upsert that keeps lexemes gone from the corpus"] = ("11.3", """
            INSERT INTO term_statistics (lexeme, document_frequency)
            SELECT lexeme, count(*) FROM article_terms GROUP BY lexeme
            ON CONFLICT (lexeme) DO UPDATE SET document_frequency = EXCLUDED.document_frequency;
            INSERT INTO corpus_statistics (id, article_count, total_length)
            SELECT 1, count(DISTINCT (tenant_id, article_id)), sum(term_frequency) FROM article_terms
            ON CONFLICT (id) DO UPDATE SET article_count = EXCLUDED.article_count, total_length = EXCLUDED.total_length;
            """),
        ["11.3 articles counted by id alone"] = ("11.3", Solution11Statistics.Replace("count(DISTINCT (tenant_id, article_id))", "count(DISTINCT article_id)", StringComparison.Ordinal)),
        ["11.3 each article's length once per lexeme"] = ("11.3", Solution11Statistics.Replace("sum(term_frequency) FROM", "sum(article_length) FROM", StringComparison.Ordinal)),
        ["11.3 term frequencies summed for the document frequency"] = ("11.3", Solution11Statistics.Replace("SELECT lexeme, count(*)", "SELECT lexeme, sum(term_frequency)", StringComparison.Ordinal)),
    };

    private const string Solution10Chunks = """
        CREATE TABLE chunks (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            doc_id bigint NOT NULL REFERENCES docs (id) ON DELETE CASCADE,
            position int NOT NULL,
            body text NOT NULL,
            token_count int NOT NULL,
            embedding vector(8) NOT NULL,
            UNIQUE (doc_id, position)
        );
        CREATE INDEX ON chunks USING hnsw (embedding vector_cosine_ops);
        """;

    private const string Solution11Nearest = """
        SELECT id, distance
        FROM (
            (SELECT id, embedding <=> $1 AS distance FROM documents_s0 ORDER BY embedding <=> $1 LIMIT $2)
            UNION ALL
            (SELECT id, embedding <=> $1 AS distance FROM documents_s1 ORDER BY embedding <=> $1 LIMIT $2)
            UNION ALL
            (SELECT id, embedding <=> $1 AS distance FROM documents_s2 ORDER BY embedding <=> $1 LIMIT $2)
        ) shards
        ORDER BY distance, id
        LIMIT $2
        """;

    private const string Solution11Chunks = """
        CREATE TABLE chunks (
            tenant_id int NOT NULL,
            id bigint NOT NULL,
            document_id bigint NOT NULL,
            body text NOT NULL,
            embedding vector(8) NOT NULL,
            PRIMARY KEY (tenant_id, id),
            FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
        );
        """;

    private const string Solution11Statistics = """
        BEGIN;
        TRUNCATE term_statistics, corpus_statistics;
        INSERT INTO term_statistics (lexeme, document_frequency)
        SELECT lexeme, count(*) FROM article_terms GROUP BY lexeme;
        INSERT INTO corpus_statistics (id, article_count, total_length)
        SELECT 1, count(DISTINCT (tenant_id, article_id)), sum(term_frequency) FROM article_terms;
        COMMIT;
        """;

    /// <summary>What each wrong answer's failure says: it fails for its own mistake.</summary>
    public static IReadOnlyDictionary<string, string> Says { get; } = new Dictionary<string, string>
    {
        ["01.1 filtered in memory after ToListAsync"] = "one SELECT with WHERE",
        ["01.1 ordered by id, not by date"] = "got: [",
        ["01.2 one SaveChanges per note"] = "4 calls of SaveChanges",
        ["02.1 DO NOTHING keeps the old price"] = "got: A-1 Old name tools 10",
        ["02.1 a plain INSERT"] = "PostgreSQL error 23505",
        ["02.1 an upsert that overwrites the category"] = "got: A-1 New name new",
        ["02.2 load, change, SaveChanges"] = "one UPDATE and nothing else",
        ["03.1 a NOT NULL column with no backfill"] = "got: '', '', ''",
        ["03.1 backfilled but left nullable"] = "(nullable)",
        ["03.2 a Down that does nothing"] = "created_at, slug",
        ["03.2 a Down that drops the table"] = "the table notes is gone",
        ["04.1 a vector column without its dimension"] = "embedding vector not null",
        ["04.1 a nullable embedding"] = "expected: embedding vector(8) not null",
        ["04.2 the L2 operator class"] = "vector_l2_ops",
        ["04.2 IVFFlat instead of HNSW"] = "using ivfflat",
        ["04.3 one INSERT per row"] = "500 statements",
        ["04.3 a text COPY"] = "a text COPY",
        ["04.4 no operator class (L2 by default)"] = "PostgreSQL error 42704",
        ["05.1 the L2 operator where cosine was asked"] = "the nearest by cosine distance",
        ["05.1 a missing LIMIT"] = "expected: 10 rows",
        ["05.1 the inner product where cosine was asked"] = "the nearest by cosine distance",
        ["05.2 a WHERE with no ORDER BY"] = "items within",
        ["05.2 a threshold in a MATERIALIZED CTE"] = "Index Scan using items_embedding_hnsw",
        ["05.3 ef_search left at 40 for 100 candidates"] = "got: 40 ids",
        ["05.3 an exact scan instead of the index"] = "no scan of the index",
        ["05.4 no iterative scan"] = "expected: 10 rows",
        ["06.1 string concatenation"] = "sent as a parameter",
        ["06.1 to_tsquery with a parameter"] = "PostgresException",
        ["06.2 RRF with the wrong k"] = "22: 0.016393",
        ["06.2 RRF that keeps only the keyword leg's documents"] = "22: 0.016393",
        ["06.3 idf without the 1 +"] = "expected: 1: 1.4081",
        ["06.3 no length normalisation"] = "expected: 1: 1.4081",
        ["06.4 a NULL title makes the whole text NULL"] = "a row whose title is NULL",
        ["06.4 a column filled once"] = "a row inserted after the statement",
        ["06.4 no GIN index"] = "a GIN index on tsv",
        ["07.1 the column itself turned into halfvec"] = "still vector(8)",
        ["07.1 the L2 operator class"] = "halfvec_l2_ops",
        ["07.2 the full-precision distance (no index)"] = "Index Scan using items_embedding_halfvec",
        ["07.3 GRANT ALL"] = "refused: INSERT",
        ["07.3 SELECT on every table"] = "refused: SELECT count(*) FROM secrets",
        ["08.1 positions compared as text"] = "0/10000000",
        ["08.1 always the standby"] = "one byte behind",
        ["08.2 a plain SET search_path"] = "left changed for the next client",
        ["09.1 a policy without FORCE ROW LEVEL SECURITY"] = "sees no row with no tenant set",
        ["09.1 current_setting that fails when no tenant is set"] = "no rows and no error",
        ["09.2 the tenant set for the whole session"] = "stays on it",
        ["09.2 a WHERE on tenant_id, no tenant set"] = "got: []",
        ["10.1 a document whose chunks block its deletion"] = "its chunks with it (ON DELETE CASCADE) got: the DELETE was refused (23503)",
        ["10.1 two chunks at one position"] = "a second chunk at position 1 of document 1 refused",
        ["10.1 the L2 operator class"] = "an HNSW index with vector_cosine_ops",
        ["10.2 every chunk, a document several times"] = "expected: doc ",
        ["10.2 the first chunk of each document, not its best"] = "expected: doc ",
        ["11.1 only the outer LIMIT"] = "expected: each shard's own $2 nearest from its HNSW index",
        ["11.1 one outer ORDER BY the planner merges, no LIMIT per shard"] = "feeds a Merge Append with no LIMIT of its own",
        ["11.1 a LIMIT per shard with no ORDER BY"] = "the 10 nearest of all shards by cosine distance",
        ["11.1 each shard's nearest one"] = "the 10 nearest of all shards by cosine distance",
        ["11.1 the L2 operator where cosine was asked"] = "the 10 nearest of all shards by cosine distance",
        ["11.1 the shards' rows not sorted again"] = "the 10 nearest of all shards by cosine distance",
        ["11.2 a primary key on id alone"] = "chunk 1 of tenant 2, of its document 10, accepted (tenant 1 has a chunk 1 too: ids are unique per tenant) got: refused (23505)",
        ["11.2 a foreign key on document_id alone"] = "PostgreSQL error 42830",
        ["11.2 the foreign key's columns swapped"] = "chunk 1 of tenant 1, of its document 10, accepted got: refused (23503)",
        ["11.2 a document whose chunks block its deletion"] = "its chunks with it (ON DELETE CASCADE) got: the DELETE was refused (23503)",
        ["11.2 a chunk id unique across tenants too"] = "got: refused (23505)",
        ["11.3 an upsert that keeps lexemes gone from the corpus"] = "no 'stale' got: 'stale' 99",
        ["11.3 articles counted by id alone"] = "corpus_statistics: id 1: 5 articles",
        ["11.3 each article's length once per lexeme"] = "corpus_statistics: id 1: 5 articles",
        ["11.3 term frequencies summed for the document frequency"] = "term_statistics as the corpus has it: 'row' 2",
    };

    private const string Solution06Rrf = """
        WITH keyword AS (
            SELECT id, row_number() OVER (ORDER BY ts_rank_cd(tsv, query) DESC, id) AS rank
            FROM docs, websearch_to_tsquery('english', $1) AS query
            WHERE tsv @@ query
            ORDER BY rank
            LIMIT 20
        ), semantic AS (
            SELECT id, row_number() OVER (ORDER BY embedding <=> $2, id) AS rank
            FROM docs
            ORDER BY rank
            LIMIT 20
        )
        SELECT coalesce(k.id, s.id) AS id,
               coalesce(1.0 / (60 + k.rank), 0.0) + coalesce(1.0 / (60 + s.rank), 0.0) AS score
        FROM keyword k FULL JOIN semantic s ON s.id = k.id
        ORDER BY score DESC, id
        LIMIT $3
        """;

    private const string Solution06Bm25 = """
        WITH corpus AS (
            SELECT count(*)::float8 AS n_docs, avg(length)::float8 AS avgdl FROM doc_lengths
        ), term AS (
            SELECT count(*)::float8 AS n_term FROM postings WHERE term = $1
        )
        SELECT p.doc_id,
               ln(1 + (c.n_docs - t.n_term + 0.5) / (t.n_term + 0.5))
               * p.tf * (1.2 + 1) / (p.tf + 1.2 * (1 - 0.75 + 0.75 * d.length / c.avgdl)) AS score
        FROM postings p
        JOIN doc_lengths d ON d.doc_id = p.doc_id
        CROSS JOIN corpus c CROSS JOIN term t
        WHERE p.term = $1
        ORDER BY score DESC, p.doc_id
        """;

    private static async Task InsertPerRowAsync(NpgsqlDataSource dataSource, IReadOnlyList<Item> items)
    {
        foreach (var item in items)
        {
            await using var command = dataSource.CreateCommand("INSERT INTO items (id, title, embedding) VALUES ($1, $2, $3)");
            command.Parameters.Add(new NpgsqlParameter { Value = item.Id });
            command.Parameters.Add(new NpgsqlParameter { Value = item.Title });
            command.Parameters.Add(new NpgsqlParameter { Value = new Vector(item.Embedding) });
            await command.ExecuteNonQueryAsync();
        }
    }

    private static async Task TextCopyAsync(NpgsqlDataSource dataSource, IReadOnlyList<Item> items)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var writer = await connection.BeginTextImportAsync("COPY items (id, title, embedding) FROM STDIN");
        foreach (var item in items)
        {
            await writer.WriteLineAsync($"{item.Id}\t{item.Title}\t{new Vector(item.Embedding)}");
        }
    }

    /// <summary>The ids a query returns, after <paramref name="setting"/> (a SET LOCAL) in the same transaction when given.</summary>
    internal static async Task<List<long>> IdsAsync(NpgsqlDataSource dataSource, string? setting, string sql, params object[] values)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        if (setting is not null)
        {
            await using var set = new NpgsqlCommand(setting, connection, transaction);
            await set.ExecuteNonQueryAsync();
        }

        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        var ids = new List<long>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetInt64(0));
            }
        }

        await transaction.CommitAsync();
        return ids;
    }
}
