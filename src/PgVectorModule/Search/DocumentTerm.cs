using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace PgVectorModule.Search;

/// <summary>
/// One posting of the BM25 keyword index: a lexeme of a document's <c>content_tsv</c>, how often it occurs there, and
/// the document's length in lexemes. Written only by the triggers on <c>vector_documents</c> (<see cref="Bm25Index"/>),
/// never by the application.
/// </summary>
public class DocumentTerm
{
    public required string Lexeme { get; set; }
    public int DocumentId { get; set; }
    public int TermFrequency { get; set; }
    public int DocumentLength { get; set; }
}

/// <summary>The corpus-wide figures BM25 needs: how many documents, and their total length (for the average).</summary>
public class Bm25Corpus
{
    /// <summary>Always 1: the table holds exactly one row.</summary>
    public int Id { get; set; } = 1;
    public long DocumentCount { get; set; }
    public long TotalLength { get; set; }
}

public sealed class DocumentTermConfiguration : IEntityTypeConfiguration<DocumentTerm>
{
    public const string TableName = "document_terms";
    public const string LexemeIndex = "ix_document_terms_lexeme";

    public void Configure(EntityTypeBuilder<DocumentTerm> builder)
    {
        builder.ToTable(TableName);
        builder.HasNoKey();
        // A query reads the postings of its few lexemes from this index alone (an index-only scan): the lexeme finds
        // them, and the INCLUDE columns carry everything the score needs.
        builder.HasIndex(t => new { t.Lexeme, t.DocumentId }, LexemeIndex)
            .HasDatabaseName(LexemeIndex)
            .IsUnique()
            .IncludeProperties(t => new { t.TermFrequency, t.DocumentLength });
        // Finds a document's postings when it is updated or deleted.
        builder.HasIndex(t => t.DocumentId);
    }
}

public sealed class Bm25CorpusConfiguration : IEntityTypeConfiguration<Bm25Corpus>
{
    public const string TableName = "bm25_corpus";

    public void Configure(EntityTypeBuilder<Bm25Corpus> builder)
    {
        builder.ToTable(TableName, t => t.HasCheckConstraint("ck_bm25_corpus_one_row", "id = 1"));
        builder.Property(c => c.Id).ValueGeneratedNever();
    }
}
