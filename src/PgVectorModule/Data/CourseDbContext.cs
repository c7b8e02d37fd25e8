using Microsoft.EntityFrameworkCore.Diagnostics;
using Pgvector.EntityFrameworkCore;

namespace PgVectorModule.Data;

/// <summary>The course's EF Core context: the SQLAlchemy Session and declarative Base in one.</summary>
public class CourseDbContext(DbContextOptions<CourseDbContext> options) : DbContext(options)
{
    public DbSet<Document> Documents => Set<Document>();

    /// <summary>The clock that stamps created_at and updated_at (a test may pass its own).</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>
    /// Options for a context over the module's shared <see cref="NpgsqlDataSource"/>: the data source owns
    /// pooling and the pgvector type mapping, EF adds its own pgvector translations with <c>UseVector()</c>.
    /// </summary>
    public static DbContextOptions<CourseDbContext> CreateOptions(NpgsqlDataSource dataSource, params IInterceptor[] interceptors) =>
        new DbContextOptionsBuilder<CourseDbContext>()
            .UseNpgsql(dataSource, npgsql => npgsql.UseVector())
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(interceptors)
            .Options;

    /// <summary>The table where EF Core records applied migrations (Alembic's alembic_version).</summary>
    public const string HistoryTable = "__EFMigrationsHistory";

    /// <summary>
    /// Options for a context that applies migrations in <paramref name="schema"/>. The tables follow the
    /// connection's search_path (the model names no schema); the history table is pinned to the same schema, so
    /// the "which migrations ran?" check and the migrations themselves look in one place.
    /// </summary>
    public static DbContextOptions<CourseDbContext> CreateMigrationOptions(NpgsqlDataSource dataSource, string schema, params IInterceptor[] interceptors) =>
        new DbContextOptionsBuilder<CourseDbContext>()
            .UseNpgsql(dataSource, npgsql => npgsql.UseVector().MigrationsHistoryTable(HistoryTable, schema))
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(interceptors)
            .Options;

    /// <summary>The same over a connection string, for <c>dotnet ef</c>, which builds one context and has no data source to share.</summary>
    public static DbContextOptions<CourseDbContext> CreateMigrationOptions(string connectionString, string schema) =>
        new DbContextOptionsBuilder<CourseDbContext>()
            .UseNpgsql(connectionString, npgsql => npgsql.UseVector().MigrationsHistoryTable(HistoryTable, schema))
            .UseSnakeCaseNamingConvention()
            .Options;

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        // Only this folder's configurations: the vector tables belong to SearchDbContext.
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(CourseDbContext).Assembly, t => t.Namespace == typeof(Document).Namespace);
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        StampTimestamps();
        return base.SaveChanges(acceptAllChangesOnSuccess);
    }

    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        StampTimestamps();
        return base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
    }

    // The application owns created_at/updated_at (and the word count derived from content), so every insert and
    // update path through SaveChanges sets them the same way.
    private void StampTimestamps()
    {
        var now = Clock.GetUtcNow();
        foreach (var entry in ChangeTracker.Entries<Document>())
        {
            if (entry.State == EntityState.Added || (entry.State == EntityState.Modified && entry.Property(d => d.Content).IsModified))
            {
                entry.Entity.WordCount = WordCounter.Count(entry.Entity.Content);
            }
        }

        foreach (var entry in ChangeTracker.Entries<ITimestamped>())
        {
            if (entry.State == EntityState.Added)
            {
                entry.Entity.CreatedAt = now;
                entry.Entity.UpdatedAt = now;
            }
            else if (entry.State == EntityState.Modified)
            {
                entry.Entity.UpdatedAt = now;
            }
        }
    }
}
