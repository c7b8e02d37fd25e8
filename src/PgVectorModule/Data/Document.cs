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

    /// <summary>Where the document came from, when it has an address: the natural key an import upserts on.</summary>
    public string? SourceUrl { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>How many words <see cref="Content"/> has; the context keeps it current when content is saved.</summary>
    public int WordCount { get; set; }

    /// <summary>
    /// PostgreSQL's xmin system column: the id of the transaction that last wrote the row. EF Core sends it back
    /// in every UPDATE and DELETE, so a row changed by someone else since it was read is not silently overwritten.
    /// </summary>
    public uint Version { get; set; }
}

/// <summary>How <see cref="Document"/> maps to its table; column names come out snake_case by convention.</summary>
public sealed class DocumentConfiguration : IEntityTypeConfiguration<Document>
{
    public const int TitleMaxLength = 255;
    public const int SourceMaxLength = 255;
    public const int SourceUrlMaxLength = 2048;

    public void Configure(EntityTypeBuilder<Document> builder)
    {
        builder.ToTable("documents");
        builder.Property(d => d.Title).HasMaxLength(TitleMaxLength);
        builder.Property(d => d.Content);
        builder.Property(d => d.Source).HasMaxLength(SourceMaxLength);
        builder.Property(d => d.SourceUrl).HasMaxLength(SourceUrlMaxLength);
        // Unique, so INSERT ... ON CONFLICT (source_url) can upsert; rows without a URL (NULL) never conflict.
        builder.HasIndex(d => d.SourceUrl).IsUnique();
        // timestamptz: the instant, not a wall-clock reading; Npgsql writes DateTimeOffset values in UTC.
        builder.Property(d => d.CreatedAt).HasColumnType("timestamp with time zone");
        builder.Property(d => d.UpdatedAt).HasColumnType("timestamp with time zone");
        // The default fills the column for rows that exist when it is added (and for inserts that leave it out).
        builder.Property(d => d.WordCount).HasDefaultValue(0);
        // xmin exists on every PostgreSQL row already: a concurrency token without a column to add or maintain.
        builder.Property(d => d.Version).IsRowVersion();
    }
}
