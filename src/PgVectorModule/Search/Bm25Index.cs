namespace PgVectorModule.Search;

/// <summary>
/// Keeps the BM25 statistics (<c>document_terms</c>, <c>bm25_corpus</c>) right on every insert, update, delete and
/// truncate of <c>vector_documents</c>, whoever writes: triggers, not a refresh each writer must remember to call.
/// They are statement-level with transition tables, so a COPY of 100,000 rows runs one INSERT ... SELECT into the
/// postings, not 100,000 trigger calls; an UPDATE re-indexes only rows whose <c>content_tsv</c> changed.
/// <para>
/// Nothing two writers share is updated: the postings are the writer's own documents' rows, and the corpus figures
/// (N, total length) are not one counter row but a row per write statement that changed them (the documents and length
/// it added, negative for what it removed), inserted, never updated. Writers of unrelated documents therefore never wait
/// for each other nor fail each other's REPEATABLE READ transactions; readers sum the rows (<see cref="SearchSql.Bm25"/>),
/// and <see cref="Fold"/> folds them into one now and then (<see cref="VectorStore.BuildIndexesAsync"/> does it after a load).
/// </para>
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
        INSERT INTO bm25_corpus (document_count, total_length)
        SELECT count(*), (SELECT coalesce(sum(document_length), 0) FROM lengths) FROM {rows} counted HAVING count(*) > 0;
        """;

    private static string RemovePostings(string rows) => $"""
        WITH removed AS (
            DELETE FROM document_terms t USING {rows} r WHERE t.document_id = r.id
            RETURNING t.document_id, t.document_length)
        INSERT INTO bm25_corpus (document_count, total_length)
        SELECT -count(*), -(SELECT coalesce(sum(document_length), 0) FROM (SELECT DISTINCT document_id, document_length FROM removed) per_document)
        FROM {rows} counted HAVING count(*) > 0;
        """;

    /// <summary>Rows of <paramref name="rows"/> whose id and content_tsv do not both appear in <paramref name="other"/>.</summary>
    private static string Changed(string rows, string other) =>
        $"(SELECT * FROM {rows} r WHERE NOT EXISTS (SELECT 1 FROM {other} o WHERE o.id = r.id AND o.content_tsv = r.content_tsv))";

    /// <summary>
    /// Folds bm25_corpus's rows into one with the same sums, in one statement. Writers only ever insert rows, so a fold
    /// never waits for them nor makes them fail: it deletes the rows it sees and inserts their sum, and rows written
    /// meanwhile stay for the next fold. Two folds at once under READ COMMITTED: the second skips the rows the first
    /// deleted. Run it as maintenance (with VACUUM, which then reclaims the folded rows); reads cost a little more for
    /// every row left unfolded (docs/benchmarks.md, "writes").
    /// </summary>
    public const string Fold = "SELECT bm25_corpus_fold()";

    /// <summary>
    /// Functions and triggers, created in the schema of the search_path's first entry. SET search_path FROM CURRENT
    /// pins that schema inside the functions, so a writer with another search_path still updates this table's postings.
    /// </summary>
    public static IReadOnlyList<string> InstallStatements { get; } =
    [
        Function("bm25_documents_inserted", AddPostings("new_documents")),
        Function("bm25_documents_deleted", RemovePostings("old_documents")),
        Function("bm25_documents_updated",
            RemovePostings(Changed("old_documents", "new_documents")) + "\n" + AddPostings(Changed("new_documents", "old_documents"))),
        Function("bm25_documents_truncated", "TRUNCATE document_terms, bm25_corpus;"),
        Trigger("bm25_after_insert", "INSERT", "REFERENCING NEW TABLE AS new_documents", "bm25_documents_inserted"),
        Trigger("bm25_after_delete", "DELETE", "REFERENCING OLD TABLE AS old_documents", "bm25_documents_deleted"),
        Trigger("bm25_after_update", "UPDATE", "REFERENCING OLD TABLE AS old_documents NEW TABLE AS new_documents", "bm25_documents_updated"),
        Trigger("bm25_after_truncate", "TRUNCATE", "", "bm25_documents_truncated"),
        """
        CREATE OR REPLACE FUNCTION bm25_corpus_fold() RETURNS void LANGUAGE sql SET search_path FROM CURRENT AS $$
        WITH folded AS (DELETE FROM bm25_corpus RETURNING document_count, total_length)
        INSERT INTO bm25_corpus (document_count, total_length)
        SELECT sum(document_count), sum(total_length) FROM folded HAVING count(*) > 0
        $$
        """,
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
