using System.Globalization;
using Pgvector.EntityFrameworkCore;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson05;

/// <summary>
/// Lesson 05: nearest-neighbour search with Pgvector.EntityFrameworkCore (cosine, L2, inner product), a filter, a
/// distance threshold that keeps the index, metadata in JSONB behind a foreign key (VectorSearchLesson.Metadata.cs),
/// then the index at work (VectorSearchLesson.Index.cs): its plan, the row cap, real approximate misses, IVFFlat's
/// lists, filtered iterative scans and the query shapes that skip it.
/// </summary>
public sealed partial class VectorSearchLesson : ILesson
{
    public const string DefaultQuestion = "how do vector indexes work?";
    public const string OffTopicQuestion = "sourdough bread starter recipe";

    /// <summary>Cosine distance below which a document counts as related (similarity above 0.25) for all-MiniLM-L6-v2.</summary>
    public const double MaxDistance = 0.75;

    public static LessonInfo Info => LessonCatalog.Get("05");

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        var question = SearchLessonSetup.Question(lesson, DefaultQuestion);

        lesson.Step("load-corpus", "Load the corpus", "This lesson's own copy of the sample corpus, embedded, copied in and indexed the way lesson 04 shows step by step.");
        await using var db = await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, cancellationToken);
        // The check that the table holds vectors of this model (lesson 04 records it): its query is folded by default.
        using (lesson.Detail())
        {
            await EmbeddingGuard.EnsureCompatibleAsync(db, embedder.Identity, cancellationToken);
        }

        lesson.Step("embed-question", "Embed the question", $"\"{question}\" becomes a vector by the same model as the documents: only then are distances meaningful.");
        var query = await SearchLessonSetup.EmbedQuestionAsync(lesson, embedder, question, cancellationToken);

        await DistancesAsync(lesson, db, query, cancellationToken);
        await FilterAndThresholdAsync(lesson, db, query, await embedder.EmbedQueryAsync(OffTopicQuestion, cancellationToken), cancellationToken);
        await MetadataAsync(lesson, query, embedder.Dimensions, cancellationToken);
        await IndexPlanAsync(lesson, query, cancellationToken);
        await RowCapAsync(lesson, query, cancellationToken);
        await ApproximateMissAsync(lesson, cancellationToken);
        await IvfFlatListsAsync(lesson, cancellationToken);
        await IterativeScansAsync(lesson, cancellationToken);
        await PitfallsAsync(lesson, query, cancellationToken);
    }

    private static async Task DistancesAsync(Lesson lesson, SearchDbContext db, Vector query, CancellationToken cancellationToken)
    {
        lesson.Step("cosine", "Cosine distance", "CosineDistance() becomes <=>. Ordered ascending with a LIMIT: the k nearest, the one shape a vector index answers. Similarity = 1 - distance.");
        var cosine = await db.Documents
            .Select(d => new { d.Title, d.Source, Distance = d.Embedding!.CosineDistance(query) })
            .OrderBy(d => d.Distance)
            .Take(5)
            .ToListAsync(cancellationToken);
        ShowHits(lesson, cosine.Select(h => (h.Title, h.Source, h.Distance)), "cosine distance", distance => 1 - distance);
        lesson.Say("The library's VectorSearch.Nearest(db, query) builds this same query.", Tone.Aside);

        lesson.Step("l2-inner-product", "L2 and inner product", "L2Distance() is <->, MaxInnerProduct() is <#> (the inner product negated: smaller is nearer). On unit-length vectors all three rank alike.");
        var l2 = await db.Documents
            .Select(d => new { d.Title, d.Source, Distance = d.Embedding!.L2Distance(query) })
            .OrderBy(d => d.Distance)
            .Take(5)
            .ToListAsync(cancellationToken);
        ShowHits(lesson, l2.Select(h => (h.Title, h.Source, h.Distance)), "L2 distance", distance => 1 - (distance * distance / 2)); // unit vectors: |a - b|² = 2 - 2 cos
        var innerProduct = await db.Documents
            .Select(d => new { d.Title, d.Source, Distance = d.Embedding!.MaxInnerProduct(query) })
            .OrderBy(d => d.Distance)
            .Take(5)
            .ToListAsync(cancellationToken);
        // Its table says what the first two did: folded by default, with the check that it does.
        using (lesson.Detail())
        {
            ShowHits(lesson, innerProduct.Select(h => (h.Title, h.Source, h.Distance)), "negative inner product", distance => -distance); // unit vectors: inner product = cosine
        }

        var same = innerProduct.Select(h => (h.Title, Similarity: Math.Round(-h.Distance, 4)))
            .SequenceEqual(l2.Select(h => (h.Title, Similarity: Math.Round(1 - (h.Distance * h.Distance / 2), 4))));
        lesson.Say(same
            ? ($"<#>: the same {innerProduct.Count} documents in the same order, with the same cosine similarities.", Tone.Plain)
            : ("<#> ranks differently from <->: these vectors are not of unit length.", Tone.Warning));
    }

    private static async Task FilterAndThresholdAsync(Lesson lesson, SearchDbContext db, Vector query, Vector offTopic, CancellationToken cancellationToken)
    {
        lesson.Step("filter", "With a filter", "An ordinary WHERE beside the vector ORDER BY: only research papers. The value is a variable, so EF sends it as a parameter.");
        var source = "research";
        var research = await db.Documents
            .Where(d => d.Source == source)
            .Select(d => new { d.Title, d.Source, Distance = d.Embedding!.CosineDistance(query) })
            .OrderBy(d => d.Distance)
            .Take(5)
            .ToListAsync(cancellationToken);
        ShowHits(lesson, research.Select(h => (h.Title, h.Source, h.Distance)), "cosine distance");

        lesson.Step("threshold", "A distance threshold",
            $"Keep only documents closer than {MaxDistance} (similarity above {1 - MaxDistance:0.00}): an off-topic question gets nothing. " +
            "The k nearest first (ORDER BY distance LIMIT k, which the index answers), then the threshold outside, on those k rows: " +
            "inside, an iterative scan (step 12) would walk on for rows that cannot pass.");
        var maxDistance = MaxDistance;
        IQueryable<Hit> Within(Vector vector) =>
            db.Documents
                .Select(d => new { d.Title, d.Source, Distance = d.Embedding!.CosineDistance(vector) })
                .OrderBy(d => d.Distance)
                .Take(10)                                 // the 10 nearest: what the index answers
                .Where(d => d.Distance < maxDistance)     // then the threshold, on those 10
                .OrderBy(d => d.Distance)
                .Select(d => new Hit(d.Title, d.Source, d.Distance));
        ShowHits(lesson, (await Within(query).ToListAsync(cancellationToken)).Select(h => (h.Title, h.Source, h.Distance)), "cosine distance");
        var sent = lesson.Transcript.Current.SqlSent.Last().Text;
        List<Hit> none;
        using (lesson.QuietSql())
        {
            none = await Within(offTopic).ToListAsync(cancellationToken);
        }

        lesson.Say($"\"{OffTopicQuestion}\": {none.Count} documents within the threshold.");
        lesson.Say("Its plan on the HNSW index (set up as step 8 explains): the Limit sits on the index scan, the threshold filters above it.", Tone.Aside);
        using (lesson.Detail())
        {
            await OnHnswOnlyAsync(lesson, connection => lesson.ExplainAsync(sent, connection,
                [new NpgsqlParameter("vector", query), new NpgsqlParameter("p", 10), new NpgsqlParameter("maxDistance", maxDistance)], cancellationToken), cancellationToken);
        }
    }

    /// <summary>One search result as the lesson shows it.</summary>
    public sealed record Hit(string Title, string? Source, double Distance);

    // With a similarity, a column converting the distance to cosine similarity (steps 3 and 4 compare the metrics with it).
    private static void ShowHits(Lesson lesson, IEnumerable<(string Title, string? Source, double Distance)> hits, string distanceName, Func<double, double>? similarity = null)
    {
        (string Header, Func<(string Title, string? Source, double Distance), object?> Value)[] columns =
        [
            ("title", h => h.Title),
            ("source", h => h.Source),
            (distanceName, h => h.Distance.ToString("0.0000", CultureInfo.InvariantCulture)),
        ];
        lesson.Table(hits, similarity is null
            ? columns
            : [.. columns, ("cosine similarity", h => similarity(h.Distance).ToString("0.0000", CultureInfo.InvariantCulture))]);
    }
}
