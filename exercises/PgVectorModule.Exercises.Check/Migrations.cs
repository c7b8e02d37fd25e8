using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Check;

/// <summary>Turns a migration the learner wrote into the SQL EF Core's Npgsql provider sends, and runs it, as <c>dotnet ef database update</c> would.</summary>
internal static class Migrations
{
    public static async Task<string> ApplyAsync(CheckRoom room, Action<MigrationBuilder> migration, CancellationToken cancellationToken)
    {
        await using var db = ExerciseContext.Create(room.Admin);
        var builder = new MigrationBuilder(db.Database.ProviderName);
        migration(builder);
        var commands = db.GetService<IMigrationsSqlGenerator>().Generate(builder.Operations, db.Model);
        var sql = string.Join('\n', commands.Select(c => c.CommandText.Trim()));
        await using var connection = await room.Admin.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var command in commands)
        {
            await using var run = new NpgsqlCommand(command.CommandText, connection, transaction);
            await run.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return sql;
    }
}
