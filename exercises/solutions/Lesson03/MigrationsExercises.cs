using Microsoft.EntityFrameworkCore.Migrations;

namespace PgVectorModule.Exercises.Lesson03;

/// <summary>Spoiler: reference solutions to lesson 03's exercises.</summary>
public static class MigrationsExercises
{
    public static void AddSlugUp(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AddColumn<string>(name: "slug", table: "notes", type: "text", nullable: true);
        migrationBuilder.Sql("UPDATE notes SET slug = replace(lower(title), ' ', '-')");
        migrationBuilder.AlterColumn<string>(name: "slug", table: "notes", type: "text", nullable: false,
            oldClrType: typeof(string), oldType: "text", oldNullable: true);
    }

    public static void AddSlugDown(MigrationBuilder migrationBuilder) =>
        migrationBuilder.DropColumn(name: "slug", table: "notes");
}
