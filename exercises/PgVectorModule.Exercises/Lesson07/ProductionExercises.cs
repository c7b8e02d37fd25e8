namespace PgVectorModule.Exercises.Lesson07;

/// <summary>
/// Lesson 07's exercises: half-precision vectors through an expression index, and a role that may only read.
/// Over <c>items(id bigint, category text, embedding vector(8))</c>. Check: <c>scripts/check.sh 07</c>.
/// </summary>
public static class ProductionExercises
{
    /// <summary>
    /// 07.1: an HNSW index for cosine distance over the embeddings stored as they are (<c>vector(8)</c>) but indexed at
    /// half precision: an expression index on <c>embedding::halfvec(8)</c>. The table keeps its column as it is.
    /// </summary>
    public const string HalfvecIndexSql = """
        -- TODO: CREATE INDEX ... ON items USING hnsw ((...) ...)
        """;

    /// <summary>
    /// 07.2: the <c>$2</c> items nearest to <c>$1</c> (a vector) by cosine distance at half precision, nearest first:
    /// column <c>id</c>. The table has 07.1's index (on <c>(embedding::halfvec(8)) halfvec_cosine_ops</c>); the plan must use it.
    /// </summary>
    public const string HalfvecQuerySql = """
        -- TODO: SELECT id FROM items ORDER BY ... LIMIT $2
        """;

    /// <summary>
    /// 07.3: the statements that let <paramref name="role"/> read the table <c>items</c> of <paramref name="schema"/>
    /// and nothing more: no writes to it, no other table of the schema.
    /// </summary>
    public static string ReadOnlyGrantsSql(string schema, string role)
    {
        // TODO: return "GRANT ...; GRANT ...;" (schema and role are plain identifiers).
        throw new NotImplementedException("TODO: write ReadOnlyGrantsSql");
    }
}
