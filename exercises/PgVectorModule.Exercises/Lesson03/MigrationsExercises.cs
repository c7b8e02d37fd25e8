using Microsoft.EntityFrameworkCore.Migrations;

namespace PgVectorModule.Exercises.Lesson03;

/// <summary>Lesson 03's exercises: a migration's <c>Up</c> that adds a column and backfills it, and its <c>Down</c>. Check: <c>scripts/check.sh 03</c>.</summary>
public static class MigrationsExercises
{
    /// <summary>
    /// 03.1: the <c>Up</c> of a migration that adds <c>slug</c> (text, NOT NULL) to the table <c>notes</c>, which already
    /// holds rows: every row's slug is its title in lower case with each space replaced by <c>-</c> ("Hello World" gives
    /// "hello-world"), and no row is left with an empty slug.
    /// </summary>
    public static void AddSlugUp(MigrationBuilder migrationBuilder)
    {
        // TODO: AddColumn (nullable first), Sql("UPDATE ..."), then AlterColumn to NOT NULL.
        throw new NotImplementedException("TODO: write AddSlugUp");
    }

    /// <summary>03.2: the matching <c>Down</c>: <c>notes</c> goes back to what it was before <c>Up</c>, its rows kept.</summary>
    public static void AddSlugDown(MigrationBuilder migrationBuilder)
    {
        // TODO: undo what AddSlugUp did, and nothing more.
        throw new NotImplementedException("TODO: write AddSlugDown");
    }
}
