using System.Globalization;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson06;

/// <summary>
/// Lesson 06: full-text search and vector search fail in opposite places. The smallest hybrid search first (two CTEs
/// and a join), then what makes one good and fast (HybridSearchLesson.Bm25.cs): BM25 for the keyword leg, kept right
/// by triggers, the same scores as pgvector sparse vectors; then the library's fused queries, their plans on both
/// indexes beside the shape that loses one, and every method side by side.
/// </summary>
public sealed partial class HybridSearchLesson : ILesson
{
    public const string DefaultQuestion = "what does error 42P01 mean?";

    /// <summary>What a user types into a search box: one word, which every-term-required full-text search can find.</summary>
    public const string SearchBoxQuery = "42P01";

    /// <summary>
    /// Each leg's candidates: a small share of the corpus. The library's default of 100 suits thousands of documents; of
    /// 180, 100 would be more than half, and nearly every document would reach both lists.
    /// </summary>
    public const int Candidates = 20;

    private static readonly HybridOptions Fusion = new() { Candidates = Candidates };

    /// <summary>Queries with a known right answer in the sample corpus: one each where one method is blind.</summary>
    public static IReadOnlyList<(string Query, string Kind, string Expected)> Showcase { get; } =
    [
        ("automatic failover to a standby replica", "paraphrase", "Surviving the Loss of the Main Server With a Continuously Updated Twin"),
        ("database sharding", "paraphrase", "Spreading One Huge Table's Records Across Many Servers by Tenant"),
        ("42P01", "exact term", "The Day 42P01 undefined_table Broke Our Deploy"),
        ("Npgsql 10", "exact term", "Upgrading to EF Core 10 and Npgsql 10 in One Sprint"),
    ];

    /// <summary>
    /// Reciprocal rank fusion as small as the idea (pgvector-dotnet's Hybrid example, on this table): the nearest
    /// documents by meaning, the best full-text matches, each numbered by rank, joined, and 1 / (k + rank) summed. A
    /// document only one leg found still scores; one both found scores twice.
    /// </summary>
    public const string MinimalRrf = """
        WITH semantic AS (
            SELECT id, rank() OVER (ORDER BY embedding <=> @embedding) AS rank
            FROM vector_documents
            ORDER BY embedding <=> @embedding
            LIMIT 20
        ),
        keyword AS (
            SELECT id, rank() OVER (ORDER BY ts_rank_cd(content_tsv, query) DESC) AS rank
            FROM vector_documents, websearch_to_tsquery('english', @query) query
            WHERE content_tsv @@ query
            ORDER BY ts_rank_cd(content_tsv, query) DESC
            LIMIT 20
        )
        SELECT d.title, s.rank AS vector_rank, k.rank AS keyword_rank,
               coalesce(1.0 / (60 + s.rank), 0.0) + coalesce(1.0 / (60 + k.rank), 0.0) AS score
        FROM semantic s
        FULL OUTER JOIN keyword k ON s.id = k.id
        JOIN vector_documents d ON d.id = coalesce(s.id, k.id)
        ORDER BY score DESC, d.id
        LIMIT 5
        """;

    public static LessonInfo Info => LessonCatalog.Get("06");

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        var question = SearchLessonSetup.Question(lesson, DefaultQuestion);

        lesson.Step("load-corpus", "Load the corpus", "This lesson's own copy of the sample corpus: content_tsv generated from title and content, the HNSW, IVFFlat and GIN indexes, and BM25's postings table with its triggers (lesson 04 shows each).");
        await using var db = await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, cancellationToken);
        // The check that the table holds vectors of this model (lesson 04 records it): its query is folded by default.
        using (lesson.Detail())
        {
            await EmbeddingGuard.EnsureCompatibleAsync(db, embedder.Identity, cancellationToken);
        }

        var embedding = await SearchLessonSetup.EmbedQuestionAsync(lesson, embedder, question, cancellationToken);

        await MinimalRrfAsync(lesson, embedder, question, embedding, cancellationToken);
        await Bm25Async(lesson, question, cancellationToken);
        await TriggersAsync(lesson, cancellationToken);
        await SparseVectorsAsync(lesson, question, cancellationToken);
        await FusedAsync(lesson, question, embedding, cancellationToken);
        await PlansAsync(lesson, question, embedding, cancellationToken);
        await SideBySideAsync(lesson, embedder, db, question, cancellationToken);

        lesson.Step("why-fusion-wins", "Why fusion wins", "Each method is right where the other is blind, and a fused list needs only one of them to know.");
        lesson.Say("- Keyword search matches the words themselves: an error code, a version, a product name is found exactly, but a paraphrase with no shared word is invisible to it.");
        lesson.Say("- Vector search matches meaning: paraphrases and synonyms land close, but '42P01' and '40P01' look nearly alike to the model.");
        lesson.Say("- RRF needs no scores at all, only ranks; weighted fusion needs both lists' scores on one scale (each list's min-max here), and its weight says which leg you trust.");
        lesson.Say("- Fusion is not magic: a weak keyword match (one common word) still tops its list and can pull a wrong document up. Measure on your own questions: `bench eval` scores every method here on a judged dataset (docs/benchmarks.md).");
    }

    private static async Task MinimalRrfAsync(Lesson lesson, TextEmbedder embedder, string question, Vector embedding, CancellationToken cancellationToken)
    {
        lesson.Step("smallest-hybrid", "The smallest hybrid search",
            "Two CTEs and a join: the 20 nearest by meaning (the query vector a parameter in the ORDER BY) and the 20 best full-text matches (websearch_to_tsquery, ranked by ts_rank_cd), each numbered by rank, joined, and 1 / (60 + rank) added up: reciprocal rank fusion. First a search-box word, then your question.");
        var searchBox = await lesson.QueryAsync(MinimalRrf, null,
            [new NpgsqlParameter("query", SearchBoxQuery), new NpgsqlParameter("embedding", await embedder.EmbedQueryAsync(SearchBoxQuery, cancellationToken))],
            cancellationToken);
        ShowMinimal(lesson, searchBox);
        int Count(Func<IReadOnlyDictionary<string, object?>, bool> which) => searchBox.Count(which);
        lesson.Say($"\"{SearchBoxQuery}\": {Count(r => r["keyword_rank"] is null)} found by the vector leg only, {Count(r => r["vector_rank"] is null)} by the keyword leg only, {Count(r => r["vector_rank"] is not null && r["keyword_rank"] is not null)} by both: " +
                   "the keyword leg lifts the post holding the code, which the model ranked lower.");

        IReadOnlyList<IReadOnlyDictionary<string, object?>> asked;
        using (lesson.QuietSql())
        {
            asked = await lesson.QueryAsync(MinimalRrf, null, [new NpgsqlParameter("query", question), new NpgsqlParameter("embedding", embedding)], cancellationToken);
        }

        var keywordFound = asked.Count(r => r["keyword_rank"] is not null);
        if (keywordFound > 0)
        {
            ShowMinimal(lesson, asked);
        }

        // The tsquery the keyword leg searched, and the fused table when it is the vector list alone: folded by default.
        IReadOnlyList<IReadOnlyDictionary<string, object?>> tsquery;
        using (lesson.Detail())
        {
            if (keywordFound == 0)
            {
                ShowMinimal(lesson, asked);
            }

            tsquery = await lesson.QueryAsync("SELECT websearch_to_tsquery('english', @query)::text AS tsquery", null, [new NpgsqlParameter("query", question)], cancellationToken);
        }

        lesson.Say(keywordFound == 0
            ? $"Your question: the keyword leg found nothing. websearch_to_tsquery requires every term ({tsquery[0]["tsquery"]?.ToString() ?? ""}), and no document holds them all, so this fusion is the vector list alone."
            : $"Your question: the keyword leg ({tsquery[0]["tsquery"]?.ToString() ?? ""}, every term required) placed {keywordFound} of these.");
        lesson.Say("The next steps give the keyword leg what a question needs: any term may match, and a rare term counts for more than a common one.", Tone.Aside);
    }

    private static void ShowMinimal(Lesson lesson, IReadOnlyList<IReadOnlyDictionary<string, object?>> rows) =>
        lesson.Table(rows,
            ("title", r => r["title"]),
            ("vector rank", r => r["vector_rank"]),
            ("keyword rank", r => r["keyword_rank"]),
            ("RRF score", r => Convert.ToDouble(r["score"], CultureInfo.InvariantCulture).ToString("0.0000", CultureInfo.InvariantCulture)));

    private static async Task FusedAsync(Lesson lesson, string question, Vector embedding, CancellationToken cancellationToken)
    {
        lesson.Step("refined-hybrid", "Hybrid search, refined: BM25 and HNSW, fused",
            $"The library's fused queries (SearchSql, run by HybridSearch), one statement each: BM25 over the postings as the keyword leg, the query vector a parameter in the vector leg's ORDER BY, hnsw.ef_search raised to the candidates (a scan returns at most ef_search rows), both legs' ranks kept. RRF k = {Fusion.RrfK}; weighted {Fusion.VectorWeight:0.0} x vector + {1 - Fusion.VectorWeight:0.0} x keyword.");
        lesson.Code($"""
            var options = new HybridOptions {"{"} Candidates = {Candidates} {"}"};   // RrfK {Fusion.RrfK}, VectorWeight {Fusion.VectorWeight:0.0}, BM25 k1 {Fusion.Bm25.K1} b {Fusion.Bm25.B}
            var rrf = await HybridSearch.ReciprocalRankFusionAsync(dataSource, question, embedding, options: options);
            var weighted = await HybridSearch.WeightedAsync(dataSource, question, embedding, options: options);
            """);
        // The library's whole statement (over 100 lines) is for reading later: the smallest search above shows its shape.
        using (lesson.Detail())
        {
            lesson.Sql(SearchSql.ReciprocalRankFusion, FusedParameters(question, "k", Fusion.RrfK.ToString(CultureInfo.InvariantCulture)));
        }

        ShowHits(lesson, await HybridSearch.ReciprocalRankFusionAsync(lesson.DataSource, question, embedding, options: Fusion, cancellationToken: cancellationToken), "RRF score");
        lesson.Say($"k = {Fusion.RrfK}, not the literature's 60 (used above): the library's default for two lists, chosen on SciFact's train judgments (HybridOptions says why).", Tone.Aside);
        lesson.Say("Weighted: each leg's scores min-max scaled to 0..1 (cosine similarity and BM25 live on different scales), then summed by weight.");
        ShowHits(lesson, await HybridSearch.WeightedAsync(lesson.DataSource, question, embedding, options: Fusion, cancellationToken: cancellationToken), "weighted score");
    }

    private static string[] FusedParameters(string question, string name, string value) =>
    [
        $"@query = '{question}'", "@embedding = (the question's vector)", $"@{name} = {value}", $"@candidates = {Candidates}", "@limit = 5",
        $"@k1 = {Fusion.Bm25.K1}", $"@b = {Fusion.Bm25.B}", "@source = NULL",
    ];

    /// <summary>
    /// The anti-pattern, made from the library's own statement: the question's inputs written once in a CTE that both
    /// legs read. A CTE referenced twice is materialized, so the vector leg orders by a column of it, a value the
    /// planner cannot see when it plans, and no index can answer that ORDER BY.
    /// </summary>
    public static string InputsInCte(string fused) => Rewrite(fused,
        ("WITH RECURSIVE vector AS (", "WITH RECURSIVE q AS (SELECT @embedding::vector AS e, @query::text AS text),\nvector AS ("),
        ("embedding <=> @embedding", "embedding <=> q.e"),
        ("FROM vector_documents\n", "FROM vector_documents, q\n"),
        ("to_tsvector('english', @query)", "to_tsvector('english', (SELECT text FROM q))"));

    private static string Rewrite(string sql, params (string From, string To)[] edits)
    {
        foreach (var (from, to) in edits)
        {
            // Each edit must find its text: a library statement that changed shape fails here, not with a misleading plan.
            if (!sql.Contains(from, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"The fused statement no longer contains \"{from}\".");
            }

            sql = sql.Replace(from, to, StringComparison.Ordinal);
        }

        return sql;
    }

    private static async Task PlansAsync(Lesson lesson, string question, Vector embedding, CancellationToken cancellationToken)
    {
        lesson.Step("one-plan", "One plan, both indexes",
            "Left to its estimates, the planner reads and sorts every row for the vector leg of a small table (below about 5,000 rows; docs/benchmarks.md), so HybridSearch sets enable_seqscan = off beside its ef_search, pgvector's own advice, and jit = off: up to PostgreSQL 17, enable_seqscan = off works by pricing every sequential scan left (bm25_corpus's) at 10^10, and a plan that dear is JIT-compiled first, for about a second. " +
            "Here: the same setting, the IVFFlat index dropped (it would answer instead of HNSW), in a rolled-back transaction; then the same RRF statement with the question's inputs in one CTE that both legs read.");
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        NpgsqlParameter[] Parameters(string name, object value) =>
        [
            new("query", question), new("embedding", embedding), new(name, value), new("candidates", Candidates), new("limit", 5),
            new("k1", Fusion.Bm25.K1), new("b", Fusion.Bm25.B), new("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = DBNull.Value },
        ];

        // The set-up the narration describes, and the three plans in full, are for reading later: the table below says what each leg did.
        List<(string Query, string Plan)> plans;
        using (lesson.Detail())
        {
            await lesson.ExecuteAsync($"DROP INDEX {VectorDocumentConfiguration.IvfFlatIndex}", connection, cancellationToken);
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            await lesson.ExecuteAsync("SET LOCAL jit = off", connection, cancellationToken);
            plans =
            [
                ("RRF", await lesson.ExplainAsync(SearchSql.ReciprocalRankFusion, connection, Parameters("k", Fusion.RrfK), cancellationToken)),
                ("weighted", await lesson.ExplainAsync(SearchSql.Weighted, connection, Parameters("vector_weight", Fusion.VectorWeight), cancellationToken)),
                ("RRF, inputs in a CTE", await lesson.ExplainAsync(InputsInCte(SearchSql.ReciprocalRankFusion), connection, Parameters("k", Fusion.RrfK), cancellationToken)),
            ];
        }

        await transaction.RollbackAsync(cancellationToken);

        lesson.Table(plans,
            ("statement", p => p.Query),
            ("vector leg", p => VectorLeg(p.Plan)),
            ("keyword leg", p => p.Plan.Contains($"Index Only Scan using {DocumentTermConfiguration.LexemeIndex}", StringComparison.Ordinal)
                ? $"Index Only Scan using {DocumentTermConfiguration.LexemeIndex}"
                : "another plan"),
            ("vector_documents rows the vector leg read", p => VectorLegRows(p.Plan)));
        lesson.Say("Bind the query vector as a parameter right in the ORDER BY. With the inputs in a CTE both legs read, PostgreSQL materializes it and the vector leg reads and sorts every row; the keyword leg keeps its index. (A CTE read once is inlined and keeps the index: the trap springs at the second reference.)", Tone.Key);
    }

    private static string VectorLeg(string plan) =>
        plan.Contains($"Index Scan using {VectorDocumentConfiguration.HnswIndex}", StringComparison.Ordinal)
            ? $"Index Scan using {VectorDocumentConfiguration.HnswIndex}"
            : plan.Contains("Seq Scan on vector_documents", StringComparison.Ordinal) ? "Seq Scan on vector_documents, then Sort" : "another plan";

    /// <summary>The actual rows of the vector leg's scan of vector_documents: the index scan's, or the sequential scan's.</summary>
    private static string VectorLegRows(string plan)
    {
        var scan = System.Text.RegularExpressions.Regex.Match(plan,
            $@"(Index Scan using {VectorDocumentConfiguration.HnswIndex}|Seq Scan on vector_documents)[^\n]*actual rows=(\d+)");
        return scan.Success ? scan.Groups[2].Value : "?";
    }

    private static async Task SideBySideAsync(Lesson lesson, TextEmbedder embedder, SearchDbContext db, string question, CancellationToken cancellationToken)
    {
        lesson.Step("side-by-side", "Side by side", "The first result of each method, for queries where one method is blind: paraphrases (few or no shared words) and exact terms (codes and names a model blurs), then your question. A check marks the right document.");
        var rows = new List<string[]>();
        var right = new int[4];
        // The same statements as the steps above, run once per query: only their first results are shown, in one table.
        using (lesson.QuietSql())
        {
            foreach (var (query, kind, expected) in Showcase.Append((question, "your question", "")))
            {
                var queryEmbedding = await embedder.EmbedQueryAsync(query, cancellationToken);
                var tops = new[]
                {
                    (await HybridSearch.KeywordAsync(lesson.DataSource, query, limit: 1, cancellationToken: cancellationToken)).FirstOrDefault()?.Title,
                    (await VectorSearch.Nearest(db, queryEmbedding, limit: 1).ToListAsync(cancellationToken)).FirstOrDefault()?.Title,
                    (await HybridSearch.WeightedAsync(lesson.DataSource, query, queryEmbedding, limit: 1, options: Fusion, cancellationToken: cancellationToken)).FirstOrDefault()?.Title,
                    (await HybridSearch.ReciprocalRankFusionAsync(lesson.DataSource, query, queryEmbedding, limit: 1, options: Fusion, cancellationToken: cancellationToken)).FirstOrDefault()?.Title,
                };
                for (var m = 0; m < tops.Length; m++)
                {
                    right[m] += expected.Length > 0 && tops[m] == expected ? 1 : 0;
                }

                rows.Add([query, kind, .. tops.Select(t => t is null ? "(nothing)" : (expected.Length == 0 ? "" : t == expected ? "✓ " : "✗ ") + t)]);
            }
        }

        // The kind of each showcase query goes in its cell: five columns leave the titles room.
        lesson.Table(rows, ("query", r => r[1] == "your question" ? r[0] : $"{r[0]} ({r[1]})"), ("keyword (BM25)", r => r[2]), ("vector", r => r[3]), ("weighted", r => r[4]), ("RRF", r => r[5]));
        lesson.Say($"Right first result on the {Showcase.Count} showcase queries: keyword {right[0]}, vector {right[1]}, weighted {right[2]}, RRF {right[3]}.");
    }

    /// <summary>Results as a table, with where each leg ranked each hit (NULL: not among that leg's candidates).</summary>
    private static void ShowHits(Lesson lesson, IReadOnlyList<SearchHit> hits, string scoreName) =>
        lesson.Table(hits,
            ("title", h => h.Title),
            ("source", h => h.Source),
            (scoreName, h => h.Score.ToString("0.0000", CultureInfo.InvariantCulture)),
            ("vector rank", h => h.VectorRank),
            ("keyword rank", h => h.KeywordRank));
}
