namespace PgVectorModule.Exercises.Lesson07;

/// <summary>Spoiler: reference solutions to lesson 07's exercises.</summary>
public static class ProductionExercises
{
    public const string HalfvecIndexSql = """
        CREATE INDEX items_embedding_halfvec_hnsw ON items USING hnsw ((embedding::halfvec(8)) halfvec_cosine_ops)
        """;

    public const string HalfvecQuerySql = """
        SELECT id FROM items ORDER BY embedding::halfvec(8) <=> $1::halfvec(8) LIMIT $2
        """;

    public static string ReadOnlyGrantsSql(string schema, string role) =>
        $"GRANT USAGE ON SCHEMA {schema} TO {role}; GRANT SELECT ON {schema}.items TO {role};";
}
