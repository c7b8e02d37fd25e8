using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace PgVectorModule.Search;

/// <summary>Which embedding model and dimension produced the vectors stored in a table (table <c>embedding_models</c>).</summary>
public class EmbeddingModelRecord
{
    public required string TableName { get; set; }
    public required string Provider { get; set; }
    public required string Model { get; set; }
    public int Dimensions { get; set; }
    public DateTimeOffset RecordedAt { get; set; }
}

/// <summary>The table <c>embedding_models</c>: one row per vector table, naming the model that filled it.</summary>
public sealed class EmbeddingModelRecordConfiguration : IEntityTypeConfiguration<EmbeddingModelRecord>
{
    public void Configure(EntityTypeBuilder<EmbeddingModelRecord> builder)
    {
        builder.ToTable("embedding_models");
        builder.HasKey(r => r.TableName);
        builder.Property(r => r.TableName).HasMaxLength(63);
        builder.Property(r => r.Provider).HasMaxLength(50);
        builder.Property(r => r.Model).HasMaxLength(200);
    }
}
