using NpgsqlTypes;
using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson08;

/// <summary>Spoiler: reference solutions to lesson 08's exercises.</summary>
public static class OperationsExercises
{
    public static Route ChooseRoute(NpgsqlLogSequenceNumber? lastWrite, NpgsqlLogSequenceNumber standbyReplayed) =>
        lastWrite is { } written && standbyReplayed < written ? Route.Primary : Route.Standby;

    public static async Task<long> CountNotesAsync(NpgsqlDataSource dataSource, string schema)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var set = new NpgsqlCommand("SELECT set_config('search_path', quote_ident($1), true)", connection, transaction))
        {
            set.Parameters.Add(new NpgsqlParameter { Value = schema });
            await set.ExecuteNonQueryAsync();
        }

        await using var count = new NpgsqlCommand("SELECT count(*) FROM notes", connection, transaction);
        var rows = (long)(await count.ExecuteScalarAsync())!;
        await transaction.CommitAsync();
        return rows;
    }
}
