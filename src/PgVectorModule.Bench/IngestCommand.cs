using System.CommandLine;
using System.Diagnostics;
using System.Text;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench;

/// <summary>
/// ingest: the same rows written four ways into schema bench_ingest, then HNSW and IVFFlat built over them.
/// Each way starts from an empty table without indexes (only the primary key), so all four pay the same costs.
/// </summary>
public static class IngestCommand
{
    public const string Name = "ingest";
    public const string Schema = "bench_ingest";
    private const int Dimensions = 384;

    internal static Command Definition() => new(Name,
        "rows/s of SaveChanges per row, AddRange per batch, multi-row INSERT and binary COPY; HNSW and IVFFlat build time and size")
    {
        BenchOptions.Count("--rows", 10_000, "rows each way writes"),
        BenchOptions.Count("--per-row-sample", 500, "rows SaveChanges writes one at a time (the slow way, timed on a sample)"),
        BenchOptions.Count("--batch", 1_000, "rows per AddRange and per multi-row INSERT"),
        BenchOptions.Count("--seed", 42, "seed of the vectors", min: 0),
        BenchOptions.Text("--maintenance-work-mem", "SIZE", "maintenance_work_mem for the index builds", "512MB"),
    };

    public static async Task<int> RunAsync(BenchContext context, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(args);
        var rows = args.GetValue<int>("--rows");
        var sample = Math.Min(args.GetValue<int>("--per-row-sample"), rows);
        var batch = args.GetValue<int>("--batch");
        var seed = args.GetValue<int>("--seed");
        var maintenanceWorkMem = args.GetValue<string>("--maintenance-work-mem")!;

        var documents = new List<CorpusDocument>(rows);
        var vectors = new List<Vector>(rows);
        var generator = new SyntheticVectors(Dimensions, seed);
        for (var i = 0; i < rows; i++)
        {
            documents.Add(new CorpusDocument($"Document {i}", $"Generated text of document {i}, seed {seed}, about vectors and databases.", "bench"));
            vectors.Add(new Vector(generator.Next()));
        }

        await using var dataSource = await context.OpenSchemaAsync(Schema, cancellationToken);
        var shape = new VectorStoreShape(Dimensions, IvfFlatLists: VectorStoreShape.ListsFor(rows));
        await using var db = BenchContext.NewDbContext(dataSource, shape);
        await VectorStore.EnsureExtensionAsync(dataSource, db, cancellationToken);
        var machine = await BenchContext.MachineAsync(dataSource, cancellationToken);
        context.Console.MarkupLine($"{rows:N0} rows of {Dimensions} dimensions (seed {seed}); SaveChanges per row timed on the first {sample:N0}; batches of {batch:N0}.");

        // One untimed row first: EF builds its model and Npgsql its type mappings on first use, a cost no method should carry.
        await VectorStore.RecreateTablesAsync(db, cancellationToken);
        db.Documents.Add(Entity(documents[0], vectors[0]));
        await db.SaveChangesAsync(cancellationToken);
        db.ChangeTracker.Clear();

        var results = new List<IngestResult>();
        var indexes = new List<IndexBuild>();
        await context.Progress().StartAsync(async progress =>
        {
            async Task Measure(string method, string description, int count, Func<ProgressTask, Task> write)
            {
                var task = progress.AddTask(method, maxValue: count);
                await VectorStore.RecreateTablesAsync(db, cancellationToken);
                var watch = Stopwatch.StartNew();
                await write(task);
                var seconds = watch.Elapsed.TotalSeconds;
                task.Value = count;
                var stored = await BenchContext.ScalarAsync<long>(dataSource, $"SELECT count(*) FROM {VectorDocumentConfiguration.TableName}", cancellationToken);
                if (stored != count)
                {
                    throw new InvalidOperationException($"{method} wrote {stored} rows, not {count}.");
                }

                results.Add(new IngestResult(method, description, count, seconds, count / seconds, 0));
            }

            await Measure("SaveChanges per row", "Add one entity, SaveChanges, repeat: a round trip and a transaction per row", sample, async task =>
            {
                await using var perRow = BenchContext.NewDbContext(dataSource, shape);
                for (var i = 0; i < sample; i++)
                {
                    perRow.Documents.Add(Entity(documents[i], vectors[i]));
                    await perRow.SaveChangesAsync(cancellationToken);
                    perRow.ChangeTracker.Clear();
                    task.Increment(1);
                }
            });

            await Measure("AddRange + SaveChanges per batch", $"AddRange of {batch:N0} entities, one SaveChanges (EF batches the INSERTs)", rows, async task =>
            {
                for (var start = 0; start < rows; start += batch)
                {
                    await using var batched = BenchContext.NewDbContext(dataSource, shape);
                    var count = Math.Min(batch, rows - start);
                    batched.Documents.AddRange(Enumerable.Range(start, count).Select(i => Entity(documents[i], vectors[i])));
                    await batched.SaveChangesAsync(cancellationToken);
                    task.Increment(count);
                }
            });

            await Measure("multi-row INSERT", $"INSERT ... VALUES ($1, $2, $3, $4), ... with {batch:N0} rows a statement, one transaction", rows, async task =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                for (var start = 0; start < rows; start += batch)
                {
                    var count = Math.Min(batch, rows - start);
                    await using var command = MultiRowInsert(connection, documents, vectors, start, count);
                    await command.ExecuteNonQueryAsync(cancellationToken);
                    task.Increment(count);
                }

                await transaction.CommitAsync(cancellationToken);
            });

            await Measure("binary COPY", "VectorStore.CopyAsync: COPY ... FROM STDIN (FORMAT BINARY), one transaction", rows, async task =>
                await VectorStore.CopyAsync(dataSource, documents, vectors, cancellationToken));

            // The table now holds the COPY's rows: build each vector index on them, one at a time.
            var ddl = VectorStore.Ddl(db);
            foreach (var (name, method) in new[] { (VectorDocumentConfiguration.HnswIndex, "HNSW (m 16, ef_construction 64)"), (VectorDocumentConfiguration.IvfFlatIndex, $"IVFFlat (lists {shape.IvfFlatLists})") })
            {
                var task = progress.AddTask($"building {method}", maxValue: 1);
                indexes.Add(await IndexBuild.MeasureAsync(dataSource, name, method, ddl.Indexes[name], maintenanceWorkMem, cancellationToken));
                task.Value = 1;
            }
        });

        var copy = results.Single(r => r.Method == "binary COPY").RowsPerSecond;
        results = results.Select(r => r with { CopySpeedup = copy / r.RowsPerSecond }).ToList();

        var table = new Table().Title($"{rows:N0} rows x {Dimensions} dimensions into {Schema}.{VectorDocumentConfiguration.TableName}")
            .AddColumns("method", "rows", "seconds", "rows/s", "COPY is x times faster");
        foreach (var r in results)
        {
            table.AddRow(Markup.Escape(r.Method), r.Rows.ToString("N0"), r.Seconds.ToString("F2"), r.RowsPerSecond.ToString("N0"), r.CopySpeedup.ToString("F1"));
        }

        context.Console.Write(table);
        var indexTable = new Table().Title($"index builds (maintenance_work_mem {maintenanceWorkMem})").AddColumns("index", "seconds", "size MB", "table MB");
        foreach (var i in indexes)
        {
            indexTable.AddRow(Markup.Escape(i.Index), i.Seconds.ToString("F2"), (i.IndexBytes / 1048576.0).ToString("F1"), (i.TableBytes / 1048576.0).ToString("F1"));
        }

        context.Console.Write(indexTable);
        var report = new IngestReport(rows, Dimensions, seed, sample, batch, maintenanceWorkMem, machine, results, indexes);
        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "ingest", report, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "ingest", ["method", "rows", "seconds", "rows_per_second", "copy_speedup"],
                results.Select(r => (IReadOnlyList<object?>)[r.Method, r.Rows, r.Seconds, r.RowsPerSecond, r.CopySpeedup]), cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "ingest-indexes", ["index", "seconds", "index_bytes", "table_bytes"],
                indexes.Select(i => (IReadOnlyList<object?>)[i.Index, i.Seconds, i.IndexBytes, i.TableBytes]), cancellationToken));
        return 0;
    }

    private static VectorDocument Entity(CorpusDocument document, Vector embedding) =>
        new() { Title = document.Title, Content = document.Content, Source = document.Source, Embedding = embedding };

    private static NpgsqlCommand MultiRowInsert(NpgsqlConnection connection, IReadOnlyList<CorpusDocument> documents, IReadOnlyList<Vector> vectors, int start, int count)
    {
        var sql = new StringBuilder($"INSERT INTO {VectorDocumentConfiguration.TableName} (title, content, source, embedding) VALUES ");
        var command = connection.CreateCommand();
        for (var r = 0; r < count; r++)
        {
            var p = r * 4;
            sql.Append(r == 0 ? "" : ", ").Append(System.Globalization.CultureInfo.InvariantCulture, $"(${p + 1}, ${p + 2}, ${p + 3}, ${p + 4})");
            var document = documents[start + r];
            command.Parameters.Add(new NpgsqlParameter { Value = document.Title });
            command.Parameters.Add(new NpgsqlParameter { Value = document.Content });
            command.Parameters.Add(new NpgsqlParameter { Value = document.Source });
            command.Parameters.Add(new NpgsqlParameter { Value = vectors[start + r] });
        }

        command.CommandText = sql.ToString();
        return command;
    }
}

/// <param name="CopySpeedup">COPY's rows/s divided by this method's: how many times faster COPY is.</param>
public sealed record IngestResult(string Method, string Description, int Rows, double Seconds, double RowsPerSecond, double CopySpeedup);

public sealed record IngestReport(int Rows, int Dimensions, int Seed, int PerRowSample, int Batch, string MaintenanceWorkMem, MachineInfo Machine,
    IReadOnlyList<IngestResult> Methods, IReadOnlyList<IndexBuild> Indexes);
