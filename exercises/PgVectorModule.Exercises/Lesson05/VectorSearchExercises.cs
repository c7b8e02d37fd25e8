namespace PgVectorModule.Exercises.Lesson05;

/// <summary>
/// Lesson 05's exercises, over <c>items(id bigint, category text, embedding vector(8))</c>: a few thousand rows with an
/// HNSW index for cosine distance (<c>vector_cosine_ops</c>). Check: <c>scripts/check.sh 05</c>. The check discourages
/// sequential scans (<c>enable_seqscan = off</c>), so the planner uses the index wherever a query allows it, as it would on
/// a table of millions of rows.
/// </summary>
public static class VectorSearchExercises
{
    /// <summary>
    /// 05.1: the <c>$3</c> items of category <c>$2</c> nearest to <c>$1</c> (a vector) by cosine distance, nearest first:
    /// columns <c>id</c>, <c>distance</c>. The plan must use the HNSW index.
    /// </summary>
    public const string NearestInCategorySql = """
        -- TODO: SELECT id, ... AS distance FROM items WHERE ... ORDER BY ... LIMIT ...
        """;

    /// <summary>
    /// 05.2: the items within cosine distance <c>$2</c> of <c>$1</c>, nearest first, at most <c>$3</c> of them:
    /// columns <c>id</c>, <c>distance</c>. The plan must still use the HNSW index.
    /// </summary>
    public const string WithinDistanceSql = """
        -- TODO: a threshold query that keeps the index
        """;

    /// <summary>
    /// 05.3: the ids of the <paramref name="count"/> items nearest to <paramref name="query"/> by cosine distance
    /// (the check asks for 100), read through the HNSW index, nearest first. The session's settings are left as they were.
    /// </summary>
    public static Task<List<long>> CandidatesAsync(NpgsqlDataSource dataSource, Vector query, int count)
    {
        // TODO: in a transaction, SET LOCAL the setting that decides how many candidates HNSW keeps; then the query.
        throw new NotImplementedException("TODO: write CandidatesAsync");
    }

    /// <summary>
    /// 05.4: the ids of the <paramref name="k"/> items of <paramref name="category"/> (a rare one: about 1 row in 50)
    /// nearest to <paramref name="query"/>, nearest first, all <paramref name="k"/> of them, through the HNSW index.
    /// </summary>
    public static Task<List<long>> RareCategoryAsync(NpgsqlDataSource dataSource, Vector query, string category, int k)
    {
        // TODO: pgvector 0.8's iterative scan, in a transaction, in an order that stays exact.
        throw new NotImplementedException("TODO: write RareCategoryAsync");
    }
}
