using Microsoft.EntityFrameworkCore.Infrastructure;
using Pgvector.EntityFrameworkCore;

namespace PgVectorModule.Search;

/// <summary>
/// The context of the vector lessons. Separate from the relational lessons' context because its model depends
/// on the configured embedding dimension: one model per <see cref="VectorStoreShape"/>.
/// </summary>
public class SearchDbContext(DbContextOptions<SearchDbContext> options, VectorStoreShape shape) : DbContext(options)
{
    public VectorStoreShape Shape { get; } = shape;

    public DbSet<VectorDocument> Documents => Set<VectorDocument>();
    public DbSet<EmbeddingModelRecord> EmbeddingModels => Set<EmbeddingModelRecord>();
    public DbSet<DocumentTerm> DocumentTerms => Set<DocumentTerm>();
    public DbSet<DocumentFrequencyChange> DocumentFrequencyChanges => Set<DocumentFrequencyChange>();
    public DbSet<Bm25Corpus> Bm25Corpus => Set<Bm25Corpus>();

    public static DbContextOptions<SearchDbContext> CreateOptions(NpgsqlDataSource dataSource, params Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor[] interceptors) =>
        new DbContextOptionsBuilder<SearchDbContext>()
            .UseNpgsql(dataSource, npgsql => npgsql.UseVector())
            .UseSnakeCaseNamingConvention()
            .ReplaceService<IModelCacheKeyFactory, ShapeModelCacheKeyFactory>()
            .AddInterceptors(interceptors)
            .Options;

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        // The extension lives in public, where every lesson's search_path can see its types and operators.
        modelBuilder.HasPostgresExtension("public", "vector");
        modelBuilder.ApplyConfiguration(new VectorDocumentConfiguration(Shape));
        modelBuilder.ApplyConfiguration(new EmbeddingModelRecordConfiguration());
        modelBuilder.ApplyConfiguration(new DocumentTermConfiguration());
        modelBuilder.ApplyConfiguration(new DocumentFrequencyChangeConfiguration());
        modelBuilder.ApplyConfiguration(new Bm25CorpusConfiguration());
    }

    /// <summary>EF caches one model per context type; this context needs one per shape.</summary>
    private sealed class ShapeModelCacheKeyFactory : IModelCacheKeyFactory
    {
        public object Create(DbContext context, bool designTime) =>
            context is SearchDbContext search ? (context.GetType(), search.Shape, designTime) : (context.GetType(), designTime);
    }
}
