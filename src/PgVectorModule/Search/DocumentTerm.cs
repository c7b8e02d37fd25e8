using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace PgVectorModule.Search;

/// <summary>
/// One posting of the BM25 keyword index: a lexeme of a document's <c>content_tsv</c>, how often it occurs there, the
/// document's length in lexemes, and the document's source (so a filtered search never reads the documents). Written
/// only by the triggers on <c>vector_documents</c> (<see cref="Bm25Index"/>), never by the application.
/// </summary>
public class DocumentTerm
{
    public required string Lexeme { get; set; }
    public int DocumentId { get; set; }
    public int TermFrequency { get; set; }
    public int DocumentLength { get; set; }
    public string? Source { get; set; }

    /// <summary>
    /// Document length / term frequency, computed and stored by PostgreSQL: the order in which a term's postings can
    /// weigh the most. A posting's BM25 weight, idf (k1 + 1) / (1 + k1 (1 - b) / tf + (k1 b / average length) x length / tf),
    /// is at most idf (k1 + 1) / (1 + (k1 b / average length) x this), whatever k1 &gt;= 0, b in 0..1 and the average
    /// length: so postings read in this order bound every posting after them (<see cref="SearchSql"/>'s keyword search).
    /// </summary>
    public double LengthPerOccurrence { get; set; }
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
    public const string DocumentIndex = "ix_document_terms_document";

    public void Configure(EntityTypeBuilder<DocumentTerm> builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.ToTable(TableName);
        builder.HasNoKey();
        builder.Property(t => t.Source).HasMaxLength(255);
        builder.Property(t => t.LengthPerOccurrence).HasComputedColumnSql("document_length::float8 / term_frequency", stored: true);
        // A query reads a term's postings from this index alone (an index-only scan), those that can weigh the most
        // first: the lexeme finds them, length per occurrence orders them (the document id breaks ties, so a search can
        // resume after the last posting it read), and the INCLUDE columns carry what the weight and the filter need.
        builder.HasIndex(t => new { t.Lexeme, t.LengthPerOccurrence, t.DocumentId }, LexemeIndex)
            .HasDatabaseName(LexemeIndex)
            .IncludeProperties(t => new { t.TermFrequency, t.DocumentLength, t.Source });
        // A document's postings of given lexemes (the rest of a found document's score), and all of them when it is
        // updated or deleted; unique, so no document holds a lexeme twice.
        builder.HasIndex(t => new { t.DocumentId, t.Lexeme }, DocumentIndex)
            .HasDatabaseName(DocumentIndex)
            .IsUnique()
            .IncludeProperties(t => new { t.TermFrequency, t.DocumentLength });
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

/// <summary>
/// A change to how many documents hold a lexeme (its document frequency): each write statement inserts one row per
/// lexeme it added or removed postings of (+n or -n) and never updates a row, so concurrent writers share none, as
/// with <see cref="Bm25Corpus"/>. A term's document frequency is the sum of its rows; <see cref="Bm25Index.Fold"/> folds
/// them into one per lexeme. The keyword search reads each query term's idf from here: a common term's document
/// frequency costs a few rows, not a count of its postings.
/// </summary>
public class DocumentFrequencyChange
{
    public required string Lexeme { get; set; }
    public int Change { get; set; }
}

public sealed class DocumentFrequencyChangeConfiguration : IEntityTypeConfiguration<DocumentFrequencyChange>
{
    public const string TableName = "bm25_document_frequencies";
    public const string LexemeIndex = "ix_bm25_document_frequencies_lexeme";

    public void Configure(EntityTypeBuilder<DocumentFrequencyChange> builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.ToTable(TableName);
        builder.HasNoKey();
        // A term's rows, summed from the index alone.
        builder.HasIndex(c => c.Lexeme, LexemeIndex).HasDatabaseName(LexemeIndex).IncludeProperties(c => c.Change);
    }
}
