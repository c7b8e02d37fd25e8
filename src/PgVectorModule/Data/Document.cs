using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace PgVectorModule.Data;

/// <summary>Entities whose created_at / updated_at the application stamps when it saves them.</summary>
public interface ITimestamped
{
    DateTimeOffset CreatedAt { get; set; }
    DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>A document: the row every relational lesson works with (table <c>documents</c>).</summary>
public class Document : ITimestamped
{
    public int Id { get; set; }
    public required string Title { get; set; }
    public required string Content { get; set; }
    public string? Source { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>How <see cref="Document"/> maps to its table; column names come out snake_case by convention.</summary>
public sealed class DocumentConfiguration : IEntityTypeConfiguration<Document>
{
    public const int TitleMaxLength = 255;
    public const int SourceMaxLength = 255;

    public void Configure(EntityTypeBuilder<Document> builder)
    {
        builder.ToTable("documents");
        builder.Property(d => d.Title).HasMaxLength(TitleMaxLength);
        builder.Property(d => d.Content);
        builder.Property(d => d.Source).HasMaxLength(SourceMaxLength);
        // timestamptz: the instant, not a wall-clock reading; Npgsql writes DateTimeOffset values in UTC.
        builder.Property(d => d.CreatedAt).HasColumnType("timestamp with time zone");
        builder.Property(d => d.UpdatedAt).HasColumnType("timestamp with time zone");
    }
}
