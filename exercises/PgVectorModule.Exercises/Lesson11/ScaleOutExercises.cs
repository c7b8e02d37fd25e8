namespace PgVectorModule.Exercises.Lesson11;

/// <summary>
/// Lesson 11's exercises, on one PostgreSQL server: what a Citus coordinator asks of its shards, and the keys and
/// statistics a distributed table needs. Check: <c>scripts/check.sh 11</c>.
/// </summary>
public static class ScaleOutExercises
{
    /// <summary>
    /// 11.1: the search over every tenant, as the coordinator runs it. The documents are split over three shard tables,
    /// <c>documents_s0</c>, <c>documents_s1</c> and <c>documents_s2</c>, each <c>(id bigint PRIMARY KEY, tenant_id int,
    /// embedding vector(8))</c> with an HNSW index for cosine distance. Return the <c>$2</c> documents of all three nearest
    /// to <c>$1</c> by cosine distance, nearest first (ties: the smaller id), columns <c>id</c> and <c>distance</c>: each
    /// shard answers with its own <c>$2</c> nearest through its index, and those rows are merged and cut to <c>$2</c>.
    /// </summary>
    public const string GlobalNearestSql = """
        -- TODO: (SELECT ... FROM documents_s0 ORDER BY ... LIMIT $2) UNION ALL (... documents_s1 ...) UNION ALL (... documents_s2 ...), then ORDER BY ... LIMIT $2 over them
        """;

    /// <summary>
    /// 11.2: chunks for documents distributed by tenant. The check creates the lesson's <c>documents(tenant_id int,
    /// id bigint, title text, PRIMARY KEY (tenant_id, id))</c>. Create <c>chunks(tenant_id int, id bigint, document_id
    /// bigint, body text, embedding vector(8))</c>, every column required, with keys Citus accepts for a table distributed
    /// by <c>tenant_id</c> and co-located with <c>documents</c>: a chunk's id is unique within its tenant (two tenants may
    /// each have a chunk 1), and a chunk belongs to a document of its own tenant and goes when that document is deleted.
    /// </summary>
    public const string ChunksKeysSql = """
        -- TODO: CREATE TABLE chunks (..., PRIMARY KEY (...), FOREIGN KEY (...) REFERENCES documents (...) ...);
        """;

    /// <summary>
    /// 11.3: BM25's statistics made global. From <c>article_terms(tenant_id int, article_id bigint, lexeme text,
    /// term_frequency int, article_length int)</c>, one row per article and lexeme (article ids repeat across tenants: an
    /// article is its tenant_id and article_id), refresh <c>term_statistics(lexeme text PRIMARY KEY, document_frequency
    /// bigint)</c>, how many articles of the whole corpus hold each lexeme, and <c>corpus_statistics(id int PRIMARY KEY
    /// CHECK (id = 1), article_count bigint, total_length bigint)</c>, the corpus' articles and the sum of their lengths.
    /// Both tables may hold an earlier refresh's figures; afterwards they hold the current ones and nothing else.
    /// </summary>
    public const string RefreshGlobalStatisticsSql = """
        -- TODO: BEGIN; TRUNCATE ...; INSERT INTO term_statistics ... SELECT ... GROUP BY ...; INSERT INTO corpus_statistics ... SELECT 1, ...; COMMIT;
        """;
}
