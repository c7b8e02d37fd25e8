using System.CommandLine;
using System.Data;
using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench;

/// <summary>
/// writes: what the BM25 triggers (<see cref="Bm25Index"/>) cost a writer. Writers on documents of their own run short
/// transactions against vector_documents (insert a document, rewrite another one's content) for a fixed time, with the
/// triggers and with them disabled, at READ COMMITTED and REPEATABLE READ, one writer and several: transactions per
/// second, latency, and the transactions the server refused (deadlocks, serialization failures). Every run starts from
/// the same freshly loaded table with the indexes the lessons build, so only the triggers differ. After each run with
/// the triggers, keyword searches show what the rows the writers left in bm25_corpus cost a reader, before and after
/// they are folded.
/// </summary>
public static class WritesCommand
{
    public const string Name = "writes";
    public const string Schema = "bench_writes";
    private const int Dimensions = 384;

    internal static Command Definition() => new(Name,
        "transactions/s of concurrent writers on documents of their own, with and without the BM25 triggers, at READ COMMITTED and REPEATABLE READ")
    {
        BenchOptions.Count("--documents", 5_000, "documents loaded (COPY, then the indexes) before each run"),
        BenchOptions.Count("--writers", 4, "writers of the concurrent runs (each run is also done with one writer)"),
        BenchOptions.Count("--seconds", 10, "how long each run writes"),
        BenchOptions.Count("--seed", 42, "seed of the vectors", min: 0),
    };

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var documents = args.GetValue<int>("--documents");
        var writers = args.GetValue<int>("--writers");
        var duration = TimeSpan.FromSeconds(args.GetValue<int>("--seconds"));
        var seed = args.GetValue<int>("--seed");
        var console = context.Console;

        // Real text (the sample corpus, cycled), so the triggers index what a lesson's documents hold; synthetic vectors.
        var texts = SampleCorpus.All;
        var generator = new SyntheticVectors(Dimensions, seed);
        var vectors = Enumerable.Range(0, 1_000).Select(_ => new Vector(generator.Next())).ToList();
        var corpus = Enumerable.Range(0, documents).Select(i => texts[i % texts.Count] with { Source = "loaded" }).ToList();

        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        var shape = new VectorStoreShape(Dimensions);
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
        var machine = await BenchContext.MachineAsync(dataSource, cancellationToken);
        console.MarkupLine(Markup.Escape($"{documents:N0} documents of the sample corpus's text with {Dimensions}-dimension vectors, HNSW, GIN, source and postings indexes; " +
                                         $"{duration.TotalSeconds:N0} s a run. A transaction: INSERT one document, UPDATE another's content (the writer's own)."));

        var runs = new List<(bool Triggers, IsolationLevel Isolation, int Writers)>();
        foreach (var triggers in new[] { false, true })
        {
            foreach (var isolation in new[] { IsolationLevel.ReadCommitted, IsolationLevel.RepeatableRead })
            {
                foreach (var count in new[] { 1, writers }.Distinct())
                {
                    runs.Add((triggers, isolation, count));
                }
            }
        }

        var results = new List<WritesResult>();
        await context.Progress().StartAsync(async progress =>
        {
            foreach (var (triggers, isolation, count) in runs)
            {
                var label = $"{(triggers ? "triggers" : "no triggers")}, {IsolationName(isolation)}, {count} writer{(count == 1 ? "" : "s")}";
                var task = progress.AddTask(label, maxValue: duration.TotalSeconds + 1);
                await VectorStore.RecreateTablesAsync(db, cancellationToken);
                await VectorStore.CopyAsync(dataSource, corpus, corpus.Select((_, i) => vectors[i % vectors.Count]).ToList(), cancellationToken);
                await VectorStore.BuildIndexesAsync(db, VectorStore.Ddl(db).Indexes.Keys.Where(n => n != VectorDocumentConfiguration.IvfFlatIndex), cancellationToken);
                if (!triggers)
                {
                    await db.Database.ExecuteSqlRawAsync($"ALTER TABLE {VectorDocumentConfiguration.TableName} DISABLE TRIGGER USER", cancellationToken);
                }

                task.Value = 1;
                var ids = await IdsAsync(dataSource, cancellationToken);
                var watch = Stopwatch.StartNew();
                var outcomes = await Task.WhenAll(Enumerable.Range(0, count).Select(writer =>
                    WriteAsync(dataSource, isolation, writer, ids.Where((_, i) => i % count == writer).ToList(), texts, vectors, duration, cancellationToken)));
                var seconds = watch.Elapsed.TotalSeconds;
                task.Value = task.MaxValue;

                var latency = new Latency();
                foreach (var sample in outcomes.SelectMany(o => o.Latencies))
                {
                    latency.Add(sample);
                }

                var reads = triggers ? await ReadCostAsync(dataSource, db, texts, cancellationToken) : null;
                results.Add(new WritesResult(triggers, IsolationName(isolation), count, latency.Count, latency.Count / seconds, latency.P50, latency.P95,
                    outcomes.Sum(o => o.Deadlocks), outcomes.Sum(o => o.SerializationFailures), reads));
            }
        });

        var table = new Table().Title(Markup.Escape($"transactions (INSERT + UPDATE) on {VectorDocumentConfiguration.TableName}, {duration.TotalSeconds:N0} s a run"))
            .AddColumns("BM25 triggers", "isolation", "writers", "committed", "tx/s", "p50 ms", "p95 ms", "deadlocks", "serialization failures", "tx/s with / without triggers");
        foreach (var r in results)
        {
            var without = results.Single(o => !o.Triggers && o.Isolation == r.Isolation && o.Writers == r.Writers);
            table.AddRow(r.Triggers ? "on" : "off", r.Isolation, r.Writers.ToString(CultureInfo.InvariantCulture), r.Committed.ToString("N0", CultureInfo.InvariantCulture),
                r.TransactionsPerSecond.ToString("N0", CultureInfo.InvariantCulture), r.P50Ms.ToString("F2", CultureInfo.InvariantCulture),
                r.P95Ms.ToString("F2", CultureInfo.InvariantCulture), r.Deadlocks.ToString(CultureInfo.InvariantCulture),
                r.SerializationFailures.ToString(CultureInfo.InvariantCulture),
                r.Triggers ? (r.TransactionsPerSecond / without.TransactionsPerSecond).ToString("F2", CultureInfo.InvariantCulture) : "");
        }

        console.Write(table);
        var readTable = new Table().Title("what the rows the writers left in bm25_corpus cost a keyword search (BM25, top 10; p50 over the sample corpus's titles)")
            .AddColumns("isolation", "writers", "bm25_corpus rows", "keyword p50 ms", "after the fold and VACUUM: rows", "keyword p50 ms");
        foreach (var r in results.Where(r => r.Reads is not null))
        {
            readTable.AddRow(r.Isolation, r.Writers.ToString(CultureInfo.InvariantCulture), r.Reads!.Rows.ToString("N0", CultureInfo.InvariantCulture),
                r.Reads.P50Ms.ToString("F2", CultureInfo.InvariantCulture), r.Reads.FoldedRows.ToString("N0", CultureInfo.InvariantCulture),
                r.Reads.FoldedP50Ms.ToString("F2", CultureInfo.InvariantCulture));
        }

        console.Write(readTable);
        var report = new WritesReport(documents, writers, duration.TotalSeconds, seed, machine, results);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "writes", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "writes",
                ["triggers", "isolation", "writers", "committed", "transactions_per_second", "p50_ms", "p95_ms", "deadlocks", "serialization_failures"],
                results.Select(r => (IReadOnlyList<object?>)[r.Triggers, r.Isolation, r.Writers, r.Committed, r.TransactionsPerSecond, r.P50Ms, r.P95Ms,
                    r.Deadlocks, r.SerializationFailures]), cancellationToken));
        return 0;
    }

    /// <summary>
    /// One writer: transactions back to back until the time is up, on its own connection. A transaction the server
    /// refuses (40P01, 40001) is counted and not retried; the next one starts.
    /// </summary>
    private static async Task<WriterOutcome> WriteAsync(NpgsqlDataSource dataSource, IsolationLevel isolation, int writer, IReadOnlyList<int> own,
        IReadOnlyList<CorpusDocument> texts, IReadOnlyList<Vector> vectors, TimeSpan duration, CancellationToken cancellationToken)
    {
        var outcome = new WriterOutcome();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var clock = Stopwatch.StartNew();
        for (var k = 0; clock.Elapsed < duration; k++)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await using var transaction = await connection.BeginTransactionAsync(isolation, cancellationToken);
                await using var batch = new NpgsqlBatch(connection, transaction);
                var text = texts[(writer * 61 + k) % texts.Count];
                var insert = new NpgsqlBatchCommand(
                    $"INSERT INTO {VectorDocumentConfiguration.TableName} (title, content, source, embedding) VALUES (@title, @content, @source, @embedding)");
                insert.Parameters.AddWithValue("title", text.Title);
                insert.Parameters.AddWithValue("content", text.Content);
                insert.Parameters.AddWithValue("source", $"writer {writer}");
                insert.Parameters.AddWithValue("embedding", vectors[(writer * 61 + k) % vectors.Count]);
                batch.BatchCommands.Add(insert);
                // A new revision each time, so the content really changes and the update trigger re-indexes it.
                var update = new NpgsqlBatchCommand($"UPDATE {VectorDocumentConfiguration.TableName} SET content = @content WHERE id = @id");
                update.Parameters.AddWithValue("content", $"{texts[(writer * 61 + k + 1) % texts.Count].Content} Revision {k}.");
                update.Parameters.AddWithValue("id", own[k % own.Count]);
                batch.BatchCommands.Add(update);
                await batch.ExecuteNonQueryAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                outcome.Latencies.Add(Stopwatch.GetElapsedTime(started));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected)
            {
                outcome.Deadlocks++;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.SerializationFailure)
            {
                outcome.SerializationFailures++;
            }
        }

        return outcome;
    }

    /// <summary>
    /// Keyword searches over the table as the writers left it, bm25_corpus holding a row per write statement, then the
    /// same after <see cref="Bm25Index.Fold"/> and VACUUM: what unfolded rows cost a reader.
    /// </summary>
    private static async Task<ReadCost> ReadCostAsync(NpgsqlDataSource dataSource, SearchDbContext db, IReadOnlyList<CorpusDocument> texts,
        CancellationToken cancellationToken)
    {
        async Task<(long Rows, double P50)> MeasureAsync()
        {
            var latency = new Latency();
            foreach (var (text, i) in texts.Select((t, i) => (t.Title, i)))
            {
                var watch = Stopwatch.StartNew();
                await HybridSearch.KeywordAsync(dataSource, text, limit: 10, cancellationToken: cancellationToken);
                if (i >= 5)
                {
                    latency.Add(watch.Elapsed);
                }
            }

            return (await BenchContext.ScalarAsync<long>(dataSource, $"SELECT count(*) FROM {Bm25CorpusConfiguration.TableName}", cancellationToken), latency.P50);
        }

        var (rows, p50) = await MeasureAsync();
        await db.Database.ExecuteSqlRawAsync(Bm25Index.Fold, cancellationToken);
        await db.Database.ExecuteSqlRawAsync($"VACUUM {Bm25CorpusConfiguration.TableName}", cancellationToken);
        var (foldedRows, foldedP50) = await MeasureAsync();
        return new ReadCost(rows, p50, foldedRows, foldedP50);
    }

    private static async Task<List<int>> IdsAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"SELECT id FROM {VectorDocumentConfiguration.TableName} ORDER BY id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var ids = new List<int>();
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetInt32(0));
        }

        return ids;
    }

    private static string IsolationName(IsolationLevel isolation) =>
        isolation == IsolationLevel.RepeatableRead ? "REPEATABLE READ" : "READ COMMITTED";

    private sealed class WriterOutcome
    {
        public List<TimeSpan> Latencies { get; } = [];
        public int Deadlocks { get; set; }
        public int SerializationFailures { get; set; }
    }
}

/// <param name="Committed">Transactions committed in the run, all writers together.</param>
/// <param name="P50Ms">Latency of a committed transaction, BEGIN to COMMIT, one round trip for the two statements.</param>
/// <param name="Reads">With the triggers: keyword search latency over the rows the run left in bm25_corpus, and after folding them.</param>
public sealed record WritesResult(bool Triggers, string Isolation, int Writers, int Committed, double TransactionsPerSecond, double P50Ms, double P95Ms,
    int Deadlocks, int SerializationFailures, ReadCost? Reads);

/// <param name="Rows">bm25_corpus's rows after the run: one per write statement that changed the corpus, plus the load's.</param>
public sealed record ReadCost(long Rows, double P50Ms, long FoldedRows, double FoldedP50Ms);

public sealed record WritesReport(int Documents, int Writers, double Seconds, int Seed, MachineInfo Machine, IReadOnlyList<WritesResult> Runs);
