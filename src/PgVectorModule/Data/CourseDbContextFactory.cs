using Microsoft.EntityFrameworkCore.Design;

namespace PgVectorModule.Data;

/// <summary>
/// How the <c>dotnet ef</c> tools build a <see cref="CourseDbContext"/> (Alembic's env.py): the settings every program
/// reads (<see cref="ModuleSettings.Load"/>), and the schema the migrations lesson owns, so
/// <c>dotnet ef database update</c> and lesson 03 see the same tables and the same history.
/// </summary>
public sealed class CourseDbContextFactory : IDesignTimeDbContextFactory<CourseDbContext>
{
    /// <summary>The schema <c>dotnet ef</c> works in: lesson 03's.</summary>
    public const string Schema = "lesson03";

    public CourseDbContext CreateDbContext(string[] args)
    {
        var connectionString = ModuleDataSource.ForSchema(ModuleSettings.Load().ConnectionString(), Schema);
        return new CourseDbContext(CourseDbContext.CreateMigrationOptions(connectionString.ConnectionString, Schema));
    }
}
