namespace PgVectorModule.Exercises.Lesson06;

/// <summary>
/// Lesson 06's exercises, over <c>docs(id bigint, title text, body text, embedding vector(8), tsv tsvector)</c>, where
/// <c>tsv</c> is <c>to_tsvector('english', coalesce(title, '') || ' ' || body)</c>. Check: <c>scripts/check.sh 06</c>.
/// </summary>
public static class HybridSearchExercises
{
    /// <summary>
    /// 06.1: a search box. The ids of the docs that match what the user typed, read the way a search engine reads it
    /// (<c>websearch_to_tsquery('english', ...)</c>), best first by <c>ts_rank_cd(tsv, query)</c>, then by id; at most 10.
    /// Whatever the user types, it reaches PostgreSQL as a parameter: never as part of the SQL text. No input makes it throw.
    /// </summary>
    public static Task<List<long>> SearchBoxAsync(NpgsqlDataSource dataSource, string userText)
    {
        // TODO: dataSource.CreateCommand("SELECT ... $1 ..."), the text as a parameter.
        throw new NotImplementedException("TODO: write SearchBoxAsync");
    }

    /// <summary>
    /// 06.2: reciprocal rank fusion of two legs, 20 candidates each. The keyword leg: docs where
    /// <c>tsv @@ websearch_to_tsquery('english', $1)</c>, ranked by <c>ts_rank_cd</c> descending, then id. The vector leg:
    /// docs by <c>embedding &lt;=&gt; $2</c>, then id. Ranks start at 1; a doc scores the sum over the legs it is in of
    /// <c>1.0 / (60 + rank)</c>. Returns the top <c>$3</c>: columns <c>id</c>, <c>score</c>, best first, then by id.
    /// </summary>
    public const string RrfSql = """
        -- TODO: WITH keyword AS (...), semantic AS (...) SELECT ... FROM keyword FULL JOIN semantic ...
        """;

    /// <summary>
    /// 06.3: BM25 for one term <c>$1</c>, by hand, over <c>postings(term text, doc_id bigint, tf int)</c> (how often the term
    /// occurs in each doc) and <c>doc_lengths(doc_id bigint, length int)</c> (every doc, with its length in terms).
    /// score = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl)), with k1 = 1.2, b = 0.75,
    /// idf = ln(1 + (N - n + 0.5) / (n + 0.5)), N the number of docs, n the number holding the term, avgdl their mean
    /// length. Columns <c>doc_id</c>, <c>score</c> for every doc holding the term, best first, then by doc_id.
    /// </summary>
    public const string Bm25TermSql = """
        -- TODO: SELECT doc_id, ... AS score FROM postings JOIN doc_lengths ... WHERE term = $1 ...
        """;

    /// <summary>
    /// 06.4: adds the column <c>tsv</c> to <c>docs(id, title, body)</c> (title may be NULL), a tsvector that PostgreSQL keeps
    /// up to date itself from <c>to_tsvector('english', ...)</c> of the title and the body, and a GIN index on it, so that
    /// <c>WHERE tsv @@ websearch_to_tsquery('english', $1)</c> finds new and changed rows and uses the index.
    /// </summary>
    public const string SearchColumnSql = """
        -- TODO: ALTER TABLE docs ADD COLUMN tsv ... GENERATED ALWAYS AS (...) STORED; CREATE INDEX ... USING gin ...
        """;
}
