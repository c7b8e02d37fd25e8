namespace PgVectorModule.Exercises.Check;

/// <summary>What every check needs in the database before it starts: the vector extension.</summary>
public static class CheckSetup
{
    public static async Task EnsureVectorAsync(NpgsqlConnectionStringBuilder connectionString, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        await using var connection = new NpgsqlConnection(connectionString.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var exists = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')", connection);
        if (await exists.ExecuteScalarAsync(cancellationToken) is true)
        {
            return;
        }

        try
        {
            await using var create = new NpgsqlCommand("CREATE EXTENSION IF NOT EXISTS vector", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            // Another program created it at the same moment: it exists now.
        }
    }
}
