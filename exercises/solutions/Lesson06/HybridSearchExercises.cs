namespace PgVectorModule.Exercises.Lesson06;

/// <summary>Spoiler: reference solutions to lesson 06's exercises.</summary>
public static class HybridSearchExercises
{
    public static async Task<List<long>> SearchBoxAsync(NpgsqlDataSource dataSource, string userText)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT id
            FROM docs, websearch_to_tsquery('english', $1) AS query
            WHERE tsv @@ query
            ORDER BY ts_rank_cd(tsv, query) DESC, id
            LIMIT 10
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = userText });
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }

    public const string RrfSql = """
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

    public const string Bm25TermSql = """
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

    public const string SearchColumnSql = """
        ALTER TABLE docs ADD COLUMN tsv tsvector
            GENERATED ALWAYS AS (to_tsvector('english', coalesce(title, '') || ' ' || body)) STORED;
        CREATE INDEX docs_tsv_gin ON docs USING gin (tsv);
        """;
}
