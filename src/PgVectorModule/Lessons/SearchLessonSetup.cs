using Spectre.Console;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons;

/// <summary>What the search lessons start from: their own copy of the sample corpus, embedded, loaded and indexed.</summary>
public static class SearchLessonSetup
{
    /// <summary>Loads the corpus into the lesson's schema (quietly: lesson 04 narrates the same work) with a progress bar.</summary>
    public static Task<SearchDbContext> LoadCorpusAsync(Lesson lesson, TextEmbedder embedder, CancellationToken cancellationToken) =>
        LoadCorpusAsync(lesson, embedder, SampleCorpus.All, cancellationToken);

    /// <summary>The same for part of the corpus: lessons whose subject is not the search itself embed fewer documents.</summary>
    public static async Task<SearchDbContext> LoadCorpusAsync(Lesson lesson, TextEmbedder embedder, IReadOnlyList<CorpusDocument> corpus, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        ArgumentNullException.ThrowIfNull(embedder);
        ArgumentNullException.ThrowIfNull(corpus);
        var db = lesson.NewSearchDbContext(new VectorStoreShape(embedder.Dimensions, IvfFlatLists: VectorStoreShape.ListsFor(corpus.Count)));
        var cachedBefore = embedder.TextsFromCache;
        try
        {
            using var quiet = lesson.QuietSql();
            await lesson.Console.Progress().AutoClear(false).StartAsync(async progress =>
            {
                var task = progress.AddTask($"embedding and loading {corpus.Count} documents", maxValue: corpus.Count);
                await VectorStore.LoadAsync(lesson.DataSource, db, embedder, corpus, new Progress<int>(done => task.Value = done), cancellationToken);
                task.Value = corpus.Count;
            });
        }
        catch
        {
            await db.DisposeAsync();
            throw;
        }

        lesson.Say($"{corpus.Count} documents in {lesson.Schema}.vector_documents, embedded by {embedder.Identity.ToString()}, " +
                   "with HNSW, IVFFlat and GIN indexes (lesson 04 shows each step).", Tone.Aside);
        SayCacheUse(lesson, embedder, embedder.TextsFromCache - cachedBefore, corpus.Count);
        return db;
    }

    /// <summary>
    /// One line when vectors came from the embedding cache instead of the model: how many, from where, and how to embed
    /// afresh; or, when the cache folder cannot be written, that vectors are computed every run and how to fix it.
    /// </summary>
    public static void SayCacheUse(Lesson lesson, TextEmbedder embedder, int fromCache, int total)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        ArgumentNullException.ThrowIfNull(embedder);
        if (embedder.Cache is not { } cache)
        {
            return;
        }

        if (fromCache > 0)
        {
            lesson.Say($"{fromCache} of {total} vectors came from the embedding cache ({cache.Folder}), computed by an earlier run " +
                       $"of the same model on the same texts; EMBEDDING_CACHE=off embeds them afresh.", Tone.Aside);
        }

        if (cache.WriteProblem is { } problem)
        {
            lesson.Say($"The embedding cache {cache.Folder} cannot be written ({problem}), so the next run embeds again: " +
                       "set EMBEDDING_CACHE_DIR to a folder you may write, or EMBEDDING_CACHE=off.", Tone.Warning);
        }
    }

    /// <summary>Embeds the question as a search query (with the model's query prefix), and says so when it was longer than the model reads at once.</summary>
    public static async Task<Vector> EmbedQuestionAsync(Lesson lesson, TextEmbedder embedder, string question, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        ArgumentNullException.ThrowIfNull(embedder);
        var (chunked, truncated) = (embedder.TextsChunked, embedder.TextsTruncated);
        var vector = await embedder.EmbedQueryAsync(question, cancellationToken);
        // Only the local model chunks or cuts; its limit is the model's (256 word pieces for MiniLM, 512 for arctic-embed-xs).
        var limit = (embedder.Generator as LocalEmbeddingGenerator)?.Options.MaxTokens;
        var what = embedder.TextsChunked > chunked
            ? "it was embedded in overlapping chunks and their vectors averaged."
            : embedder.TextsTruncated > truncated
                ? $"only its first {limit} were embedded (EMBEDDING_LONG_TEXT=truncate; chunk would average the whole text)."
                : null;
        if (what is not null)
        {
            lesson.Say($"The question is longer than {limit} word pieces, all {embedder.Identity.Model} reads at once: {what}", Tone.Warning);
        }

        return vector;
    }

    /// <summary>The question from the command line, or the lesson's default; empty text is refused with one sentence.</summary>
    public static string Question(Lesson lesson, string defaultQuestion)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var given = lesson.Question ?? defaultQuestion;
        var question = SearchInput.Validate(given, out var truncated);
        if (truncated)
        {
            lesson.Say($"The question was {given.Length:N0} characters; only the first {SearchInput.MaxQueryLength:N0} are searched.", Tone.Warning);
        }

        return question;
    }
}
