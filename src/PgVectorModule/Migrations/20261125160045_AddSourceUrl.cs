using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace PgVectorModule.Migrations
{
    /// <inheritdoc />
    public partial class AddSourceUrl : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "source_url",
                table: "documents",
                type: "character varying(2048)",
                maxLength: 2048,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_documents_source_url",
                table: "documents",
                column: "source_url",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_documents_source_url",
                table: "documents");

            migrationBuilder.DropColumn(
                name: "source_url",
                table: "documents");
        }
    }
}
