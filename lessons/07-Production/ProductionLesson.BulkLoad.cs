using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Embeddings;

namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Performance: batch operations; index after bulk insert; slow inserts with an index.</summary>
public sealed partial class ProductionLesson
{
    private static async Task<IReadOnlyList<Vector>> BulkLoadAsync(Lesson lesson, int dims, CancellationToken cancellationToken)
    {
        lesson.Step("bulk-load", "Bulk load: row by row against binary COPY",
            $"{BulkRows:N0} vectors (the corpus' embeddings with a little noise): {RowByRowRows:N0} by one INSERT per row, then all by one binary COPY in one transaction. " +
            "EF Core's AddRange + SaveChanges (lesson 02), like bulk_insert_mappings, sits between the two.");
        List<Vector> vectors;
        using (lesson.Detail())
        {
            var corpus = (await lesson.QueryAsync("SELECT embedding FROM vector_documents ORDER BY id", cancellationToken))
                .Select(r => (Vector)r["embedding"]!).ToList();
            vectors = Perturb(corpus, BulkRows * 2, dims); // the second half is loaded later, into the indexed table
            await lesson.ExecuteAsync("DROP TABLE IF EXISTS bulk_vectors", cancellationToken);
            await lesson.ExecuteAsync($"CREATE TABLE bulk_vectors (id integer PRIMARY KEY, source text NOT NULL, embedding vector({dims}) NOT NULL)", cancellationToken);
        }


        const string insert = "INSERT INTO bulk_vectors (id, source, embedding) VALUES (@id, @source, @embedding)";
        lesson.Sql(insert, ["one statement, one round trip and one commit per row"]);
        double rowByRow;
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        {
            var watch = Stopwatch.StartNew();
            await using var command = new NpgsqlCommand(insert, connection);
            var id = new NpgsqlParameter<int>("id", 0);
            var source = new NpgsqlParameter<string>("source", "");
            var embedding = new NpgsqlParameter<Vector>("embedding", vectors[0]);
            command.Parameters.Add(id);
            command.Parameters.Add(source);
            command.Parameters.Add(embedding);
            for (var i = 0; i < RowByRowRows; i++)
            {
                id.TypedValue = i + 1;
                source.TypedValue = SourceOf(i);
                embedding.TypedValue = vectors[i];
                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            rowByRow = RowByRowRows / watch.Elapsed.TotalSeconds;
        }

        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("TRUNCATE bulk_vectors", cancellationToken);
        }

        var copied = BulkRows / (await CopyAsync(lesson, vectors, 0, BulkRows, cancellationToken)).TotalSeconds;
        lesson.Table(new[] { ("INSERT, row by row", RowByRowRows, rowByRow), ("binary COPY, one transaction", BulkRows, copied) },
            ("method", r => r.Item1), ("rows", r => r.Item2), ("rows/s", r => r.Item3.ToString("N0", CultureInfo.InvariantCulture)));
        lesson.Say($"COPY was {copied / rowByRow:0.0}x faster here than one INSERT per row, each its own round trip and commit. " +
                   "The bench's ingest command (docs/benchmarks.md) measured COPY 47x faster than one EF SaveChanges per row, 6.7x than AddRange with one SaveChanges per 1,000 rows, and 2.0x than multi-row INSERTs of 1,000 rows.");
        return vectors;
    }

    /// <summary>Writes rows [from, from + count) of <paramref name="vectors"/> with one binary COPY in one transaction.</summary>
    private static async Task<TimeSpan> CopyAsync(Lesson lesson, IReadOnlyList<Vector> vectors, int from, int count, CancellationToken cancellationToken)
    {
        const string copy = "COPY bulk_vectors (id, source, embedding) FROM STDIN (FORMAT BINARY)";
        lesson.Sql("BEGIN;\n" + copy + ";\nCOMMIT;", [$"{count:N0} rows streamed in one statement, one transaction: all land or none"]);
        var watch = Stopwatch.StartNew();
        await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var writer = await connection.BeginBinaryImportAsync(copy, cancellationToken))
        {
            for (var i = from; i < from + count; i++)
            {
                await writer.WriteRowAsync(cancellationToken, i + 1, SourceOf(i), vectors[i]);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return watch.Elapsed;
    }

    private static async Task IndexBuildAsync(Lesson lesson, int dims, CancellationToken cancellationToken)
    {
        lesson.Step("index-build", "Then build the index, with memory for it",
            "An index built once over loaded rows is faster and better than one updated row by row. maintenance_work_mem is what one build may use: " +
            "when the HNSW graph outgrows it, pgvector says so and the build slows down.");
        const string create = "CREATE INDEX bulk_vectors_hnsw ON bulk_vectors USING hnsw (embedding vector_cosine_ops)";
        var builds = new List<(string Memory, double Seconds, string Notice)>();
        var progress = new List<(string Phase, long Done, long Total)>();
        foreach (var memory in new[] { "1MB", "256MB" })
        {
            using (lesson.QuietSql())
            {
                await lesson.ExecuteAsync("DROP INDEX IF EXISTS bulk_vectors_hnsw", cancellationToken);
            }

            var notices = new List<string>();
            await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
            connection.Notice += (_, e) => notices.Add(e.Notice.MessageText);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            Stopwatch watch;
            Task<int> build;
            // The same two statements at the second setting, and the progress query: a detail.
            using (memory == "256MB" ? lesson.Detail() : null)
            {
                await lesson.ExecuteAsync($"SET LOCAL maintenance_work_mem = '{memory}'", connection, cancellationToken);
                watch = Stopwatch.StartNew();
                build = lesson.ExecuteAsync(create, connection, cancellationToken);
                if (memory == "256MB")
                {
                    lesson.Sql("SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index  -- polled from another connection");
                }
            }

            if (memory == "256MB")
            {
                await PollProgressAsync(lesson, build, progress, cancellationToken);
            }

            await build;
            builds.Add((memory, watch.Elapsed.TotalSeconds, notices.Count == 0 ? "" : string.Join(" ", notices)));
            await transaction.CommitAsync(cancellationToken);
        }

        lesson.Table(builds, ("maintenance_work_mem", r => r.Memory), ("build seconds", r => r.Seconds.ToString("0.00", CultureInfo.InvariantCulture)), ("server notice", r => r.Notice));
        if (progress.Count == 0)
        {
            lesson.Say("The build finished before the first poll saw it.", Tone.Aside);
        }
        else
        {
            lesson.Say($"{progress.Count} distinct readings of pg_stat_progress_create_index while the index was built.", Tone.Aside);
        }

        // The readings, the statistics and the parallel build: measured on this machine, for reading later.
        using (lesson.Detail())
        {
            if (progress.Count > 0)
            {
                var shown = progress.Count <= 8 ? progress : [.. progress.Take(4), .. progress.TakeLast(4)];
                lesson.Table(shown, ("phase", r => r.Phase), ("tuples done", r => r.Done), ("tuples total", r => r.Total));
            }

            await lesson.ExecuteAsync("ANALYZE bulk_vectors", cancellationToken);
            await ParallelBuildAsync(lesson, dims, cancellationToken);
        }
    }

    /// <summary>
    /// max_parallel_maintenance_workers beside maintenance_work_mem: the same HNSW build with 0, 1 and 2 workers on a table
    /// above min_parallel_table_scan_size (8MB), the smallest PostgreSQL plans workers for.
    /// </summary>
    private static async Task ParallelBuildAsync(Lesson lesson, int dims, CancellationToken cancellationToken)
    {
        var corpus = (await lesson.QueryAsync("SELECT embedding FROM vector_documents ORDER BY id", cancellationToken)).Select(r => (Vector)r["embedding"]!).ToList();
        var vectors = Perturb(corpus, ParallelRows, dims);
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("DROP TABLE IF EXISTS parallel_vectors", cancellationToken);
            await lesson.ExecuteAsync($"CREATE TABLE parallel_vectors (id integer PRIMARY KEY, embedding vector({dims}) NOT NULL)", cancellationToken);
            await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
            await using var writer = await connection.BeginBinaryImportAsync("COPY parallel_vectors (id, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken);
            for (var i = 0; i < vectors.Count; i++)
            {
                await writer.WriteRowAsync(cancellationToken, i + 1, vectors[i]);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        var bytes = (long)(await lesson.QueryAsync("SELECT pg_relation_size('parallel_vectors') AS bytes", cancellationToken))[0]["bytes"]!;
        // PostgreSQL plans no workers for a table under min_parallel_table_scan_size (8MB) unless the table says how many;
        // wide vectors live out of line (TOAST), so with 1,536 dimensions the table itself stays small.
        var belowThreshold = bytes < 8L << 20;
        if (belowThreshold)
        {
            await lesson.ExecuteAsync("ALTER TABLE parallel_vectors SET (parallel_workers = 2)", cancellationToken);
        }

        lesson.Say($"Then max_parallel_maintenance_workers, the other setting of an index build: parallel_vectors, {ParallelRows:N0} such vectors, {Size(bytes)} in the table itself, " +
                   (belowThreshold
                       ? "under min_parallel_table_scan_size (8MB), below which PostgreSQL plans no workers unless the table's parallel_workers storage parameter asks for them (set above). "
                       : "above min_parallel_table_scan_size (8MB), below which PostgreSQL plans no workers at all. ") +
                   "Indexed with 0, 1 and 2 workers at maintenance_work_mem = 64MB: pgvector builds the graph in shared memory the size of maintenance_work_mem, and Docker gives a container 64MB of it unless --shm-size says more. " +
                   "The workers launched are pgvector's own count (its DEBUG1 message, read with client_min_messages = debug1).", Tone.Aside);
        const string create = "CREATE INDEX parallel_vectors_hnsw ON parallel_vectors USING hnsw (embedding vector_cosine_ops)";
        lesson.Sql("SET LOCAL maintenance_work_mem = '64MB';\nSET LOCAL max_parallel_maintenance_workers = 0 | 1 | 2;\n" + create);
        var builds = new List<(int Asked, int Launched, double Seconds)>();
        using (lesson.QuietSql())
        {
            foreach (var workers in new[] { 0, 1, 2 })
            {
                await lesson.ExecuteAsync("DROP INDEX IF EXISTS parallel_vectors_hnsw", cancellationToken);
                var launched = 0;
                await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
                connection.Notice += (_, e) =>
                {
                    var match = System.Text.RegularExpressions.Regex.Match(e.Notice.MessageText, @"^using (\d+) parallel workers");
                    if (match.Success)
                    {
                        launched = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                    }
                };
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await lesson.ExecuteAsync("SET LOCAL maintenance_work_mem = '64MB'", connection, cancellationToken);
                await lesson.ExecuteAsync($"SET LOCAL max_parallel_maintenance_workers = {workers}", connection, cancellationToken);
                await lesson.ExecuteAsync("SET LOCAL client_min_messages = debug1", connection, cancellationToken);
                var watch = Stopwatch.StartNew();
                await lesson.ExecuteAsync(create, connection, cancellationToken);
                builds.Add((workers, launched, watch.Elapsed.TotalSeconds));
                await transaction.CommitAsync(cancellationToken);
            }
        }

        lesson.Table(builds,
            ("max_parallel_maintenance_workers", r => r.Asked),
            ("workers launched", r => r.Launched),
            ("build seconds", r => r.Seconds.ToString("0.00", CultureInfo.InvariantCulture)));
        var serial = builds[0].Seconds;
        var best = builds.Skip(1).MinBy(r => r.Seconds);
        lesson.Say($"Alone the build took {serial:0.00} s; the better of the parallel builds, with {best.Launched} worker{(best.Launched == 1 ? "" : "s")} besides the leader, {best.Seconds:0.00} s ({serial / best.Seconds:0.0} times as fast). " +
                   $"The client sees {Environment.ProcessorCount} cores; on the course machine the server shares them with it and with whatever else runs, and each worker is one more process for them: the gain is bounded by the free cores, not by the setting. " +
                   "On a server with cores to spare, raise it (pgvector's README: SET max_parallel_maintenance_workers = 7, plus max_parallel_workers for more than 8).");
    }

    private static async Task PollProgressAsync(Lesson lesson, Task build, List<(string Phase, long Done, long Total)> progress, CancellationToken cancellationToken)
    {
        while (!build.IsCompleted)
        {
            await using (var command = lesson.DataSource.CreateCommand(
                "SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index WHERE relid = 'bulk_vectors'::regclass"))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                if (await reader.ReadAsync(cancellationToken))
                {
                    var row = (reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2));
                    if (progress.Count == 0 || progress[^1] != row)
                    {
                        progress.Add(row);
                    }
                }
            }

            await Task.WhenAny(build, Task.Delay(20, cancellationToken));
        }
    }

    private static async Task SlowInsertsAsync(Lesson lesson, int dims, IReadOnlyList<Vector> vectors, CancellationToken cancellationToken)
    {
        lesson.DeepDive("slow-inserts", "Slow inserts with an index: keep it, or drop and rebuild?",
            $"The Python module's fix for slow inserts: drop the index, bulk insert, recreate it. Measured: {BulkRows:N0} more rows copied into the indexed table, " +
            "against dropping the index, copying them and rebuilding it.");
        var kept = await CopyAsync(lesson, vectors, BulkRows, BulkRows, cancellationToken);

        // Back to the first rows for the other way. The VACUUM that frees the deleted rows' space is not part of either
        // way, and without the index it is quick (with it, VACUUM would first mend the graph around every deleted row).
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync($"DELETE FROM bulk_vectors WHERE id > {BulkRows}", cancellationToken);
        }

        var watch = Stopwatch.StartNew();
        await lesson.ExecuteAsync("DROP INDEX bulk_vectors_hnsw", cancellationToken);
        watch.Stop();
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync("VACUUM bulk_vectors", cancellationToken);
        }

        watch.Start();
        var copied = await CopyAsync(lesson, vectors, BulkRows, BulkRows, cancellationToken);
        var rebuild = Stopwatch.StartNew();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await lesson.ExecuteAsync("SET LOCAL maintenance_work_mem = '256MB'", connection, cancellationToken);
            await lesson.ExecuteAsync("CREATE INDEX bulk_vectors_hnsw ON bulk_vectors USING hnsw (embedding vector_cosine_ops)", connection, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        var dropped = watch.Elapsed;
        await lesson.ExecuteAsync("ANALYZE bulk_vectors", cancellationToken);
        lesson.Table(new[]
            {
                ("COPY with the index in place", kept.TotalSeconds, kept.TotalSeconds, 0.0),
                ("DROP INDEX, COPY, CREATE INDEX", dropped.TotalSeconds, copied.TotalSeconds, rebuild.Elapsed.TotalSeconds),
            },
            ("way", r => r.Item1),
            ("total seconds", r => r.Item2.ToString("0.00", CultureInfo.InvariantCulture)),
            ("of it COPY", r => r.Item3.ToString("0.00", CultureInfo.InvariantCulture)),
            ("of it index build", r => r.Item4 > 0 ? r.Item4.ToString("0.00", CultureInfo.InvariantCulture) : ""));
        var faster = kept < dropped ? "keeping the index" : "dropping and rebuilding it";
        lesson.Say($"Adding {BulkRows:N0} rows to {BulkRows:N0}, {faster} was faster (kept {kept.TotalSeconds:0.00} s, rebuilt {dropped.TotalSeconds:0.00} s). " +
                   "A rebuild costs the whole table: keep the index when a small slice joins a big one.");
    }

    private static string SourceOf(int i) => (i % 3) switch { 0 => "docs", 1 => "blog", _ => "research" };

    /// <summary>Each corpus vector copied with Gaussian noise and normalised: clusters like real data, deterministic.</summary>
    private static List<Vector> Perturb(IReadOnlyList<Vector> corpus, int count, int dims)
    {
        var random = new Random(7);
        var result = new List<Vector>(count);
        for (var i = 0; i < count; i++)
        {
            var basis = corpus[i % corpus.Count].ToArray();
            var v = new float[dims];
            for (var d = 0; d < dims; d++)
            {
                v[d] = basis[d] + (float)(0.03 * GaussianNoise.Next(random));
            }

            UnitVector.Normalize(v);
            result.Add(new Vector(v));
        }

        return result;
    }
}
