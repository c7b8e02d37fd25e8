using Microsoft.EntityFrameworkCore.Design;
using PgVectorModule.Configuration;

namespace PgVectorModule.Data;

/// <summary>
/// How the <c>dotnet ef</c> tools build a <see cref="CourseDbContext"/> (Alembic's env.py): DATABASE_URL from the
/// environment or .env, and the schema the migrations lesson owns, so <c>dotnet ef database update</c> and
/// lesson 03 see the same tables and the same history.
/// </summary>
public sealed class CourseDbContextFactory : IDesignTimeDbContextFactory<CourseDbContext>
{
    /// <summary>The schema <c>dotnet ef</c> works in: lesson 03's.</summary>
    public const string Schema = "lesson03";

    public CourseDbContext CreateDbContext(string[] args)
    {
        var connectionString = ModuleSettings.Load().ConnectionString();
        connectionString.SearchPath = $"{Schema}, public";
        var options = new DbContextOptionsBuilder<CourseDbContext>()
            .UseNpgsql(connectionString.ConnectionString,
                npgsql => npgsql.UseVector().MigrationsHistoryTable(CourseDbContext.HistoryTable, Schema))
            .UseSnakeCaseNamingConvention()
            .Options;
        return new CourseDbContext(options);
    }
}
