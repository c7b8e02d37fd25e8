using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace PgVectorModule.Migrations
{
    /// <summary>
    /// A data migration, written by hand (dotnet ef migrations add scaffolds it empty, as alembic revision -m
    /// does): rows that existed before AddWordCount got the column's default, 0; this counts their words.
    /// The rule matches WordCounter.Count: words are runs of non-whitespace.
    /// </summary>
    public partial class BackfillWordCount : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql(
                """
                UPDATE documents
                SET word_count = coalesce(array_length(regexp_split_to_array(btrim(content), '\s+'), 1), 0)
                WHERE btrim(content) <> '';
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            // Back to what AddWordCount alone leaves: the default.
            migrationBuilder.Sql("UPDATE documents SET word_count = 0;");
        }
    }
}
