using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson07;

/// <summary>
/// Lesson 07: the Python module's production sections, run rather than read. One file per topic
/// (ProductionLesson.Pooling.cs, .HotPath.cs, .BulkLoad.cs, .Memory.cs, .SmallerVectors.cs, .Maintenance.cs (with the extension update),
/// .Security.cs, .Scaling.cs); <see cref="RunAsync"/> is the table of contents.
/// </summary>
public sealed partial class ProductionLesson : ILesson
{
    /// <summary>Rows in the bulk-load table: enough for COPY and the index build to show, small enough for a few seconds.</summary>
    public const int BulkRows = 1500;

    /// <summary>Rows written one INSERT (and one commit) at a time: enough for a steady rate, a few seconds at most.</summary>
    public const int RowByRowRows = 500;

    /// <summary>Searches per task in the pooling step, with <see cref="Searchers"/> tasks at once.</summary>
    public const int SearchesPerTask = 25;
    public const int Searchers = 8;

    /// <summary>The pool the concurrent searchers share: fewer connections than tasks, so some wait their turn.</summary>
    public const int SharedPoolSize = 4;

    /// <summary>
    /// Rows of the parallel-build table: about 4MB of 384-dimension vectors, under the 8MB PostgreSQL plans workers for on
    /// its own, so the table's parallel_workers storage parameter asks for them (the lesson says so).
    /// </summary>
    public const int ParallelRows = 2500;

    /// <summary>text-embedding-3-large's width, over the 2,000 dimensions pgvector indexes as vector.</summary>
    public const int LargeDimensions = 3072;

    /// <summary>The width OPENAI_EMBEDDING_DIMENSIONS would ask text-embedding-3-large for: text-embedding-3-small's.</summary>
    public const int ShortenedDimensions = 1536;

    /// <summary>Rows of each wide table: a second or two of index builds at 3,072 dimensions.</summary>
    public const int LargeRows = 600;

    /// <summary>Candidates the binary index returns before the full vectors re-rank them.</summary>
    public const int RerankCandidates = 40;

    public const string HostileSource = "docs' OR '1'='1";

    public static LessonInfo Info => LessonCatalog.Get("07");

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        var dims = embedder.Dimensions;

        lesson.Step("load-corpus", "Load the corpus", "This lesson's own copy of the sample corpus, embedded and indexed as in lesson 04.");
        VectorStoreShape shape;
        await using (var db = await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, cancellationToken))
        {
            shape = db.Shape;
        }

        var question = await embedder.EmbedQueryAsync("how do I keep database credentials out of source code?", cancellationToken);

        // Performance: connection pooling (the Python module's create_engine(pool_size=..., max_overflow=...)).
        await PoolingAsync(lesson, dims, question, cancellationToken);
        await ContextPoolingAsync(lesson, cancellationToken);
        await HotPathAsync(lesson, shape, question, cancellationToken);

        // Performance: batch operations; best practices: index after bulk insert; common issues: slow inserts with an index.
        var vectors = await BulkLoadAsync(lesson, dims, cancellationToken);
        await IndexBuildAsync(lesson, dims, cancellationToken); // with parallel workers for the build, folded as a detail

        await SlowInsertsAsync(lesson, dims, vectors, cancellationToken);

        // Common issues: out of memory (work_mem against maintenance_work_mem).
        await WorkMemAsync(lesson, question, cancellationToken);

        // Not in the Python module: smaller vectors.
        await SmallerVectorsAsync(lesson, dims, vectors, cancellationToken);

        // Monitoring and maintenance.
        await MaintenanceAsync(lesson, question, cancellationToken);
        await PgStatStatementsAsync(lesson, cancellationToken);
        await ExtensionVersionAsync(lesson, cancellationToken);

        // Security considerations.
        await SslAsync(lesson, cancellationToken);
        await ReadOnlyRoleAsync(lesson, question, cancellationToken);

        // Best practices: production readiness (replication) and schema design (partitioning).
        await ScalingAsync(lesson, dims, question, cancellationToken);
    }
}
