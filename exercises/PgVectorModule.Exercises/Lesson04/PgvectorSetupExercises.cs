using Microsoft.EntityFrameworkCore.Migrations;
using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson04;

/// <summary>Lesson 04's exercises: a vector table, its HNSW index (in SQL and by migration), and a bulk load. Check: <c>scripts/check.sh 04</c>.</summary>
public static class PgvectorSetupExercises
{
    /// <summary>
    /// 04.1: creates the table <c>items</c>: <c>id</c> (bigint, the primary key), <c>title</c> (text, NOT NULL) and
    /// <c>embedding</c>, a NOT NULL vector column that refuses any vector that has not exactly 8 dimensions.
    /// (The extension exists already.)
    /// </summary>
    public const string CreateItemsTableSql = """
        -- TODO: CREATE TABLE items (...)
        """;

    /// <summary>
    /// 04.2: creates an HNSW index on <c>items.embedding</c> that serves nearest-neighbour searches by cosine distance
    /// (<c>ORDER BY embedding &lt;=&gt; $1 LIMIT k</c>).
    /// </summary>
    public const string CosineIndexSql = """
        -- TODO: CREATE INDEX ... ON items USING ... (embedding ...)
        """;

    /// <summary>
    /// 04.3: writes every item into <c>items(id, title, embedding)</c> with one binary COPY
    /// (<c>COPY ... FROM STDIN (FORMAT BINARY)</c>), not with INSERTs.
    /// </summary>
    public static Task LoadItemsAsync(NpgsqlDataSource dataSource, IReadOnlyList<Item> items)
    {
        // TODO: connection.BeginBinaryImportAsync("COPY ..."), StartRowAsync and WriteAsync per row, then CompleteAsync.
        throw new NotImplementedException("TODO: write LoadItemsAsync");
    }

    /// <summary>
    /// 04.4: the <c>Up</c> of a migration that creates the index <c>ix_items_embedding_hnsw</c> on <c>items.embedding</c>:
    /// HNSW, for cosine distance, with <c>m = 16</c> and <c>ef_construction = 64</c>.
    /// </summary>
    public static void AddHnswIndexUp(MigrationBuilder migrationBuilder)
    {
        // TODO: migrationBuilder.CreateIndex(...) with the Npgsql annotations for the method, the operator class and the storage parameters.
        throw new NotImplementedException("TODO: write AddHnswIndexUp");
    }
}
