using System.Globalization;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson06;

/// <summary>The keyword leg: Okapi BM25 over a postings table, the triggers that keep it right, and BM25 as sparse vectors.</summary>
public sealed partial class HybridSearchLesson
{
    /// <summary>The question's terms: the lexemes to_tsvector makes of it, with the parser and dictionary that built content_tsv.</summary>
    private const string QueryTerms = "SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('english', @query))) AS lexeme";

    /// <summary>What BM25 knows of each term of the question: in how many documents it occurs (df), and its idf.</summary>
    public const string TermStatistics = $"""
        WITH terms AS ({QueryTerms}),
        corpus AS (SELECT sum(document_count)::float8 AS n FROM bm25_corpus)
        SELECT terms.lexeme, count(t.document_id) AS df,
               ln(1 + (corpus.n - count(t.document_id) + 0.5) / (count(t.document_id) + 0.5)) AS idf
        FROM terms CROSS JOIN corpus
        LEFT JOIN document_terms t ON t.lexeme = terms.lexeme
        GROUP BY terms.lexeme, corpus.n
        ORDER BY idf DESC, terms.lexeme
        """;

    /// <summary>
    /// Okapi BM25, written out: for each query term a document holds, idf x tf x (k1 + 1) / (tf + k1 x (1 - b + b x
    /// length / average length)), summed. Every figure comes from the postings (document_terms: lexeme, document, tf,
    /// document length) and bm25_corpus (N and the total length, the sums of its rows: each write statement inserts
    /// one, so writers never update a shared row): the documents themselves are not read.
    /// </summary>
    public const string Bm25 = $"""
        WITH terms AS ({QueryTerms}),
        corpus AS (
            SELECT sum(document_count)::float8 AS n, sum(total_length)::float8 / sum(document_count) AS average_length
            FROM bm25_corpus),
        df AS (
            SELECT lexeme, count(*)::float8 AS df
            FROM document_terms
            WHERE lexeme IN (SELECT lexeme FROM terms)
            GROUP BY lexeme)
        SELECT t.document_id AS id, d.title,
               sum(ln(1 + (c.n - df.df + 0.5) / (df.df + 0.5))
                   * t.term_frequency * (@k1 + 1)
                   / (t.term_frequency + @k1 * (1 - @b + @b * t.document_length / c.average_length))) AS bm25
        FROM document_terms t
        JOIN df USING (lexeme)
        CROSS JOIN corpus c
        JOIN vector_documents d ON d.id = t.document_id
        GROUP BY t.document_id, d.title
        ORDER BY bm25 DESC, id
        """;

    /// <summary>The same terms, any of them (ORed), ranked by PostgreSQL's ts_rank_cd: how often and how close, not how rare.</summary>
    public const string TsRankAnyTerm = $"""
        WITH q AS (
            SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS query
            FROM ({QueryTerms}) terms)
        SELECT d.id, d.title, ts_rank_cd(d.content_tsv, q.query) AS ts_rank_cd
        FROM vector_documents d, q
        WHERE d.content_tsv @@ q.query
        ORDER BY ts_rank_cd DESC, d.id
        """;

    /// <summary>A document the triggers must index, with a term no other document holds.</summary>
    public const string NewTitle = "Error 42P01 After Renaming a Schema";

    public const string NewContent = "The migration renamed the schema but not the search_path, so every query failed with 42P01: the table existed, just not where PostgreSQL looked.";

    /// <summary>What the new document is searched by: words of its own, one of them rare in the corpus.</summary>
    public const string NewDocumentQuery = "renamed schema search_path";

    /// <summary>
    /// BM25 as pgvector sparse vectors. A lexicon numbers every lexeme of the corpus (one dimension each); a document
    /// becomes the sparsevec of its terms' BM25 weights (tf, k1 and b applied); the question becomes the sparsevec of
    /// its terms' idf. Their inner product is then the BM25 score, and &lt;#&gt; (the negative inner product) ranks by it.
    /// </summary>
    public const string SparseLexicon = """
        CREATE TEMP TABLE lexicon ON COMMIT DROP AS
            SELECT lexeme, row_number() OVER (ORDER BY lexeme)::int AS dimension
            FROM (SELECT DISTINCT lexeme FROM document_terms) terms
        """;

    public const string SparseDocuments = """
        CREATE TEMP TABLE bm25_vectors ON COMMIT DROP AS
            SELECT t.document_id AS id,
                   ('{' || string_agg(l.dimension || ':' ||
                        t.term_frequency * (@k1 + 1) / (t.term_frequency + @k1 * (1 - @b + @b * t.document_length / c.average_length)),
                        ',' ORDER BY l.dimension)
                    || '}/' || (SELECT count(*) FROM lexicon))::sparsevec AS weights
            FROM document_terms t
            JOIN lexicon l USING (lexeme)
            CROSS JOIN (SELECT sum(total_length)::float8 / sum(document_count) AS average_length FROM bm25_corpus) c
            GROUP BY t.document_id
        """;

    public const string SparseSearch = $"""
        WITH question AS (
            SELECT ('{"{"}' || coalesce(string_agg(l.dimension || ':' || ln(1 + (c.n - df.df + 0.5) / (df.df + 0.5)), ',' ORDER BY l.dimension), '')
                    || '{"}"}/' || (SELECT count(*) FROM lexicon))::sparsevec AS weights
            FROM (SELECT lexeme, count(*)::float8 AS df FROM document_terms
                  WHERE lexeme IN ({QueryTerms}) GROUP BY lexeme) df
            JOIN lexicon l USING (lexeme)
            CROSS JOIN (SELECT sum(document_count)::float8 AS n FROM bm25_corpus) c)
        SELECT v.id, (v.weights <#> question.weights) * -1 AS inner_product
        FROM bm25_vectors v, question
        ORDER BY v.weights <#> question.weights, v.id
        LIMIT 5
        """;

    private static NpgsqlParameter[] Bm25Arguments(string query) =>
        [new("query", query), new("k1", Bm25Parameters.DefaultK1), new("b", Bm25Parameters.DefaultB)];

    private static async Task Bm25Async(Lesson lesson, string question, CancellationToken cancellationToken)
    {
        var (k1, b) = (Bm25Parameters.DefaultK1, Bm25Parameters.DefaultB);
        lesson.Step("bm25", "Keyword search, any term: Okapi BM25",
            "Any of the question's lexemes may match; each one a document holds adds idf x tf x (k1 + 1) / (tf + k1 x (1 - b + b x length / average length)), " +
            "from df (how many of the N documents hold the lexeme) and lengths in lexemes.");
        // The statistics' queries, the table of the question's terms, and what k1 and b do to one term's weight (before idf,
        // computed from the formula for a few cases) are folded by default: the lines after them say what they show.
        double Weight(int tf, double relativeLength) => tf * (k1 + 1) / (tf + k1 * (1 - b + b * relativeLength));
        IReadOnlyList<IReadOnlyDictionary<string, object?>> corpus, terms;
        using (lesson.Detail())
        {
            corpus = await lesson.QueryAsync("SELECT sum(document_count) AS n, round(sum(total_length) / sum(document_count), 1) AS average_length FROM bm25_corpus", cancellationToken);
            terms = await lesson.QueryAsync(TermStatistics, null, [new NpgsqlParameter("query", question)], cancellationToken);
            lesson.Table(terms, ("lexeme", r => r["lexeme"]), ("df (documents holding it)", r => r["df"]), ("idf = ln(1 + (N - df + 0.5) / (df + 0.5))", r => Number(r["idf"], 3)));
            lesson.Table(new[] { 1, 2, 5, 20 },
                ("tf", tf => tf),
                ("half the average length", tf => Weight(tf, 0.5).ToString("0.00", CultureInfo.InvariantCulture)),
                ("average length", tf => Weight(tf, 1).ToString("0.00", CultureInfo.InvariantCulture)),
                ("twice the average length", tf => Weight(tf, 2).ToString("0.00", CultureInfo.InvariantCulture)));
        }

        lesson.Say($"N = {corpus[0]["n"]} documents, average length {corpus[0]["average_length"]} lexemes.");
        lesson.Say($"The question's lexemes, rarest first: {string.Join(", ", terms.Select(t => $"{t["lexeme"]} (df {t["df"]}, idf {Number(t["idf"], 3)})"))}.");
        lesson.Say("idf: a rare term says much, a common one little (never below zero in this form).", Tone.Aside);
        lesson.Say($"k1 = {k1} caps repetition (no count weighs past k1 + 1 = {k1 + 1}); b = {b} normalizes length (b = 0 would ignore it).", Tone.Aside);

        var bm25 = await lesson.QueryAsync(Bm25, null, Bm25Arguments(question), cancellationToken);
        IReadOnlyList<IReadOnlyDictionary<string, object?>> tsRank;
        using (lesson.Detail())
        {
            tsRank = await lesson.QueryAsync(TsRankAnyTerm, null, [new NpgsqlParameter("query", question)], cancellationToken);
        }

        var bm25Rank = bm25.Select((r, i) => (Id: (int)r["id"]!, Rank: i + 1, Score: Convert.ToDouble(r["bm25"], CultureInfo.InvariantCulture))).ToDictionary(r => r.Id);
        var tsRankRank = tsRank.Select((r, i) => (Id: (int)r["id"]!, Rank: i + 1, Score: Convert.ToDouble(r["ts_rank_cd"], CultureInfo.InvariantCulture))).ToDictionary(r => r.Id);
        var titles = bm25.Concat(tsRank).GroupBy(r => (int)r["id"]!).ToDictionary(g => g.Key, g => (string)g.First()["title"]!);
        // Each ranking's first three: enough to see where they disagree.
        var shown = bm25Rank.Values.Where(r => r.Rank <= 3).Select(r => r.Id)
            .Union(tsRankRank.Values.Where(r => r.Rank <= 3).Select(r => r.Id))
            .OrderBy(id => bm25Rank[id].Rank).ToList();
        lesson.Table(shown,
            ("title", id => titles[id]),
            ("BM25 rank", id => bm25Rank[id].Rank),
            ("BM25", id => bm25Rank[id].Score.ToString("0.0000", CultureInfo.InvariantCulture)),
            ("ts_rank_cd rank", id => tsRankRank[id].Rank),
            ("ts_rank_cd", id => tsRankRank[id].Score.ToString("0.0000", CultureInfo.InvariantCulture)));
        if (bm25.Count == 0)
        {
            lesson.Say("No document holds any term of the question.", Tone.Warning);
        }
        else
        {
            var first = (int)bm25[0]["id"]!;
            var top = tsRankRank.Values.Max(r => r.Score);
            var tied = tsRankRank.Values.Count(r => r.Score == top);
            lesson.Say($"Both match the same {bm25.Count} documents (any term) and order them differently: \"{titles[first]}\" is #1 by BM25 and #{tsRankRank[first].Rank} by ts_rank_cd, " +
                       $"which gives {tied} document{(tied == 1 ? "" : "s")} its top score {top.ToString("0.0000", CultureInfo.InvariantCulture)}: " +
                       "it weighs how often and how close terms occur, not how rare. BM25's idf is the difference.");
        }

        // How the library does it faster: for reading later.
        using (lesson.Detail())
        {
            lesson.Say("The library's SearchSql.Keyword computes the same scores without scoring every document that holds a query term: df is the sum of the term's rows in bm25_document_frequencies (kept by the triggers, as N is), each term's postings are read in the order they can weigh the most (length / tf, an index column), and reading stops where no unread posting can lift a document into the best ones (MaxScore); where the terms have few postings for the rows asked for, it reads them all instead, which is then cheaper and as exact (docs/benchmarks.md measures both). It also takes a source filter and joins only the best rows to the table. The step after next shows the two give the same scores.", Tone.Aside);
        }
    }

    private static async Task TriggersAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.DeepDive("bm25-triggers", "The statistics follow every write",
            "Statement-level triggers on vector_documents keep the postings and bm25_corpus right on INSERT, UPDATE, DELETE and TRUNCATE, whoever writes: a COPY of 100,000 rows runs one INSERT ... SELECT into the postings, from the transition table of new rows. " +
            "Here a new document is inserted inside a transaction, found by BM25, then rolled back.");
        var triggers = await lesson.QueryAsync(
            "SELECT tgname AS trigger, pg_get_triggerdef(oid) AS definition FROM pg_trigger WHERE tgrelid = 'vector_documents'::regclass AND NOT tgisinternal ORDER BY tgname",
            cancellationToken);
        lesson.Table(triggers, ("trigger", r => r["trigger"]), ("definition", r => r["definition"]));
        var function = await lesson.QueryAsync("SELECT pg_get_functiondef('bm25_documents_inserted'::regproc) AS definition", cancellationToken);
        lesson.Code(function[0]["definition"]?.ToString() ?? "", "SQL: bm25_documents_inserted(), as installed");

        const string State = """
            SELECT (SELECT count(*) FROM vector_documents WHERE title = @title) AS documents,
                   (SELECT count(*) FROM document_terms t JOIN vector_documents d ON d.id = t.document_id WHERE d.title = @title) AS postings,
                   (SELECT count(*) FROM bm25_corpus) AS corpus_rows,
                   (SELECT sum(document_count) FROM bm25_corpus) AS document_count,
                   (SELECT sum(total_length) FROM bm25_corpus) AS total_length
            """;
        var rows = new List<(string When, IReadOnlyDictionary<string, object?> State, string Rank, string Score)>();
        async Task RecordAsync(string when, NpgsqlConnection? connection)
        {
            var state = (await lesson.QueryAsync(State, connection, [new NpgsqlParameter("title", NewTitle)], cancellationToken))[0];
            var found = await lesson.QueryAsync(Bm25, connection, Bm25Arguments(NewDocumentQuery), cancellationToken);
            var at = found.Select((r, i) => (Row: r, Rank: i + 1)).FirstOrDefault(r => (string)r.Row["title"]! == NewTitle);
            rows.Add(at.Row is null
                ? (when, state, "not found", "")
                : (when, state, at.Rank.ToString(CultureInfo.InvariantCulture), Number(at.Row["bm25"], 4)));
        }

        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await RecordAsync("before", connection);
            await lesson.QueryAsync("INSERT INTO vector_documents (title, content, source) VALUES (@title, @content, 'blog') RETURNING id", connection,
                [new NpgsqlParameter("title", NewTitle), new NpgsqlParameter("content", NewContent)], cancellationToken);
            await RecordAsync("after the INSERT, same transaction", connection);
            lesson.Sql("ROLLBACK");
            await transaction.RollbackAsync(cancellationToken);
        }

        await RecordAsync("after ROLLBACK", null);
        lesson.Table(rows,
            ("when", r => r.When),
            ("documents titled so", r => r.State["documents"]),
            ("its postings", r => r.State["postings"]),
            ("bm25_corpus rows", r => r.State["corpus_rows"]),
            ("bm25_corpus documents", r => r.State["document_count"]),
            ("total length", r => r.State["total_length"]),
            ($"BM25 rank for \"{NewDocumentQuery}\"", r => r.Rank),
            ("BM25", r => r.Score));
        lesson.Say("The document, its postings and the corpus counts were written and undone together: the triggers run inside the writer's transaction. " +
                   "The INSERT added a row to bm25_corpus (+1 document, +its length) instead of updating a shared one, so writers of other documents never wait for it; the figures are the rows' sums, and VectorStore.BuildIndexesAsync folds the rows into one after a load.", Tone.Aside);
    }

    private static async Task SparseVectorsAsync(Lesson lesson, string question, CancellationToken cancellationToken)
    {
        lesson.DeepDive("sparse-vectors", "The same scores as sparse vectors",
            "pgvector's sparsevec stores only the non-zero dimensions. Number every lexeme of the corpus (a lexicon): a document becomes the sparse vector of its terms' BM25 weights (tf, k1 and b applied), the question the sparse vector of its terms' idf, and their inner product is the BM25 score. In temporary tables, in a transaction that is rolled back.");
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await lesson.ExecuteAsync(SparseLexicon, connection, cancellationToken);
        await lesson.QueryAsync(SparseDocuments, connection, [new NpgsqlParameter("k1", Bm25Parameters.DefaultK1), new NpgsqlParameter("b", Bm25Parameters.DefaultB)], cancellationToken);
        var sizes = await lesson.QueryAsync(
            "SELECT (SELECT count(*) FROM lexicon) AS dimensions, (SELECT count(*) FROM bm25_vectors) AS vectors, round(count(*)::numeric / count(DISTINCT document_id), 1) AS non_zero FROM document_terms",
            connection, [], cancellationToken);
        lesson.Say($"{sizes[0]["vectors"]} documents as sparsevec({sizes[0]["dimensions"]}), {sizes[0]["non_zero"]} non-zero dimensions each on average.");
        var sparse = await lesson.QueryAsync(SparseSearch, connection, [new NpgsqlParameter("query", question)], cancellationToken);
        var scanned = await lesson.QueryAsync($"SELECT (SELECT count(*) FROM bm25_vectors) AS vectors, (SELECT count(*) FROM document_terms WHERE lexeme IN ({QueryTerms})) AS postings",
            connection, [new NpgsqlParameter("query", question)], cancellationToken);
        IReadOnlyList<IReadOnlyDictionary<string, object?>> postings;
        using (lesson.QuietSql())
        {
            postings = await lesson.QueryAsync(Bm25, connection, Bm25Arguments(question), cancellationToken);
        }

        await transaction.RollbackAsync(cancellationToken);
        var library = await HybridSearch.KeywordAsync(lesson.DataSource, question, limit: 100, cancellationToken: cancellationToken);
        var byPostings = postings.ToDictionary(r => (int)r["id"]!, r => (Title: (string)r["title"]!, Score: Convert.ToDouble(r["bm25"], CultureInfo.InvariantCulture)));
        var byLibrary = library.ToDictionary(h => h.Id, h => h.Score);
        var matched = sparse.Where(r => byPostings.ContainsKey((int)r["id"]!)).ToList();
        lesson.Table(matched,
            ("title", r => byPostings[(int)r["id"]!].Title),
            ("sparsevec inner product", r => Number(r["inner_product"], 7)),
            ("BM25 over the postings (this lesson's SQL)", r => byPostings[(int)r["id"]!].Score.ToString("0.0000000", CultureInfo.InvariantCulture)),
            ("SearchSql.Keyword (the library's)", r => byLibrary.TryGetValue((int)r["id"]!, out var s) ? s.ToString("0.0000000", CultureInfo.InvariantCulture) : "not found"));
        var worst = matched.Count == 0 ? 0 : matched.Max(r => Math.Abs(Convert.ToDouble(r["inner_product"], CultureInfo.InvariantCulture) - byPostings[(int)r["id"]!].Score));
        lesson.Say(matched.Count == 0
            ? ("No document holds any term of the question.", Tone.Warning)
            : ($"Largest difference: {worst.ToString("0.0e0", CultureInfo.InvariantCulture)}. sparsevec stores 32-bit floats, the postings query computes in 64-bit: equal to float precision.", Tone.Plain));
        lesson.Table(new[]
            {
                ("rows one query reads", $"{scanned[0]["vectors"]} (every document's vector is multiplied)", $"{scanned[0]["postings"]} (only the question's terms)"),
                ("k1, b", "baked into every stored vector", "query parameters"),
                ("after an INSERT", "N and the average length change: every vector's weights go stale", "the new document's postings, and one row inserted into bm25_corpus"),
                ("an index for it", "HNSW on sparsevec (at most 1,000 non-zero dimensions), approximate", "a B-tree on the lexeme, exact"),
            },
            ("", r => r.Item1), ("sparsevec", r => r.Item2), ("postings table (the module's choice)", r => r.Item3));
    }

    private static string Number(object? value, int decimals) =>
        value is null ? "" : Convert.ToDouble(value, CultureInfo.InvariantCulture).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
