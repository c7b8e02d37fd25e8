using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using NpgsqlTypes;
using Pgvector.EntityFrameworkCore;

namespace PgVectorModule.Lessons.Lesson05;

/// <summary>Metadata beside the vectors: a foreign key to a collections table and a JSONB column with a GIN index.</summary>
public sealed partial class VectorSearchLesson
{
    /// <summary>The metadata the lesson filters on: JSON containment (@>) matches documents holding at least these keys and values.</summary>
    public const string MetadataFilter = """{"year": 2024}""";

    private static async Task MetadataAsync(Lesson lesson, Vector query, int dimensions, CancellationToken cancellationToken)
    {
        lesson.Step("metadata", "Foreign keys and JSONB metadata",
            "The Python module's schema advice: normalize what is relational (a foreign key from passages to collections), keep loose attributes in JSONB, and filter both in the vector search. " +
            "EF maps the key as a navigation and the JSONB column as a string; EF.Functions.JsonContains becomes @>, which a GIN index answers.");
        await using var db = new PassagesContext(lesson, dimensions);
        // The tables EF creates from the model (PassagesContext below), filled from the corpus: for reading later.
        using (lesson.Detail())
        {
            await db.Database.ExecuteSqlRawAsync("DROP TABLE IF EXISTS passages, collections", cancellationToken);
            await db.GetService<IRelationalDatabaseCreator>().CreateTablesAsync(cancellationToken);
            // Passages are the corpus' documents with made-up metadata: a collection per source, a year and a review flag.
            await db.Database.ExecuteSqlRawAsync(
                """
                INSERT INTO collections (name) VALUES ('handbook'), ('engineering blog'), ('papers');
                INSERT INTO passages (id, collection_id, title, metadata, embedding)
                SELECT d.id, c.id, d.title, jsonb_build_object('year', 2019 + d.id % 6, 'reviewed', d.id % 3 = 0), d.embedding
                FROM vector_documents d
                JOIN collections c ON c.name = CASE d.source WHEN 'docs' THEN 'handbook' WHEN 'blog' THEN 'engineering blog' ELSE 'papers' END;
                ANALYZE collections, passages;
                """, cancellationToken);
        }

        var collection = "handbook";
        var metadata = MetadataFilter;
        var hits = await db.Passages
            .Where(p => p.Collection.Name == collection && EF.Functions.JsonContains(p.Metadata, metadata))
            .Select(p => new { p.Title, Collection = p.Collection.Name, p.Metadata, Distance = p.Embedding!.CosineDistance(query) })
            .OrderBy(p => p.Distance)
            .Take(5)
            .ToListAsync(cancellationToken);
        lesson.Table(hits, ("title", h => h.Title), ("collection", h => h.Collection), ("metadata", h => h.Metadata), ("cosine distance", h => h.Distance.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)));

        lesson.Say("The GIN index (jsonb_path_ops) answers @>, @? and @@; at 180 rows the planner would scan, so sequential scans are discouraged here.", Tone.Aside);
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        using (lesson.Detail())
        {
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
        }

        await lesson.ExplainAsync("SELECT id FROM passages WHERE metadata @> @metadata", connection,
            [new NpgsqlParameter("metadata", NpgsqlDbType.Jsonb) { Value = MetadataFilter }], cancellationToken);
        await transaction.RollbackAsync(cancellationToken);
    }
}

/// <summary>A named group of passages: the "one" side of the foreign key.</summary>
public sealed class Collection
{
    public int Id { get; set; }
    public required string Name { get; set; }
    public List<Passage> Passages { get; } = [];
}

/// <summary>A searchable passage: its collection by foreign key, loose attributes in JSONB, and its embedding.</summary>
public sealed class Passage
{
    public int Id { get; set; }
    public int CollectionId { get; set; }
    public Collection Collection { get; set; } = null!;
    public required string Title { get; set; }

    /// <summary>A JSON object, stored as jsonb: filtered with EF.Functions.JsonContains (@>).</summary>
    public required string Metadata { get; set; }

    public Vector? Embedding { get; set; }
}

/// <summary>The lesson's model for passages and collections.</summary>
public sealed class PassagesContext(Lesson lesson, int dimensions) : DbContext
{
    public DbSet<Passage> Passages => Set<Passage>();
    public DbSet<Collection> Collections => Set<Collection>();

    public int Dimensions => dimensions;

    protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder) =>
        optionsBuilder
            .UseNpgsql(lesson.DataSource, npgsql => npgsql.UseVector())
            .UseSnakeCaseNamingConvention()
            .ReplaceService<IModelCacheKeyFactory, DimensionsCacheKey>()
            .AddInterceptors(lesson.SqlEchoInterceptor);

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Collection>(collection =>
        {
            collection.ToTable("collections");
            collection.HasIndex(c => c.Name).IsUnique();
        });

        modelBuilder.Entity<Passage>(passage =>
        {
            passage.ToTable("passages");
            passage.Property(p => p.Id).ValueGeneratedNever();   // the corpus document's id
            passage.HasOne(p => p.Collection).WithMany(c => c.Passages).HasForeignKey(p => p.CollectionId).OnDelete(DeleteBehavior.Restrict);
            passage.Property(p => p.Metadata).HasColumnType("jsonb");
            // jsonb_path_ops: a smaller, faster GIN index for @>, @? and @@; the default jsonb_ops also answers the key-exists ?, ?| and ?&.
            passage.HasIndex(p => p.Metadata).HasMethod("gin").HasOperators("jsonb_path_ops");
            passage.Property(p => p.Embedding).HasColumnType($"vector({dimensions})");
            passage.HasIndex(p => p.Embedding).HasMethod("hnsw").HasOperators("vector_cosine_ops");
        });
    }

    /// <summary>EF caches one model per context type; the column's dimension follows the embedding model.</summary>
    private sealed class DimensionsCacheKey : IModelCacheKeyFactory
    {
        public object Create(DbContext context, bool designTime) => (context.GetType(), ((PassagesContext)context).Dimensions, designTime);
    }
}
