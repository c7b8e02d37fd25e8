using System.Globalization;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Lessons.Lesson10;

/// <summary>
/// Lesson 10: from search to answers. Cut texts into chunks three ways (SearchToAnswersLesson.Chunking.cs), keep
/// documents and chunks in two tables made by a migration (ChunksContext.cs), load them with binary COPY, search the
/// chunks and return each parent once with its best chunk (SearchToAnswersLesson.Retrieval.cs), re-score the best 50
/// with a stronger second stage, and answer with a numbered citation after every sentence (SearchToAnswersLesson.Answers.cs).
/// </summary>
public sealed partial class SearchToAnswersLesson : ILesson
{
    public const string DefaultQuestion = "how can I stop a neural network from overfitting?";

    /// <summary>The chunks table's vector(N): the local models' dimension, fixed by the migration.</summary>
    public const int Dimensions = 384;

    /// <summary>
    /// The word pieces a chunk may hold when the corpus is loaded. The sample abstracts are short (about 75 word pieces,
    /// three sentences), so the lesson packs sentences into chunks of at most 48 to give most documents two or three chunks;
    /// at the model's own limit (256) each abstract would be one chunk. bench chunks measures 64, 128 and 256 on SciFact.
    /// </summary>
    public const int ChunkBudget = 48;

    /// <summary>The demonstration's fixed windows: 32 word pieces, the last 8 repeated at the start of the next.</summary>
    public const int WindowSize = 32;

    public const int WindowOverlap = 8;

    /// <summary>The document the chunking step cuts: the sample corpus's longest abstract.</summary>
    public const string DemonstrationTitle = "When a Network Aces Its Practice Material but Stumbles on Fresh Inputs";

    public static LessonInfo Info => LessonCatalog.Get("10");

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var question = SearchLessonSetup.Question(lesson, DefaultQuestion);
        // The chunks table is vector(384), fixed by its migration: the lesson embeds with the local model whatever the
        // provider, and OPENAI_API_KEY only chooses how the answer is written.
        var settings = lesson.Settings.Embeddings with { Provider = EmbeddingProviderKind.Local, BatchSize = EmbeddingSettings.LocalDefaultBatchSize };
        using var embedder = TextEmbedder.Create(settings);
        if (embedder.Dimensions != Dimensions)
        {
            throw new SetupException($"Lesson 10's chunks table holds vector({Dimensions}), but {embedder.Identity} makes {embedder.Dimensions}-dimension vectors: " +
                                     "unset LOCAL_EMBEDDING_MODEL_PATH for this lesson, or use a 384-dimension model.", ExitCodes.EmbeddingMismatch);
        }

        var local = (LocalEmbeddingGenerator)embedder.Generator;
        int Pieces(string text) => local.Tokenizer.Encode(text).Length;
        if (lesson.Settings.Embeddings.Provider != EmbeddingProviderKind.Local)
        {
            lesson.Say($"Embeddings here come from the local {embedder.Identity.Model} whatever EMBEDDING_PROVIDER says: the chunks table is vector({Dimensions}), fixed by its migration.", Tone.Aside);
        }

        Chunking(lesson, Pieces);
        await CreateTablesAsync(lesson, cancellationToken);
        await LoadAsync(lesson, embedder, Pieces, cancellationToken);
        var embedding = await SearchLessonSetup.EmbedQuestionAsync(lesson, embedder, question, cancellationToken);
        var first = await ParentDocumentsAsync(lesson, question, embedding, cancellationToken);
        await PlanAsync(lesson, question, embedding, cancellationToken);
        var second = await SecondStageAsync(lesson, question, first, cancellationToken);
        await AnswerAsync(lesson, embedder, question, second, cancellationToken);

        lesson.Step("what-to-keep", "What to keep", "The choices this lesson made, and where each is measured.");
        lesson.Say("- Chunk so that one chunk answers one question: whole sentences, within the model's limit; the bench measures the size (docs/benchmarks.md).");
        lesson.Say("- Search chunks, return documents: each parent once, its best chunk as the snippet, so a long document does not fill the page.");
        lesson.Say("- A second stage reads few candidates with a stronger model; the first stage's job is recall.");
        lesson.Say("- An answer is only as good as its passages: every sentence cites one, and the passages are printed so a reader can check.");
    }

    private static void Chunking(Lesson lesson, Func<string, int> pieces)
    {
        var document = SampleCorpus.All.Single(d => d.Title == DemonstrationTitle);
        lesson.Step("chunking", "Three ways to cut a text",
            $"The sample corpus's longest abstract ({pieces(document.Content)} word pieces), cut three ways. Sizes are the model's word pieces, counted by its own tokenizer (BertTokenizer over its vocab.txt): all-MiniLM-L6-v2 reads at most 256 at once, and cuts the rest off.");
        lesson.Code($"""
            Func<string, int> pieces = text => tokenizer.Encode(text).Length;   // the embedding model's word pieces
            FixedWindows(text, pieces, size: {WindowSize}, overlap: {WindowOverlap});   // LangChain: TokenTextSplitter(chunk_size={WindowSize}, chunk_overlap={WindowOverlap})
            SentencePacks(text, pieces, budget: {ChunkBudget});               // whole sentences up to the budget (what this lesson loads)
            SentencePacks(text, pieces, budget: 256);              // the model's limit
            Paragraphs(text, pieces);                              // the author's own cuts
            """);
        var cuts = new (string Strategy, string Short, IReadOnlyList<TextChunk> Chunks)[]
        {
            ($"fixed windows, {WindowSize} pieces, {WindowOverlap} overlap", $"windows {WindowSize}/{WindowOverlap}", FixedWindows(document.Content, pieces, WindowSize, WindowOverlap)),
            ($"sentences, up to {ChunkBudget} pieces", $"sentences {ChunkBudget}", SentencePacks(document.Content, pieces, ChunkBudget)),
            ("sentences, up to 256 pieces", "sentences 256", SentencePacks(document.Content, pieces, 256)),
            ("paragraphs", "paragraphs", Paragraphs(document.Content, pieces)),
        };
        var rows = cuts.SelectMany(c => c.Chunks.Select(chunk => (c.Strategy, c.Short, chunk))).ToList();
        // Shown: each chunk's first and last words, where the cuts fall; the full table (every chunk's whole text) is the detail.
        lesson.Table(rows.Select((r, i) => (First: i == 0 || rows[i - 1].Strategy != r.Strategy, r.Short, r.chunk)),
            ("cut by", r => r.First ? r.Short : ""), ("chunk", r => r.chunk.Position), ("pieces", r => r.chunk.Tokens),
            ("its text: start … end", r => Lesson.Excerpt(r.chunk.Text, head: 40, tail: 32)));
        using (lesson.Detail())
        {
            lesson.Table(rows,
                ("strategy", r => r.Strategy), ("chunk", r => r.chunk.Position), ("word pieces", r => r.chunk.Tokens), ("text", r => r.chunk.Text));
        }

        lesson.Say("Fixed windows cut mid-sentence (a chunk may start with \"the turning point\" and no subject), and the overlap repeats the cut words so the next window reads them whole. " +
                   "Sentence packing never cuts a sentence; at the model's 256 the whole abstract is one chunk. An abstract is one paragraph: the author's cuts are the coarsest here.");
    }

    private static async Task CreateTablesAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.Step("chunks-migration", "Documents and chunks: a migration",
            "Two tables: documents (the parent, what a search returns) and chunks (a foreign key to it, the position in it, the text, its word pieces, the vector and a generated tsvector), with HNSW and GIN indexes. " +
            "The migration CreateDocumentsAndChunks (ChunksContext.cs) creates them in schema lesson10 with its own history table; the lesson drops them first, so a second run starts clean.");
        await using var db = new ChunksContext(lesson);
        await db.Database.ExecuteSqlRawAsync($"DROP TABLE IF EXISTS chunks, documents, \"{ChunksContext.HistoryTable}\"", cancellationToken);
        // What `dotnet ef migrations script` prints; MigrateAsync sends the same, with its lock and history checks.
        lesson.Sql(db.GetService<IMigrator>().GenerateScript());
        using (lesson.QuietSql())
        {
            await db.Database.MigrateAsync(cancellationToken);
        }

        IEnumerable<string> applied;
        using (lesson.Detail())
        {
            applied = await db.Database.GetAppliedMigrationsAsync(cancellationToken);
        }

        lesson.Say($"Applied: {string.Join(", ", applied)}, recorded in {lesson.Schema}.\"{ChunksContext.HistoryTable}\".");
    }

    private static async Task LoadAsync(Lesson lesson, TextEmbedder embedder, Func<string, int> pieces, CancellationToken cancellationToken)
    {
        var corpus = SampleCorpus.All;
        lesson.Step("chunk-embed-copy", "Chunk, embed, COPY",
            $"Every document cut by sentence packing (up to {ChunkBudget} word pieces), each chunk embedded with its document's title before it (\"title. chunk\": a chunk alone may not say what it is about), " +
            "then two binary COPYs in one transaction: the documents with their ids, then the chunks that point at them.");
        var chunked = corpus.Select((document, index) => (Id: index + 1, Document: document, Chunks: SentencePacks(document.Content, pieces, ChunkBudget))).ToList();
        var texts = chunked.SelectMany(d => d.Chunks.Select(c => $"{d.Document.Title}. {c.Text}")).ToList();
        var cachedBefore = embedder.TextsFromCache;
        IReadOnlyList<Vector> vectors = [];
        await lesson.Console.Progress().AutoClear(false).StartAsync(async progress =>
        {
            var task = progress.AddTask($"embedding {texts.Count} chunks", maxValue: texts.Count);
            vectors = await embedder.EmbedManyAsync(texts, new Progress<int>(done => task.Value = done), cancellationToken);
            task.Value = texts.Count;
        });
        SearchLessonSetup.SayCacheUse(lesson, embedder, embedder.TextsFromCache - cachedBefore, texts.Count);

        const string copyDocuments = "COPY documents (id, title, source, content) FROM STDIN (FORMAT BINARY)";
        const string copyChunks = "COPY chunks (document_id, position, content, token_count, embedding) FROM STDIN (FORMAT BINARY)";
        lesson.Sql(copyDocuments, [$"{corpus.Count} rows"]);
        lesson.Sql(copyChunks, [$"{texts.Count} rows, the embedding as vector({Dimensions})"]);
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await using (var writer = await connection.BeginBinaryImportAsync(copyDocuments, cancellationToken))
            {
                foreach (var (id, document, _) in chunked)
                {
                    await writer.StartRowAsync(cancellationToken);
                    await writer.WriteAsync(id, cancellationToken);
                    await writer.WriteAsync(document.Title, cancellationToken);
                    await writer.WriteAsync(document.Source, cancellationToken);
                    await writer.WriteAsync(document.Content, cancellationToken);
                }

                await writer.CompleteAsync(cancellationToken);
            }

            await using (var writer = await connection.BeginBinaryImportAsync(copyChunks, cancellationToken))
            {
                var next = 0;
                foreach (var (id, _, chunks) in chunked)
                {
                    foreach (var chunk in chunks)
                    {
                        await writer.StartRowAsync(cancellationToken);
                        await writer.WriteAsync(id, cancellationToken);
                        await writer.WriteAsync(chunk.Position, cancellationToken);
                        await writer.WriteAsync(chunk.Text, cancellationToken);
                        await writer.WriteAsync(chunk.Tokens, cancellationToken);
                        await writer.WriteAsync(vectors[next++], cancellationToken);
                    }
                }

                await writer.CompleteAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
        }

        // Statistics for the planner: a freshly loaded table has none until autovacuum gets to it.
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("ANALYZE documents, chunks", cancellationToken);
        }

        // The counting query is the detail; its table is shown.
        IReadOnlyList<IReadOnlyDictionary<string, object?>> shape;
        using (lesson.Detail())
        {
            shape = await lesson.QueryAsync("""
                SELECT count(DISTINCT document_id) AS documents, count(*) AS chunks,
                       round(count(*)::numeric / count(DISTINCT document_id), 2) AS chunks_per_document,
                       min(token_count) AS fewest_pieces, round(avg(token_count), 1) AS average_pieces, max(token_count) AS most_pieces
                FROM chunks
                """, cancellationToken);
        }

        lesson.Table(shape, ("documents", r => r["documents"]), ("chunks", r => r["chunks"]), ("chunks per document", r => r["chunks_per_document"]),
            ("fewest word pieces", r => r["fewest_pieces"]), ("average", r => r["average_pieces"]), ("most", r => r["most_pieces"]));
    }

    internal static string Number(double value) => value.ToString("0.0000", CultureInfo.InvariantCulture);
}
