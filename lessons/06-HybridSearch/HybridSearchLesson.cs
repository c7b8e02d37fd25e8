using System.Globalization;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Lessons.Lesson06;

/// <summary>
/// Lesson 06: full-text search and vector search fail in opposite places; two ways to fuse them (normalized
/// weighted scores, reciprocal rank fusion), each one SQL statement, compared side by side.
/// </summary>
public sealed class HybridSearchLesson : ILesson
{
    public const string DefaultQuestion = "what does error 42P01 mean?";
    public const double VectorWeight = HybridOptions.DefaultVectorWeight;

    /// <summary>
    /// Each leg's candidates: a small share of the corpus. The library's default of 100 suits thousands of documents; of
    /// 180, 100 would be more than half, and nearly every document would reach both lists.
    /// </summary>
    public const int Candidates = 20;

    private static readonly HybridOptions Fusion = new() { VectorWeight = VectorWeight, Candidates = Candidates };

    /// <summary>Queries with a known right answer in the sample corpus: one each where one method is blind.</summary>
    public static IReadOnlyList<(string Query, string Kind, string Expected)> Showcase { get; } =
    [
        ("automatic failover to a standby replica", "paraphrase", "Surviving the Loss of the Main Server With a Continuously Updated Twin"),
        ("database sharding", "paraphrase", "Spreading One Huge Table's Records Across Many Servers by Tenant"),
        ("42P01", "exact term", "The Day 42P01 undefined_table Broke Our Deploy"),
        ("Npgsql 10", "exact term", "Upgrading to EF Core 10 and Npgsql 10 in One Sprint"),
    ];

    public static LessonInfo Info => LessonCatalog.Get("06");

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        var question = SearchLessonSetup.Question(lesson, DefaultQuestion);

        lesson.Step("Load the corpus", "This lesson's own copy of the sample corpus, with content_tsv (generated from title and content) and its GIN index.");
        await using var db = await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, cancellationToken);
        await EmbeddingGuard.EnsureCompatibleAsync(db, embedder.Identity, cancellationToken);
        var queryParameter = () => new NpgsqlParameter("query", question);

        lesson.Step("Keyword search, every term required", "websearch_to_tsquery reads a search box the way people type into one (\"phrases\", or, -not), and never fails on odd input. But it ANDs every remaining term.");
        var strict = await lesson.QueryAsync($"SELECT {SearchSql.AllTermsQuery}::text AS tsquery", null, [queryParameter()], cancellationToken);
        lesson.Say($"tsquery: [bold]{Markup.Escape(strict[0]["tsquery"]?.ToString() ?? "")}[/]");
        IReadOnlyList<SearchHit> allTerms;
        using (lesson.QuietSql())
        {
            allTerms = await HybridSearch.KeywordAllTermsAsync(lesson.DataSource, question, cancellationToken: cancellationToken);
        }

        lesson.Sql(SearchSql.KeywordAllTerms, [$"@query = '{question}'", "@limit = 5"]);
        ShowHits(lesson, allTerms, "ts_rank_cd");
        lesson.Say(allTerms.Count == 0
            ? "[yellow]Nothing: no document holds every one of those words. A long question would usually come back empty.[/]"
            : "[grey]Some documents hold every term; a longer question would soon find none.[/]");

        lesson.Step("Keyword search, any term, BM25", "The question's own lexemes, any of which may match: stop words drop out and operators in the input are just text. Okapi BM25 scores each document: rare terms weigh more (idf), repeats count less and less (k1), long documents are not favoured for length alone (b).");
        var lexemes = await lesson.QueryAsync($"SELECT string_agg(lexeme, ' ' ORDER BY lexeme) AS lexemes FROM ({SearchSql.QueryLexemes}) q", null, [queryParameter()], cancellationToken);
        lesson.Say($"lexemes: [bold]{Markup.Escape(lexemes[0]["lexemes"]?.ToString() ?? "")}[/]");
        var keyword = await HybridSearch.KeywordAsync(lesson.DataSource, question, cancellationToken: cancellationToken);
        lesson.Sql(SearchSql.Keyword, [$"@query = '{question}'", "@limit = 5", $"@k1 = {Bm25Parameters.DefaultK1}", $"@b = {Bm25Parameters.DefaultB}"]);
        ShowHits(lesson, keyword, "BM25");

        lesson.Step("The GIN index at work", "At 180 rows a sequential scan wins; with sequential scans discouraged the plan shows how a big table is searched: a bitmap scan of the GIN index on content_tsv.");
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            await lesson.ExplainAsync($"SELECT id FROM vector_documents WHERE content_tsv @@ {SearchSql.AllTermsQuery}", connection, [queryParameter()], cancellationToken);
            await transaction.RollbackAsync(cancellationToken);
        }

        lesson.Step("Vector search", "The same question by meaning: <=> against the question's embedding.");
        var embedding = await SearchLessonSetup.EmbedQuestionAsync(lesson, embedder, question, cancellationToken);
        var vector = await VectorSearch.Nearest(db, embedding).ToListAsync(cancellationToken);
        ShowHits(lesson, vector.Select(h => new SearchHit(h.Id, h.Title, h.Source, h.Similarity)).ToList(), "cosine similarity");

        lesson.Step("Weighted hybrid, normalized", $"Each method's best {Candidates} candidates, each list's scores scaled to 0..1, then {VectorWeight:0.0} x vector + {1 - VectorWeight:0.0} x keyword. Without the scaling the weights would mean little: cosine similarity and BM25 live on different scales.");
        lesson.Sql(SearchSql.Weighted, [$"@query = '{question}'", "@embedding = (the question's vector)", $"@vector_weight = {VectorWeight}", $"@keyword_weight = {1 - VectorWeight:0.0}", $"@candidates = {Candidates}", "@limit = 5"]);
        ShowHits(lesson, await HybridSearch.WeightedAsync(lesson.DataSource, question, embedding, options: Fusion, cancellationToken: cancellationToken), "weighted score");

        lesson.Step("Reciprocal rank fusion", $"Only ranks count: 1 / ({HybridOptions.DefaultRrfK} + rank) from each list, summed. Nothing to normalize or tune but k, which keeps any one list's first place from deciding alone.");
        lesson.Sql(SearchSql.ReciprocalRankFusion, [$"@query = '{question}'", "@embedding = (the question's vector)", $"@k = {HybridOptions.DefaultRrfK}", $"@candidates = {Candidates}", "@limit = 5"]);
        ShowHits(lesson, await HybridSearch.ReciprocalRankFusionAsync(lesson.DataSource, question, embedding, options: Fusion, cancellationToken: cancellationToken), "RRF score");

        lesson.Step("Side by side", "The first result of each method, for queries where one method is blind: paraphrases (no shared words) and exact terms (codes and names a model blurs). A check marks the right document.");
        var rows = new List<string[]>();
        var right = new int[4];
        // The searches repeat the SQL shown in the steps above: only their first results are shown, in the table.
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

                rows.Add([query, kind, .. tops.Select(t => t is null ? "(nothing)" : (expected.Length > 0 && t == expected ? "✓ " : expected.Length > 0 ? "✗ " : "") + t)]);
            }
        }

        lesson.Table(rows, ("query", r => r[0]), ("kind", r => r[1]), ("keyword", r => r[2]), ("vector", r => r[3]), ("weighted", r => r[4]), ("RRF", r => r[5]));
        lesson.Say($"Right first result on the {Showcase.Count} showcase queries: keyword [bold]{right[0]}[/], vector [bold]{right[1]}[/], weighted [bold]{right[2]}[/], RRF [bold]{right[3]}[/].");

        lesson.Step("Why fusion wins", "Each method is right where the other is blind, and a fused list needs only one of them to know.");
        lesson.Say("- Keyword search matches the words themselves: an error code, a version, a product name is found exactly, but a paraphrase with no shared word is invisible to it.");
        lesson.Say("- Vector search matches meaning: paraphrases and synonyms land close, but '42P01' and '40P01' look nearly alike to the model.");
        lesson.Say("- Fusion keeps a document either list ranks highly. Weighted scores let you lean one way (and need normalized scores): lean hard towards vectors and a confident vector list can outvote an exact code. RRF needs no scores at all, which is why it is the usual default.");
    }

    private static void ShowHits(Lesson lesson, IReadOnlyList<SearchHit> hits, string scoreName) =>
        lesson.Table(hits,
            ("title", h => h.Title),
            ("source", h => h.Source),
            (scoreName, h => h.Score.ToString("0.0000", CultureInfo.InvariantCulture)));
}
