namespace PgVectorModule.Exercises.Lesson05;

/// <summary>Spoiler: reference solutions to lesson 05's exercises.</summary>
public static class VectorSearchExercises
{
    public const string NearestInCategorySql = """
        SELECT id, embedding <=> $1 AS distance
        FROM items
        WHERE category = $2
        ORDER BY embedding <=> $1
        LIMIT $3
        """;

    public const string WithinDistanceSql = """
        SELECT id, embedding <=> $1 AS distance
        FROM items
        WHERE embedding <=> $1 < $2
        ORDER BY embedding <=> $1
        LIMIT $3
        """;

    public static async Task<List<long>> CandidatesAsync(NpgsqlDataSource dataSource, Vector query, int count)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var set = new NpgsqlCommand("SELECT set_config('hnsw.ef_search', $1, true)", connection, transaction))
        {
            set.Parameters.Add(new NpgsqlParameter { Value = Math.Max(count, 40).ToString(System.Globalization.CultureInfo.InvariantCulture) });
            await set.ExecuteNonQueryAsync();
        }

        var ids = await IdsAsync(connection, transaction, "SELECT id FROM items ORDER BY embedding <=> $1 LIMIT $2", query, count);
        await transaction.CommitAsync();
        return ids;
    }

    public static async Task<List<long>> RareCategoryAsync(NpgsqlDataSource dataSource, Vector query, string category, int k)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var set = new NpgsqlCommand("SET LOCAL hnsw.iterative_scan = strict_order", connection, transaction))
        {
            await set.ExecuteNonQueryAsync();
        }

        var ids = await IdsAsync(connection, transaction, "SELECT id FROM items WHERE category = $3 ORDER BY embedding <=> $1 LIMIT $2", query, k, category);
        await transaction.CommitAsync();
        return ids;
    }

    private static async Task<List<long>> IdsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, params object[] values)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }
}
