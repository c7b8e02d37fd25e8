namespace PgVectorModule.Search;

/// <summary>
/// Keeps the BM25 statistics (<c>document_terms</c>, <c>bm25_corpus</c>) right on every insert, update, delete and
/// truncate of <c>vector_documents</c>, whoever writes: triggers, not a refresh each writer must remember to call.
/// They are statement-level with transition tables, so a COPY of 100,000 rows runs one INSERT ... SELECT into the
/// postings, not 100,000 trigger calls; an UPDATE re-indexes only rows whose <c>content_tsv</c> changed.
/// The price: every write also updates the one <c>bm25_corpus</c> row, so concurrent writers queue on it (fine for a
/// search index fed by a loader; a write-heavy table would keep the counts per writer and sum them).
/// </summary>
public static class Bm25Index
{
    /// <summary>
    /// Postings of a set of rows (<paramref name="rows"/>, a table or transition table with id and content_tsv):
    /// unnest(tsvector) gives each lexeme with its positions, so term frequency is the number of positions.
    /// PostgreSQL keeps at most 256 positions per lexeme, so a term's frequency saturates there (BM25's k1 has long
    /// flattened it by then).
    /// </summary>
    private static string AddPostings(string rows) => $"""
        WITH terms AS (
            SELECT r.id, t.lexeme, coalesce(array_length(t.positions, 1), 1) AS term_frequency
            FROM {rows} r, unnest(r.content_tsv) AS t(lexeme, positions, weights)),
        lengths AS (SELECT id, sum(term_frequency)::int AS document_length FROM terms GROUP BY id),
        added AS (
            INSERT INTO document_terms (lexeme, document_id, term_frequency, document_length)
            SELECT t.lexeme, t.id, t.term_frequency, l.document_length FROM terms t JOIN lengths l USING (id))
        UPDATE bm25_corpus SET
            document_count = document_count + (SELECT count(*) FROM {rows} counted),
            total_length = total_length + (SELECT coalesce(sum(document_length), 0) FROM lengths);
        """;

    private static string RemovePostings(string rows) => $"""
        WITH removed AS (
            DELETE FROM document_terms t USING {rows} r WHERE t.document_id = r.id
            RETURNING t.document_id, t.document_length)
        UPDATE bm25_corpus SET
            document_count = document_count - (SELECT count(*) FROM {rows} counted),
            total_length = total_length - (SELECT coalesce(sum(document_length), 0)
                                           FROM (SELECT DISTINCT document_id, document_length FROM removed) per_document);
        """;

    /// <summary>Rows of <paramref name="rows"/> whose id and content_tsv do not both appear in <paramref name="other"/>.</summary>
    private static string Changed(string rows, string other) =>
        $"(SELECT * FROM {rows} r WHERE NOT EXISTS (SELECT 1 FROM {other} o WHERE o.id = r.id AND o.content_tsv = r.content_tsv))";

    /// <summary>
    /// Functions and triggers, created in the schema of the search_path's first entry. SET search_path FROM CURRENT
    /// pins that schema inside the functions, so a writer with another search_path still updates this table's postings.
    /// </summary>
    public static IReadOnlyList<string> InstallStatements { get; } =
    [
        $"INSERT INTO {Bm25CorpusConfiguration.TableName} (id, document_count, total_length) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING",
        Function("bm25_documents_inserted", AddPostings("new_documents")),
        Function("bm25_documents_deleted", RemovePostings("old_documents")),
        Function("bm25_documents_updated",
            RemovePostings(Changed("old_documents", "new_documents")) + "\n" + AddPostings(Changed("new_documents", "old_documents"))),
        Function("bm25_documents_truncated", "TRUNCATE document_terms; UPDATE bm25_corpus SET document_count = 0, total_length = 0;"),
        Trigger("bm25_after_insert", "INSERT", "REFERENCING NEW TABLE AS new_documents", "bm25_documents_inserted"),
        Trigger("bm25_after_delete", "DELETE", "REFERENCING OLD TABLE AS old_documents", "bm25_documents_deleted"),
        Trigger("bm25_after_update", "UPDATE", "REFERENCING OLD TABLE AS old_documents NEW TABLE AS new_documents", "bm25_documents_updated"),
        Trigger("bm25_after_truncate", "TRUNCATE", "", "bm25_documents_truncated"),
    ];

    private static string Function(string name, string body) => $"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
        {body}
        RETURN NULL;
        END $$
        """;

    private static string Trigger(string name, string @event, string referencing, string function) =>
        $"CREATE OR REPLACE TRIGGER {name} AFTER {@event} ON {VectorDocumentConfiguration.TableName} {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()";
}
