using Microsoft.EntityFrameworkCore.Migrations;
using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson04;

/// <summary>Spoiler: reference solutions to lesson 04's exercises.</summary>
public static class PgvectorSetupExercises
{
    public const string CreateItemsTableSql = """
        CREATE TABLE items (
            id bigint PRIMARY KEY,
            title text NOT NULL,
            embedding vector(8) NOT NULL
        )
        """;

    public const string CosineIndexSql = """
        CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops)
        """;

    public static async Task LoadItemsAsync(NpgsqlDataSource dataSource, IReadOnlyList<Item> items)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var writer = await connection.BeginBinaryImportAsync("COPY items (id, title, embedding) FROM STDIN (FORMAT BINARY)");
        foreach (var item in items)
        {
            await writer.StartRowAsync();
            await writer.WriteAsync(item.Id, NpgsqlTypes.NpgsqlDbType.Bigint);
            await writer.WriteAsync(item.Title, NpgsqlTypes.NpgsqlDbType.Text);
            await writer.WriteAsync(new Vector(item.Embedding));
        }

        await writer.CompleteAsync();
    }

    public static void AddHnswIndexUp(MigrationBuilder migrationBuilder) =>
        migrationBuilder.CreateIndex(name: "ix_items_embedding_hnsw", table: "items", column: "embedding")
            .Annotation("Npgsql:IndexMethod", "hnsw")
            .Annotation("Npgsql:IndexOperators", new[] { "vector_cosine_ops" })
            .Annotation("Npgsql:StorageParameter:m", 16)
            .Annotation("Npgsql:StorageParameter:ef_construction", 64);
}
