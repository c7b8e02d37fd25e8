using PgVectorModule.Configuration;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson08;

/// <summary>
/// Lesson 08: the Python module's production advice on replication, pooling and backups, run for real on this machine:
/// a hot standby made with pg_basebackup and one Npgsql data source that sends writes to the primary and searches to
/// the standby; pgBouncer in transaction mode with many clients and what breaks through it; pg_dump and pg_restore
/// checked row for row, and point-in-time recovery from a WAL archive. Every server it starts, it stops.
/// </summary>
public sealed partial class OperationsLesson : ILesson
{
    public const string Question = "how do I keep a search service running when a database server fails?";

    public static LessonInfo Info => LessonCatalog.Get("08");

    /// <summary>The documents this lesson loads: every third of the sample corpus (the subject here is the servers, not recall).</summary>
    public static IReadOnlyList<CorpusDocument> CorpusPart { get; } = SampleCorpus.All.Where((_, i) => i % 3 == 0).ToList();

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var settings = lesson.Settings.Operations;
        var givenStandby = settings.StandbyUrl is { } url ? ParseStandbyUrl(url) : null;
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);

        // Every server below (standby, pgBouncer, recovery cluster) runs under this object: disposing it stops them,
        // whether the lesson ends, fails or is cancelled. Missing programs are found out here, before any work.
        var major = await LocalServers.ServerMajorAsync(lesson.DataSource, cancellationToken);
        await using var servers = await LocalServers.StartAsync(settings, major, needPgBouncer: true, "lesson08", cancellationToken);
        var standbyPort = givenStandby is null ? LocalServers.Port("LESSON08_STANDBY_PORT", settings.StandbyPort) : 0;
        var pgBouncerPort = LocalServers.Port("LESSON08_PGBOUNCER_PORT", settings.PgBouncerPort);
        if (givenStandby is not null)
        {
            await CheckGivenStandbyAsync(givenStandby, cancellationToken);
        }

        lesson.Step("load-part", "Load part of the corpus", $"Every third document of the sample corpus ({CorpusPart.Count}), embedded and indexed as in lesson 04: enough to search, quicker to embed than all of it.");
        VectorStoreShape shape;
        await using (var db = await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, CorpusPart, cancellationToken))
        {
            shape = db.Shape;
        }

        // The searches below are HNSW's: without the IVFFlat index the plans on both servers name the one index. A detail.
        using (lesson.Detail())
        {
            await lesson.ExecuteAsync($"DROP INDEX {VectorDocumentConfiguration.IvfFlatIndex}", cancellationToken);
        }

        var question = await embedder.EmbedQueryAsync(Question, cancellationToken);

        // Part 1: a read replica.
        var standby = await MakeStandbyAsync(lesson, servers, givenStandby, standbyPort, cancellationToken);
        await using (var routing = Routing.Create(lesson, standby))
        {
            await RouteSearchesAsync(lesson, routing, shape, question, cancellationToken);
            await StandbyIndexAsync(lesson, routing, question, cancellationToken);
            await ReplicationLagAsync(lesson, routing, cancellationToken);
            await ReadYourWritesAsync(lesson, routing, shape, question, cancellationToken);
            await StandbyStopsAsync(lesson, servers, routing, shape, question, cancellationToken);
        }

        // Part 2: pgBouncer.
        await PgBouncerAsync(lesson, servers, pgBouncerPort, question, cancellationToken);

        // Part 3: backups.
        await DumpAndRestoreAsync(lesson, servers, shape, question, cancellationToken);
        await PointInTimeRecoveryAsync(lesson, servers, cancellationToken);

        // Part 4: tracing.
        await TraceSearchAsync(lesson, embedder, cancellationToken);
    }

    /// <summary>STANDBY_URL in either form DATABASE_URL takes; a bad one is one sentence that names STANDBY_URL.</summary>
    private static NpgsqlConnectionStringBuilder ParseStandbyUrl(string url)
    {
        try
        {
            return DatabaseUrl.Parse(url);
        }
        catch (SetupException e)
        {
            throw new SetupException(e.Message.Replace("DATABASE_URL", "STANDBY_URL", StringComparison.Ordinal), ExitCodes.InvalidInput);
        }
    }
}
