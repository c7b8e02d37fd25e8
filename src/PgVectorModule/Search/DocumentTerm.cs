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

/// <summary>
/// A change to the corpus-wide figures BM25 needs: how many documents, and their total length (for the average). The
/// triggers insert one row per write statement that changes them (negative for what it removed) and never update a
/// row, so concurrent writers share none; the figures are the sums over the table, and <see cref="Bm25Index.Fold"/>
/// folds the rows into one.
/// </summary>
public class Bm25Corpus
{
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
        builder.ToTable(TableName);
        // Rows are only ever inserted, summed and folded: nothing looks one up.
        builder.HasNoKey();
    }
}
