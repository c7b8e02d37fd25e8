using Microsoft.EntityFrameworkCore.Metadata.Builders;
using NpgsqlTypes;

namespace PgVectorModule.Search;

/// <summary>A document with its embedding and its full-text vector: the table the search lessons query.</summary>
public class VectorDocument
{
    public int Id { get; set; }
    public required string Title { get; set; }
    public required string Content { get; set; }
    public string? Source { get; set; }

    /// <summary><c>vector(N)</c>, N being the configured embedding dimension.</summary>
    public Vector? Embedding { get; set; }

    /// <summary>Generated and stored by PostgreSQL from title and content: the application never writes it.</summary>
    public NpgsqlTsVector ContentTsv { get; set; } = null!;
}

/// <summary>The shape of the vector table: dimension and index parameters, all part of the EF model.</summary>
/// <param name="Dimensions">The embedding dimension: vector(N).</param>
/// <param name="IvfFlatLists">IVFFlat's lists; pgvector suggests rows / 1000 up to 1M rows, and at least 1.</param>
/// <param name="HnswM">HNSW's m: links per node (pgvector's default 16).</param>
/// <param name="HnswEfConstruction">HNSW's ef_construction: candidate list while building (default 64).</param>
public sealed record VectorStoreShape(int Dimensions, int IvfFlatLists = 1, int HnswM = 16, int HnswEfConstruction = 64)
{
    /// <summary>pgvector's rule of thumb for lists: rows / 1000 up to a million rows, sqrt(rows) beyond.</summary>
    public static int ListsFor(long rows) =>
        rows <= 1_000_000 ? (int)Math.Max(1, rows / 1000) : (int)Math.Sqrt(rows);
}

/// <summary>The table, its generated tsvector column and its three indexes, as EF Core model configuration.</summary>
public sealed class VectorDocumentConfiguration(VectorStoreShape shape) : IEntityTypeConfiguration<VectorDocument>
{
    public const string TableName = "vector_documents";
    public const string HnswIndex = "ix_vector_documents_embedding_hnsw";
    public const string IvfFlatIndex = "ix_vector_documents_embedding_ivfflat";
    public const string GinIndex = "ix_vector_documents_content_tsv";
    public const string SourceIndex = "ix_vector_documents_source";

    public void Configure(EntityTypeBuilder<VectorDocument> builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.ToTable(TableName);
        builder.Property(d => d.Title).HasMaxLength(255);
        builder.Property(d => d.Source).HasMaxLength(255);
        builder.Property(d => d.Embedding).HasColumnType($"vector({shape.Dimensions})");

        // to_tsvector('english', title || ' ' || content), computed by PostgreSQL on every write and stored.
        builder.HasGeneratedTsVectorColumn(d => d.ContentTsv, "english", d => new { d.Title, d.Content });

        // HNSW: a graph; good recall at low latency, builds slower, needs no training data.
        // HasDatabaseName: the snake_case convention would otherwise give both embedding indexes one name.
        builder.HasIndex(d => d.Embedding, HnswIndex)
            .HasDatabaseName(HnswIndex)
            .HasMethod("hnsw")
            .HasOperators("vector_cosine_ops")
            .HasStorageParameter("m", shape.HnswM)
            .HasStorageParameter("ef_construction", shape.HnswEfConstruction);

        // IVFFlat: clusters learned from the rows present at build time, so it is built after the data is loaded.
        builder.HasIndex(d => d.Embedding, IvfFlatIndex)
            .HasDatabaseName(IvfFlatIndex)
            .HasMethod("ivfflat")
            .HasOperators("vector_cosine_ops")
            .HasStorageParameter("lists", shape.IvfFlatLists);

        // GIN over the tsvector: what makes @@ full-text matches fast.
        builder.HasIndex(d => d.ContentTsv, GinIndex).HasDatabaseName(GinIndex).HasMethod("gin");

        // B-tree on the filter column: a filtered search finds its rows without reading every vector (the keyword leg
        // restricts its postings to them; a selective filter may also be answered exactly from here).
        builder.HasIndex(d => d.Source, SourceIndex).HasDatabaseName(SourceIndex);
    }
}
