using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Configuration;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Lessons.PgvectorSetup;

/// <summary>
/// Lesson 04: enable pgvector, declare the vector table and its indexes in the EF model, embed and bulk-load the
/// sample corpus, build the indexes after the load, and see what a vector of the wrong size meets.
/// </summary>
public sealed class PgvectorSetupLesson : ILesson
{
    public static LessonInfo Info => LessonCatalog.Get("04");

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        var corpus = SampleCorpus.All;
        // IVFFlat's lists follow the row count, so the model is shaped by the data it will hold.
        var shape = new VectorStoreShape(embedder.Dimensions, IvfFlatLists: VectorStoreShape.ListsFor(corpus.Count));
        await using var db = lesson.NewSearchDbContext(shape);
        var ddl = VectorStore.Ddl(db);

        lesson.Step("Enable the extension",
            "pgvector adds the vector type, its distance operators and two index methods. The model declares it (HasPostgresExtension), so EF renders the CREATE EXTENSION.");
        var available = await lesson.QueryAsync(
            "SELECT name, default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'", cancellationToken);
        lesson.Table(available, ("name", r => r["name"]), ("default_version", r => r["default_version"]), ("installed_version", r => r["installed_version"]));
        await VectorStore.EnsureExtensionAsync(lesson.DataSource, db, cancellationToken);
        lesson.Say("[grey]Then dataSource.ReloadTypesAsync(): Npgsql reads the server's types when a data source first connects; " +
                   "a type created later (vector) stays unknown to it until it reloads them.[/]");

        lesson.Step("The vector table in the EF model",
            $"VectorDocument maps to vector_documents: embedding vector({shape.Dimensions}) for {embedder.Identity}, and content_tsv, a tsvector PostgreSQL generates and stores from title and content.");
        lesson.EchoSql = false;
        lesson.Sql(db.Database.GenerateCreateScript());
        lesson.EchoSql = true;

        lesson.Step("Create the table, without its indexes",
            "Indexes are built after a bulk load: faster than updating them row by row, and IVFFlat learns its clusters from the rows present when it is built.");
        await VectorStore.RecreateTablesAsync(db, cancellationToken);

        lesson.Step("Embed the corpus",
            $"{corpus.Count} documents from {corpus.Select(d => d.Source).Distinct().Count()} sources, embedded by {embedder.Identity} in batches. Each vector has unit length, so cosine distance and inner product rank alike.");
        var watch = Stopwatch.StartNew();
        IReadOnlyList<Vector> vectors = [];
        await lesson.Console.Progress().AutoClear(false).StartAsync(async progress =>
        {
            var task = progress.AddTask("embedding", maxValue: corpus.Count);
            vectors = await embedder.EmbedManyAsync(corpus.Select(d => d.TextToEmbed).ToList(),
                new Progress<int>(done => task.Value = done), cancellationToken);
            task.Value = corpus.Count;
        });
        var first = vectors[0].ToArray();
        lesson.Say($"{vectors.Count} vectors in {watch.Elapsed.TotalSeconds:0.0} s ({vectors.Count / watch.Elapsed.TotalSeconds:0} documents/s). " +
                   $"The first: [[{string.Join(", ", first.Take(5).Select(x => x.ToString("0.000", CultureInfo.InvariantCulture)))}, ...]], " +
                   $"length {Math.Sqrt(first.Sum(x => (double)x * x)):0.000}.");

        lesson.Step("Load with binary COPY",
            "One COPY streams every row in PostgreSQL's binary format inside one transaction: the fastest way in, and all or nothing.");
        lesson.Sql(VectorStore.CopyCommand);
        var (rows, elapsed) = await VectorStore.CopyAsync(lesson.DataSource, corpus, vectors, cancellationToken);
        lesson.Say($"[green]{rows} rows[/] in {elapsed.TotalMilliseconds:0} ms.");
        await EmbeddingGuard.RecordAsync(db, embedder.Identity, cancellationToken: cancellationToken);
        lesson.Say($"[grey]embedding_models now records that vector_documents holds vectors from {Markup.Escape(embedder.Identity.ToString())}.[/]");

        lesson.Step("Build the indexes the model declares",
            $"HNSW (m = {shape.HnswM}, ef_construction = {shape.HnswEfConstruction}), IVFFlat (lists = rows / 1000, at least 1: {shape.IvfFlatLists} here), and GIN for full-text search. Each CREATE INDEX comes from the model.");
        foreach (var index in ddl.Indexes.Values)
        {
            await lesson.ExecuteAsync(index, cancellationToken);
        }

        await lesson.ExecuteAsync("VACUUM (ANALYZE) vector_documents, document_terms", cancellationToken);
        var indexes = await lesson.QueryAsync(
            """
            SELECT i.indexname, am.amname AS method, coalesce(array_to_string(c.reloptions, ', '), '') AS options,
                   pg_size_pretty(pg_relation_size(c.oid)) AS size
            FROM pg_indexes i
            JOIN pg_class c ON c.relname = i.indexname AND c.relnamespace = to_regnamespace(i.schemaname)
            JOIN pg_am am ON am.oid = c.relam
            WHERE i.schemaname = current_schema() AND i.tablename = 'vector_documents'
            ORDER BY i.indexname
            """, cancellationToken);
        lesson.Table(indexes, ("index", r => r["indexname"]), ("method", r => r["method"]), ("options", r => r["options"]), ("size", r => r["size"]));

        lesson.Step("Which index when",
            "At a few hundred rows an exact scan is fast and PostgreSQL's planner often prefers it; the indexes matter as the table grows.");
        lesson.Table(new[]
            {
                ("under 10,000", "none", "an exact scan is fast enough and has perfect recall"),
                ("10,000 to 1,000,000", "IVFFlat or HNSW", "IVFFlat builds fast and small (lists = rows / 1000); HNSW answers faster at the same recall"),
                ("over 1,000,000", "HNSW", "best speed/recall trade-off; needs memory to build (maintenance_work_mem); IVFFlat with lists = sqrt(rows) if build time matters"),
            },
            ("rows", r => r.Item1), ("index", r => r.Item2), ("why", r => r.Item3));

        lesson.Step("A vector of the wrong size",
            $"The column is vector({shape.Dimensions}). The module checks dimensions before PostgreSQL does, so the learner reads one sentence with the fix.");
        try
        {
            EmbeddingGuard.EnsureDimension(new float[] { 0.1f, 0.2f, 0.3f }, shape.Dimensions, embedder.Identity);
        }
        catch (SetupException e)
        {
            lesson.Say($"[yellow]The module says:[/] {Markup.Escape(e.Message)}");
        }

        try
        {
            lesson.EchoSql = false;
            await lesson.ExecuteAsync("INSERT INTO vector_documents (title, content, embedding) VALUES ('bad', 'bad', '[0.1,0.2,0.3]')", cancellationToken);
        }
        catch (PostgresException e)
        {
            lesson.Say($"[yellow]PostgreSQL, had it got there:[/] {Markup.Escape(e.MessageText)} (SQLSTATE {e.SqlState}). The column's type keeps bad rows out either way.");
        }
        finally
        {
            lesson.EchoSql = true;
        }

        var other = new EmbeddingIdentity("openai", EmbeddingSettings.DefaultOpenAIModel, EmbeddingSettings.DefaultOpenAIDimensions);
        if (other.Model != embedder.Identity.Model)
        {
            try
            {
                await EmbeddingGuard.EnsureCompatibleAsync(db, other, cancellationToken);
            }
            catch (SetupException e)
            {
                lesson.Say($"[yellow]Searching with another model:[/] {Markup.Escape(e.Message)}");
            }
        }
    }
}
