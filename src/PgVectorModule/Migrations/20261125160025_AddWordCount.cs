using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace PgVectorModule.Migrations
{
    /// <inheritdoc />
    public partial class AddWordCount : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "word_count",
                table: "documents",
                type: "integer",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "word_count",
                table: "documents");
        }
    }
}
