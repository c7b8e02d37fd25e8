using Microsoft.EntityFrameworkCore.Diagnostics;
using PgVectorModule.Data;

namespace PgVectorModule.Lessons;

/// <summary>
/// Where a running lesson works: its settings, the one pooled data source (in the lesson's own schema) and the EF Core
/// contexts it makes over it, each with the interceptors it is given (the narrator's SQL echo first). It neither shows
/// nor records anything: <see cref="Lesson"/> narrates, <see cref="LessonConsole"/> draws.
/// </summary>
public sealed class LessonWorkspace(LessonInfo info, ModuleSettings settings, NpgsqlDataSource dataSource, IInterceptor sqlEcho)
{
    public LessonInfo Info { get; } = info;
    public ModuleSettings Settings { get; } = settings;
    public NpgsqlDataSource DataSource { get; } = dataSource;

    /// <summary>The schema this lesson owns; unqualified table names resolve to it.</summary>
    public string Schema => Info.Schema;

    /// <summary>A new context over the shared data source, echoing the SQL it sends.</summary>
    public CourseDbContext NewDbContext(params IInterceptor[] interceptors) =>
        new(CourseDbContext.CreateOptions(DataSource, [sqlEcho, .. interceptors]));

    /// <summary>A new vector-search context over the shared data source, echoing the SQL it sends.</summary>
    public Search.SearchDbContext NewSearchDbContext(Search.VectorStoreShape shape) =>
        new(Search.SearchDbContext.CreateOptions(DataSource, sqlEcho), shape);

    /// <summary>A context that applies migrations in this lesson's schema (history table included), echoing the SQL it sends.</summary>
    public CourseDbContext NewMigrationsDbContext(params IInterceptor[] interceptors) =>
        new(CourseDbContext.CreateMigrationOptions(DataSource, Schema, [sqlEcho, .. interceptors]));

    /// <summary>A command on <paramref name="connection"/>, or on a connection of the pool when none is given.</summary>
    public NpgsqlCommand Command(string sql, NpgsqlConnection? connection) =>
        connection is null ? DataSource.CreateCommand(sql) : new NpgsqlCommand(sql, connection);
}
