using NpgsqlTypes;

namespace PgVectorModule.Exercises.Check;

/// <summary>The data the checks set up: small vectors from a seeded generator, so every run sees the same rows.</summary>
public static class CheckData
{
    public const int Dimensions = 8;

    /// <summary>
    /// <paramref name="count"/> vectors of <see cref="Dimensions"/> dimensions, the same for the same seed: directions spread
    /// over the sphere, lengths between 0.5 and 2, so that cosine, L2 and inner-product neighbours differ.
    /// </summary>
    public static float[][] Vectors(int count, int seed)
    {
        var random = new Random(seed);
        var vectors = new float[count][];
        for (var i = 0; i < count; i++)
        {
            var v = new float[Dimensions];
            double norm = 0;
            for (var d = 0; d < Dimensions; d++)
            {
                // A sum of uniforms: close enough to a Gaussian for directions spread over the sphere.
                v[d] = (float)(random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5);
                norm += v[d] * v[d];
            }

            var length = (float)(Math.Sqrt(norm) / (0.5 + 1.5 * random.NextDouble()));
            for (var d = 0; d < Dimensions; d++)
            {
                v[d] /= length;
            }

            vectors[i] = v;
        }

        return vectors;
    }

    public static Vector Query(int seed) => new(Vectors(1, seed)[0]);

    /// <summary>
    /// Creates <c>items(id bigint PRIMARY KEY, category text, embedding vector(8))</c> with <paramref name="count"/> rows;
    /// row i's category is <paramref name="category"/>(i). With <paramref name="hnsw"/>, an HNSW index for cosine distance.
    /// </summary>
    public static async Task CreateItemsAsync(CheckRoom room, int count, Func<int, string> category, bool hnsw, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(room);
        ArgumentNullException.ThrowIfNull(category);
        await room.ExecuteAsync($"CREATE TABLE items (id bigint PRIMARY KEY, category text NOT NULL, embedding vector({Dimensions}) NOT NULL)", cancellationToken);
        var vectors = Vectors(count, seed: 42);
        await using (var connection = await room.Admin.OpenConnectionAsync(cancellationToken))
        await using (var writer = await connection.BeginBinaryImportAsync("COPY items (id, category, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            for (var i = 0; i < count; i++)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync((long)(i + 1), NpgsqlDbType.Bigint, cancellationToken);
                await writer.WriteAsync(category(i), NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(new Vector(vectors[i]), cancellationToken);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        if (hnsw)
        {
            await room.ExecuteAsync("CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops)", cancellationToken);
        }

        await room.ExecuteAsync("ANALYZE items", cancellationToken);
    }

    /// <summary>The ids of the exact nearest rows (no index: sequential scan and sort), for the checks to compare with.</summary>
    public static Task<List<long>> ExactIdsAsync(CheckRoom room, string sql, CancellationToken cancellationToken, params object?[] values) =>
        ExactIdsAsync(room, tenant: null, sql, cancellationToken, values);

    /// <summary>
    /// As <see cref="ExactIdsAsync(CheckRoom, string, CancellationToken, object?[])"/>, with <c>app.tenant_id</c> set to
    /// <paramref name="tenant"/> for the query: where the check's login is not a superuser (a learner on a class
    /// server), a forced row-level security policy applies to the check's own reads too.
    /// </summary>
    public static async Task<List<long>> ExactIdsAsync(CheckRoom room, int? tenant, string sql, CancellationToken cancellationToken, params object?[] values)
    {
        ArgumentNullException.ThrowIfNull(room);
        await using var connection = await room.Admin.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var exact = new NpgsqlCommand("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off", connection, transaction))
        {
            await exact.ExecuteNonQueryAsync(cancellationToken);
        }

        if (tenant is { } id)
        {
            await using var setTenant = new NpgsqlCommand("SELECT set_config('app.tenant_id', $1, true)", connection, transaction);
            setTenant.Parameters.Add(new NpgsqlParameter { Value = id.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            await setTenant.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        var ids = new List<long>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                ids.Add(reader.GetInt64(0));
            }
        }

        await transaction.RollbackAsync(cancellationToken);
        return ids;
    }

    /// <summary>A list as the report shows it: "[3, 17, 5]", shortened after a few.</summary>
    public static string Show<T>(IReadOnlyCollection<T> values, int most = 8) =>
        "[" + string.Join(", ", values.Take(most)) + (values.Count > most ? $", ... ({values.Count} in all)" : "") + "]";
}
