using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore.Infrastructure;
using PgVectorModule.Configuration;
using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Lessons.Production;

/// <summary>
/// Lesson 07: the Python module's production sections, run rather than read: connection pooling and what pool
/// exhaustion looks like, bulk loading with COPY against row-by-row inserts, smaller vectors (halfvec, binary
/// quantization with re-ranking) with their sizes and recall, maintenance and monitoring, security with a
/// read-only role, and scaling out with a partitioned table.
/// </summary>
public sealed class ProductionLesson : ILesson
{
    /// <summary>Rows in the bulk-load table: enough for COPY and the index build to show, small enough for a few seconds.</summary>
    public const int BulkRows = 2000;

    /// <summary>Searches per task in the pooling step, with <see cref="Searchers"/> tasks at once.</summary>
    public const int SearchesPerTask = 25;
    public const int Searchers = 8;

    /// <summary>The pool the concurrent searchers share: fewer connections than tasks, so some wait their turn.</summary>
    public const int SharedPoolSize = 4;

    /// <summary>Candidates the binary index returns before the full vectors re-rank them.</summary>
    public const int RerankCandidates = 40;

    public const string HostileSource = "docs' OR '1'='1";

    public static LessonInfo Info => LessonCatalog.Get("07");

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);
        var dims = embedder.Dimensions;

        lesson.Step("Load the corpus", "This lesson's own copy of the sample corpus, embedded and indexed as in lesson 04.");
        VectorStoreShape shape;
        await using (var db = await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, cancellationToken))
        {
            shape = db.Shape;
        }

        var question = await embedder.EmbedQueryAsync("how do I keep database credentials out of source code?", cancellationToken);
        await PoolingAsync(lesson, question, cancellationToken);
        await HotPathAsync(lesson, shape, question, cancellationToken);
        var vectors = await BulkLoadAsync(lesson, dims, cancellationToken);
        await SmallerVectorsAsync(lesson, dims, vectors, cancellationToken);
        await MaintenanceAsync(lesson, question, cancellationToken);
        await SecurityAsync(lesson, question, cancellationToken);
        await ScalingAsync(lesson, dims, question, cancellationToken);
    }

    // ---------------------------------------------------------------- pooling

    private static async Task PoolingAsync(Lesson lesson, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("One data source, many concurrent searches",
            $"An NpgsqlDataSource owns a pool of physical connections. {Searchers} tasks x {SearchesPerTask} searches share one data source capped at Max Pool Size = {SharedPoolSize}: tasks wait for a free connection instead of opening their own.");
        var shared = lesson.Settings.ConnectionString();
        shared.MaxPoolSize = SharedPoolSize;
        shared.ApplicationName = "lesson07-pool";
        await using var pooled = ModuleDataSource.Create(shared, lesson.Schema);
        const string search = "SELECT id FROM vector_documents ORDER BY embedding <=> @q LIMIT 5";
        lesson.Sql(search, ["@q = [384 floats]"]);
        var watch = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, Searchers).Select(async _ =>
        {
            var ok = 0;
            for (var i = 0; i < SearchesPerTask; i++)
            {
                await using var command = pooled.CreateCommand(search);
                command.Parameters.AddWithValue("q", question);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var rows = 0;
                while (await reader.ReadAsync(cancellationToken))
                {
                    rows++;
                }

                ok += rows == 5 ? 1 : 0;
            }

            return ok;
        }));
        watch.Stop();
        var connections = (long)(await lesson.QueryAsync(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'lesson07-pool' AND datname = current_database()", cancellationToken))[0]["n"]!;
        lesson.Say($"[bold]{results.Sum()}[/] of {Searchers * SearchesPerTask} searches returned 5 rows, in {watch.ElapsedMilliseconds:N0} ms, over [bold]{connections}[/] server connection(s) (Max Pool Size {SharedPoolSize}).");
        lesson.Table(new[]
            {
                ("Maximum Pool Size (Max Pool Size)", "100", "connections the pool may open; keep the sum over all app instances below the server's max_connections"),
                ("Minimum Pool Size", "0", "connections kept open when idle"),
                ("Timeout", "15 s", "how long Open waits for a connection (a free one from the pool or a new one)"),
                ("Connection Idle Lifetime", "300 s", "idle connections above the minimum are closed after this"),
                ("Multiplexing", "false", "many commands share one connection; no transactions across commands"),
            },
            ("connection-string keyword", r => r.Item1), ("default", r => r.Item2), ("what it does", r => r.Item3));

        lesson.Say("[grey]What exhaustion looks like: a pool of one, a timeout of one second, one connection held, a second asked for.[/]");
        var tiny = lesson.Settings.ConnectionString();
        tiny.MaxPoolSize = 1;
        tiny.Timeout = 1;
        tiny.ApplicationName = "lesson07-tiny";
        await using (var tinySource = ModuleDataSource.Create(tiny, lesson.Schema))
        await using (await tinySource.OpenConnectionAsync(cancellationToken))
        {
            try
            {
                await using var second = await tinySource.OpenConnectionAsync(cancellationToken);
                lesson.Say("[yellow]The second connection opened: the pool was not exhausted.[/]");
            }
            catch (NpgsqlException e) when (e.InnerException is TimeoutException || e.Message.Contains("exhausted", StringComparison.Ordinal))
            {
                lesson.Say($"[red]{Markup.Escape(e.Message)}[/]");
                lesson.Say("[grey]Pool exhaustion is almost always a connection not given back (a missing await using) or too many concurrent requests for the pool: fix the leak or queue the work, then size the pool.[/]");
            }
        }

        lesson.Step("EF Core context pooling", "PooledDbContextFactory (AddDbContextPool / AddPooledDbContextFactory in ASP.NET Core) reuses DbContext instances: created once, reset on return, leased again.");
        var factory = new PooledDbContextFactory<CourseDbContext>(CourseDbContext.CreateOptions(pooled), poolSize: 16);
        var leases = new List<(int Use, Guid Instance, int Lease, int Documents)>();
        for (var use = 1; use <= 3; use++)
        {
            await using var context = await factory.CreateDbContextAsync(cancellationToken);
            var count = await context.Database.SqlQueryRaw<int>("SELECT count(*)::int AS \"Value\" FROM vector_documents").SingleAsync(cancellationToken);
            leases.Add((use, context.ContextId.InstanceId, context.ContextId.Lease, count));
        }

        lesson.Table(leases, ("use", r => r.Use), ("context instance", r => r.Instance.ToString()[..8]), ("lease", r => r.Lease), ("documents", r => r.Documents));
        lesson.Say(leases.Select(l => l.Instance).Distinct().Count() == 1
            ? "[bold]One[/] context instance served all three uses (the lease number counts them)."
            : "[yellow]The factory made more than one instance.[/]");
        lesson.Sql("""
            // In ASP.NET Core: one data source for the app, pooled contexts over it
            builder.Services.AddNpgsqlDataSource(connectionString, b => b.UseVector());
            builder.Services.AddDbContextPool<CourseDbContext>((sp, o) =>
                o.UseNpgsql(sp.GetRequiredService<NpgsqlDataSource>(), n => n.UseVector()), poolSize: 128);
            """);
    }

    // ---------------------------------------------------------------- hot path

    /// <summary>Searches per way in the hot-path step: enough for a steady median.</summary>
    public const int HotPathSearches = 100;

    private static async Task HotPathAsync(Lesson lesson, VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("The hot path: compiled query, prepared statement",
            "The same nearest-neighbour SQL three ways. A LINQ query is looked up in EF Core's query cache on every call; EF.CompileAsyncQuery does that once. " +
            "A prepared statement skips the server's parse and plan; Npgsql prepares automatically once a statement has run 5 times when Max Auto Prepare is set.");
        lesson.Sql("""
            // once, for the application's lifetime
            static readonly Func<SearchDbContext, Vector, int, IAsyncEnumerable<VectorHit>> Nearest =
                EF.CompileAsyncQuery((SearchDbContext db, Vector q, int k) => db.Documents
                    .Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.CosineDistance(q) })
                    .OrderBy(h => h.Distance).Take(k)
                    .Select(h => new VectorHit(h.Id, h.Title, h.Source, h.Distance)));
            // connection string: ...;Max Auto Prepare=20
            """);
        var preparing = lesson.Settings.ConnectionString();
        preparing.MaxAutoPrepare = 20;
        await using var preparingSource = ModuleDataSource.Create(preparing, lesson.Schema);
        await using var linqDb = new SearchDbContext(SearchDbContext.CreateOptions(lesson.DataSource), shape);
        await using var compiledDb = new SearchDbContext(SearchDbContext.CreateOptions(lesson.DataSource), shape);
        await using var preparedDb = new SearchDbContext(SearchDbContext.CreateOptions(preparingSource), shape);
        var ways = new (string Name, SearchDbContext Db, Func<SearchDbContext, IAsyncEnumerable<VectorHit>> Search)[]
        {
            ("LINQ (VectorSearch.Nearest)", linqDb, db => VectorSearch.Nearest(db, question, limit: 5).AsAsyncEnumerable()),
            ("compiled", compiledDb, db => VectorSearch.NearestCosineCompiled(db, question, 5)),
            ("compiled + Max Auto Prepare", preparedDb, db => VectorSearch.NearestCosineCompiled(db, question, 5)),
        };
        var rows = new List<(string Way, double P50, string Top)>();
        foreach (var (name, db, search) in ways)
        {
            // One open connection per way, warmed past the 5 runs after which Npgsql prepares.
            await db.Database.OpenConnectionAsync(cancellationToken);
            for (var i = 0; i < 10; i++)
            {
                await search(db).ToListAsync(cancellationToken);
            }

            var timings = new List<double>(HotPathSearches);
            List<VectorHit> hits = [];
            for (var i = 0; i < HotPathSearches; i++)
            {
                var watch = Stopwatch.StartNew();
                hits = await search(db).ToListAsync(cancellationToken);
                timings.Add(watch.Elapsed.TotalMilliseconds);
            }

            timings.Sort();
            rows.Add((name, timings[timings.Count / 2], string.Join(", ", hits.Select(h => h.Id))));
        }

        lesson.Table(rows, ("way", r => r.Way), ($"median of {HotPathSearches} searches, ms", r => r.P50.ToString("F3", CultureInfo.InvariantCulture)), ("ids found", r => r.Top));
        lesson.Say(rows.Select(r => r.Top).Distinct().Count() == 1
            ? "[bold]The same rows[/] all three ways: the SQL is the same, only the work around it differs. On 180 rows the scan is cheap, so what is left is that work; docs/benchmarks.md measures it at 100,000 rows."
            : "[yellow]The three ways found different rows.[/]");
    }

    // ---------------------------------------------------------------- bulk load

    private static async Task<IReadOnlyList<Vector>> BulkLoadAsync(Lesson lesson, int dims, CancellationToken cancellationToken)
    {
        lesson.Step("Bulk load: row by row against binary COPY",
            $"The same {BulkRows:N0} vectors (the corpus' embeddings, each copied with a little noise) written twice: one INSERT per row, then one binary COPY in one transaction.");
        var corpus = (await lesson.QueryAsync("SELECT embedding FROM vector_documents ORDER BY id", cancellationToken))
            .Select(r => (Vector)r["embedding"]!).ToList();
        var vectors = Perturb(corpus, BulkRows, dims);
        await lesson.ExecuteAsync("DROP TABLE IF EXISTS bulk_vectors", cancellationToken);
        await lesson.ExecuteAsync($"CREATE TABLE bulk_vectors (id integer PRIMARY KEY, source text NOT NULL, embedding vector({dims}) NOT NULL)", cancellationToken);

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
            for (var i = 0; i < vectors.Count; i++)
            {
                id.TypedValue = i + 1;
                source.TypedValue = SourceOf(i);
                embedding.TypedValue = vectors[i];
                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            rowByRow = vectors.Count / watch.Elapsed.TotalSeconds;
        }

        lesson.EchoSql = false;
        await lesson.ExecuteAsync("TRUNCATE bulk_vectors", cancellationToken);
        lesson.EchoSql = true;
        const string copy = "COPY bulk_vectors (id, source, embedding) FROM STDIN (FORMAT BINARY)";
        lesson.Sql("BEGIN;\n" + copy + ";\nCOMMIT;", ["every row streamed in one statement, one transaction: all land or none"]);
        double copied;
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        {
            var watch = Stopwatch.StartNew();
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using (var writer = await connection.BeginBinaryImportAsync(copy, cancellationToken))
            {
                for (var i = 0; i < vectors.Count; i++)
                {
                    await writer.WriteRowAsync(cancellationToken, i + 1, SourceOf(i), vectors[i]);
                }

                await writer.CompleteAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
            copied = vectors.Count / watch.Elapsed.TotalSeconds;
        }

        lesson.Table(new[] { ("INSERT, row by row", rowByRow), ("binary COPY, one transaction", copied) },
            ("method", r => r.Item1), ("rows", _ => BulkRows), ("rows/s", r => r.Item2.ToString("N0", CultureInfo.InvariantCulture)));
        lesson.Say($"COPY was [bold]{copied / rowByRow:0.0}x[/] faster here (rows/s: INSERT {rowByRow.ToString("N0", CultureInfo.InvariantCulture)}, COPY {copied.ToString("N0", CultureInfo.InvariantCulture)}). Over a network each INSERT also pays a round trip.");

        lesson.Step("Then build the index, with memory for it",
            "An index built once over loaded rows is faster and better than one updated row by row. maintenance_work_mem is the memory an index build may use; when the HNSW graph outgrows it pgvector says so and the build slows down. pg_stat_progress_create_index shows a running build from another session.");
        var progress = new List<(string Phase, long Done, long Total)>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await lesson.ExecuteAsync("SET LOCAL maintenance_work_mem = '256MB'", connection, cancellationToken);
            var build = lesson.ExecuteAsync("CREATE INDEX bulk_vectors_hnsw ON bulk_vectors USING hnsw (embedding vector_cosine_ops)", connection, cancellationToken);
            lesson.Sql("SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index  -- polled from another connection");
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

            await build;
            await transaction.CommitAsync(cancellationToken);
        }

        if (progress.Count == 0)
        {
            lesson.Say("[grey]The build finished before the first poll saw it.[/]");
        }
        else
        {
            var shown = progress.Count <= 8 ? progress : progress.Take(4).Concat(progress.TakeLast(4)).ToList();
            lesson.Table(shown, ("phase", r => r.Phase), ("tuples done", r => r.Done), ("tuples total", r => r.Total));
            lesson.Say($"[grey]{progress.Count} distinct progress readings while the index was built.[/]");
        }

        await lesson.ExecuteAsync("ANALYZE bulk_vectors", cancellationToken);
        return vectors;
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

    // ---------------------------------------------------------------- smaller vectors

    private static async Task SmallerVectorsAsync(Lesson lesson, int dims, IReadOnlyList<Vector> vectors, CancellationToken cancellationToken)
    {
        lesson.Step("Smaller vectors: halfvec and binary quantization",
            "halfvec stores 2 bytes per dimension instead of 4; binary_quantize keeps one bit per dimension (its sign), searched by Hamming distance <~>. Both can be expression indexes over the same vector column: nothing else in the table changes.");
        await lesson.ExecuteAsync($"CREATE INDEX bulk_vectors_halfvec_hnsw ON bulk_vectors USING hnsw ((embedding::halfvec({dims})) halfvec_cosine_ops)", cancellationToken);
        await lesson.ExecuteAsync($"CREATE INDEX bulk_vectors_bit_hnsw ON bulk_vectors USING hnsw ((binary_quantize(embedding)::bit({dims})) bit_hamming_ops)", cancellationToken);
        await lesson.ExecuteAsync("ANALYZE bulk_vectors", cancellationToken);

        var exactSql = "SELECT id FROM bulk_vectors ORDER BY embedding <=> @q LIMIT 10";
        var halfSql = $"SELECT id FROM bulk_vectors ORDER BY embedding::halfvec({dims}) <=> @q::halfvec({dims}) LIMIT 10";
        var bitSql = $"SELECT id FROM bulk_vectors ORDER BY binary_quantize(embedding)::bit({dims}) <~> binary_quantize(@q) LIMIT 10";
        var rerankSql = $"""
            SELECT id FROM (
                SELECT id, embedding FROM bulk_vectors
                ORDER BY binary_quantize(embedding)::bit({dims}) <~> binary_quantize(@q)
                LIMIT {RerankCandidates}
            ) candidates
            ORDER BY embedding <=> @q
            LIMIT 10
            """;
        var probes = Enumerable.Range(0, 20).Select(i => vectors[i * 97 % vectors.Count]).ToList();

        // Exact answers: no index at all (enable_indexscan off), every row compared.
        var truths = new List<IReadOnlyList<int>>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            lesson.EchoSql = false;
            await lesson.ExecuteAsync("SET LOCAL enable_indexscan = off", connection, cancellationToken);
            foreach (var probe in probes)
            {
                truths.Add(await IdsAsync(lesson, exactSql, connection, probe, cancellationToken));
            }

            lesson.EchoSql = true;
        }

        var rows = new List<(string Method, string Index, double Recall)>();
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            await lesson.ExecuteAsync("SET LOCAL hnsw.ef_search = 100", connection, cancellationToken);
            await lesson.ExplainAsync(halfSql, connection, [new NpgsqlParameter("q", probes[0])], cancellationToken);
            await lesson.ExplainAsync(rerankSql, connection, [new NpgsqlParameter("q", probes[0])], cancellationToken);
            lesson.EchoSql = false;
            foreach (var (method, index, sql) in new[]
                     {
                         ("vector, HNSW", "bulk_vectors_hnsw", exactSql),
                         ("halfvec, HNSW", "bulk_vectors_halfvec_hnsw", halfSql),
                         ("binary, Hamming only", "bulk_vectors_bit_hnsw", bitSql),
                         ($"binary top {RerankCandidates}, re-ranked by full vector", "bulk_vectors_bit_hnsw", rerankSql),
                     })
            {
                var total = 0.0;
                for (var i = 0; i < probes.Count; i++)
                {
                    var found = await IdsAsync(lesson, sql, connection, probes[i], cancellationToken);
                    total += truths[i].Intersect(found).Count() / 10.0;
                }

                rows.Add((method, index, total / probes.Count));
            }

            lesson.EchoSql = true;
            await transaction.RollbackAsync(cancellationToken);
        }

        var sizes = await lesson.QueryAsync("""
            SELECT indexrelid::regclass::text AS index, pg_relation_size(indexrelid) AS bytes
            FROM pg_index WHERE indrelid = 'bulk_vectors'::regclass
            """, cancellationToken);
        var bytes = sizes.ToDictionary(r => (string)r["index"]!, r => (long)r["bytes"]!);
        lesson.Table(rows,
            ("search", r => r.Method),
            ("index", r => r.Index),
            ("index size", r => Size(bytes.GetValueOrDefault(r.Index))),
            ("recall@10 vs exact (20 queries)", r => r.Recall.ToString("0.00", CultureInfo.InvariantCulture)));
        lesson.Say($"[grey]The bit index holds {dims} bits per row against {dims * 4} bytes for the full vector; Hamming distance alone ranks coarsely, " +
                   $"so it fetches {RerankCandidates} candidates and the exact distance on the stored vectors picks the 10.[/]");
    }

    private static async Task<IReadOnlyList<int>> IdsAsync(Lesson lesson, string sql, NpgsqlConnection connection, Vector q, CancellationToken cancellationToken) =>
        (await lesson.QueryAsync(sql, connection, [new NpgsqlParameter("q", q)], cancellationToken)).Select(r => (int)r["id"]!).ToList();

    private static string Size(long bytes) => bytes >= 1 << 20
        ? (bytes / 1048576.0).ToString("0.0 'MB'", CultureInfo.InvariantCulture)
        : (bytes / 1024.0).ToString("0 'kB'", CultureInfo.InvariantCulture);

    // ---------------------------------------------------------------- maintenance

    private static async Task MaintenanceAsync(Lesson lesson, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("ANALYZE and VACUUM ANALYZE",
            "ANALYZE refreshes the planner's statistics after a bulk change; VACUUM makes the space of deleted rows reusable (and ANALYZE in the same pass). Autovacuum does both eventually; after a big load or delete, do it now.");
        await lesson.ExecuteAsync("DELETE FROM bulk_vectors WHERE id % 10 = 0", cancellationToken);
        await lesson.ExecuteAsync("ANALYZE bulk_vectors", cancellationToken);
        await lesson.ExecuteAsync("VACUUM ANALYZE bulk_vectors", cancellationToken);
        var table = await lesson.QueryAsync(
            "SELECT n_live_tup, last_vacuum IS NOT NULL AS vacuumed, last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relid = 'bulk_vectors'::regclass",
            cancellationToken);
        lesson.Table(table, ("live rows", r => r["n_live_tup"]), ("vacuumed", r => r["vacuumed"]), ("analyzed", r => r["analyzed"]));

        lesson.Step("REINDEX INDEX CONCURRENTLY",
            "Rebuilds an index (after many updates and deletes an HNSW graph holds dead entries) while reads and writes go on; it cannot run inside a transaction.");
        await lesson.ExecuteAsync("REINDEX INDEX CONCURRENTLY bulk_vectors_hnsw", cancellationToken);

        lesson.Step("Table and index sizes", "pg_total_relation_size counts the table with its indexes and TOAST; pg_relation_size one relation only.");
        var sizes = await lesson.QueryAsync("""
            SELECT c.relname AS relation, pg_relation_size(c.oid) AS bytes, pg_total_relation_size(c.oid) AS total_bytes
            FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relname LIKE 'bulk_vectors%'
            ORDER BY c.relname
            """, cancellationToken);
        lesson.Table(sizes, ("relation", r => r["relation"]), ("pg_relation_size", r => Size((long)r["bytes"]!)), ("pg_total_relation_size", r => Size((long)r["total_bytes"]!)));

        lesson.Step("Is the vector index used? pg_stat_user_indexes",
            "idx_scan counts the scans of each index. Read it, search, read it again: an index whose count never grows is one to drop.");
        const string scans = "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'bulk_vectors_hnsw' AND schemaname = current_schema()";
        var before = (long)(await lesson.QueryAsync(scans, cancellationToken))[0]["idx_scan"]!;
        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        {
            lesson.EchoSql = false;
            for (var i = 0; i < 5; i++)
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
                await lesson.QueryAsync("SELECT id FROM bulk_vectors ORDER BY embedding <=> @q LIMIT 10", connection, [new NpgsqlParameter("q", question)], cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }

            // Statistics reach shared memory when a session goes idle, at most once a second: ask for it now.
            await lesson.QueryAsync("SELECT pg_stat_force_next_flush()", connection, [], cancellationToken);
            lesson.EchoSql = true;
        }

        lesson.Sql("SELECT id FROM bulk_vectors ORDER BY embedding <=> @q LIMIT 10  -- 5 times");
        var after = before;
        for (var wait = 0; wait < 30 && after < before + 5; wait++)
        {
            lesson.EchoSql = wait == 0;
            after = (long)(await lesson.QueryAsync(scans, cancellationToken))[0]["idx_scan"]!;
            if (after < before + 5)
            {
                await Task.Delay(100, cancellationToken);
            }
        }

        lesson.EchoSql = true;
        lesson.Say($"idx_scan of bulk_vectors_hnsw: [bold]{before}[/] before, [bold]{after}[/] after 5 searches.");

        lesson.Step("pg_stat_statements", "The server's record of every statement shape: calls, total and mean time. It must be in shared_preload_libraries (a server restart), then CREATE EXTENSION in the database.");
        string preload;
        try
        {
            preload = (string?)(await lesson.QueryAsync("SHOW shared_preload_libraries", cancellationToken))[0]["shared_preload_libraries"] ?? "";
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            lesson.Say($"[yellow]This role may not read the server's settings ({Markup.Escape(e.MessageText)}); this step is skipped. " +
                       "An administrator can GRANT pg_read_all_settings to it.[/]");
            return;
        }

        if (!preload.Split(',', StringSplitOptions.TrimEntries).Contains("pg_stat_statements"))
        {
            lesson.Say($"[yellow]pg_stat_statements is not loaded on this server (shared_preload_libraries = '{Markup.Escape(preload)}'). " +
                       "Add it there (postgresql.conf, or command: -c shared_preload_libraries=pg_stat_statements in docker-compose), restart, and run this step again.[/]");
            return;
        }

        try
        {
            await lesson.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public", cancellationToken);
            var top = await lesson.QueryAsync("""
                SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
                       left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
                FROM public.pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE '%bulk_vectors%'
                ORDER BY total_exec_time DESC
                LIMIT 5
                """, cancellationToken);
            lesson.Table(top, ("calls", r => r["calls"]), ("total ms", r => r["total_ms"]), ("mean ms", r => r["mean_ms"]), ("query", r => r["query"]));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            lesson.Say($"[yellow]pg_stat_statements is loaded, but this user may not create the extension ({Markup.Escape(e.MessageText)}).[/]");
        }
    }

    // ---------------------------------------------------------------- security

    private static async Task SecurityAsync(Lesson lesson, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("sslmode and where credentials come from",
            "DATABASE_URL carries sslmode; Npgsql reads it as SSL Mode. Credentials come from the environment or .env, never from code.");
        lesson.Table(new[]
            {
                ("disable", "nothing: plain text", "a local socket or loopback only"),
                ("allow / prefer", "encrypts if the server offers it; no certificate check", "defaults; an attacker in the middle can downgrade or impersonate"),
                ("require", "always encrypted; the certificate is not checked", "stops eavesdropping, not impersonation"),
                ("verify-ca", "encrypted; the certificate is signed by a trusted CA (sslrootcert)", "the server is one your CA vouches for"),
                ("verify-full", "as verify-ca, and the host name matches the certificate", "what a managed cloud database should use"),
            },
            ("sslmode", r => r.Item1), ("what it checks", r => r.Item2), ("use it for", r => r.Item3));
        var ssl = await lesson.QueryAsync("SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl", cancellationToken);
        lesson.Say($"This run: DATABASE_URL from the [bold]{Markup.Escape(lesson.Settings.DatabaseUrlSource)}[/], " +
                   $"'{Markup.Escape(DatabaseUrl.Redact(lesson.Settings.DatabaseUrl))}', SSL Mode {lesson.Settings.ConnectionString().SslMode}, encrypted now: [bold]{ssl[0]["ssl"]}[/].");

        lesson.Step("A read-only role", "The searching part of an application needs SELECT, nothing more. The lesson creates a login role (roles are per server, so it is named after this database), grants it SELECT, searches as it, and shows an INSERT refused.");
        var database = (string)(await lesson.QueryAsync("SELECT current_database() AS db", cancellationToken))[0]["db"]!;
        var role = ReaderRole(database);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        try
        {
            lesson.Sql($"""
                CREATE ROLE {role} LOGIN;                    -- when it does not exist yet
                ALTER ROLE {role} WITH LOGIN PASSWORD '****'; -- a new random password every run, never stored
                GRANT USAGE ON SCHEMA {lesson.Schema} TO {role};
                GRANT SELECT ON vector_documents TO {role};
                """);
            lesson.EchoSql = false;
            await lesson.ExecuteAsync($"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END $$", cancellationToken);
            await lesson.ExecuteAsync($"ALTER ROLE {role} WITH LOGIN PASSWORD '{password}'", cancellationToken);
            await lesson.ExecuteAsync($"GRANT USAGE ON SCHEMA {lesson.Schema} TO {role}", cancellationToken);
            await lesson.ExecuteAsync($"GRANT SELECT ON vector_documents TO {role}", cancellationToken);
            lesson.EchoSql = true;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            lesson.EchoSql = true;
            lesson.Say($"[yellow]This user may not create roles ({Markup.Escape(e.MessageText)}); ask an administrator for a read-only role and skip to the next step.[/]");
            await ParametersAsync(lesson, lesson.DataSource, cancellationToken);
            return;
        }

        try
        {
            var readerConnection = lesson.Settings.ConnectionString();
            readerConnection.Username = role;
            readerConnection.Password = password;
            readerConnection.ApplicationName = "lesson07-reader";
            await using (var reader = ModuleDataSource.Create(readerConnection, lesson.Schema))
            {
                lesson.Say($"[grey]A second data source, as {role}:[/]");
                const string search = "SELECT title FROM vector_documents ORDER BY embedding <=> @q LIMIT 3";
                lesson.Sql(search, ["@q = [the question's vector]"]);
                await using (var command = reader.CreateCommand(search))
                {
                    command.Parameters.AddWithValue("q", question);
                    var titles = new List<string>();
                    await using var rows = await command.ExecuteReaderAsync(cancellationToken);
                    while (await rows.ReadAsync(cancellationToken))
                    {
                        titles.Add(rows.GetString(0));
                    }

                    lesson.Table(titles, ("title (searched as the read-only role)", t => t));
                }

                const string insert = "INSERT INTO vector_documents (title, content, source) VALUES ('injected', 'by the reader', 'docs')";
                lesson.Sql(insert);
                try
                {
                    await using var command = reader.CreateCommand(insert);
                    await command.ExecuteNonQueryAsync(cancellationToken);
                    lesson.Say("[red]The INSERT went through: the role can write.[/]");
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
                {
                    lesson.Say($"[green]Refused[/]: {e.SqlState} {Markup.Escape(e.MessageText)}");
                }

                await ParametersAsync(lesson, reader, cancellationToken);
            }
        }
        finally
        {
            // The role is the lesson's: it goes when the lesson is done (privileges first, or DROP ROLE refuses).
            await lesson.ExecuteAsync($"DROP OWNED BY {role}", CancellationToken.None);
            await lesson.ExecuteAsync($"DROP ROLE IF EXISTS {role}", CancellationToken.None);
        }
    }

    /// <summary>lesson07_reader_ plus the database name reduced to what an unquoted identifier may hold.</summary>
    public static string ReaderRole(string database)
    {
        ArgumentNullException.ThrowIfNull(database);
        var safe = new string(database.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
        var name = "lesson07_reader_" + safe;
        return name.Length > 63 ? name[..63] : name;
    }

    private static async Task ParametersAsync(Lesson lesson, NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        lesson.Step("Parameters, not concatenation", $"A source filter typed by a user: {HostileSource}. Pasted into the SQL it becomes SQL; sent as a parameter it stays a value.");
        var concatenated = $"SELECT count(*) FROM vector_documents WHERE source = '{HostileSource}'";
        lesson.Sql(concatenated, ["string concatenation: the quote ends the literal, OR '1'='1' matches every row"]);
        await using var bad = source.CreateCommand(concatenated);
        var all = (long)(await bad.ExecuteScalarAsync(cancellationToken))!;
        const string parameterized = "SELECT count(*) FROM vector_documents WHERE source = @source";
        lesson.Sql(parameterized, [$"@source = '{HostileSource}'"]);
        await using var good = source.CreateCommand(parameterized);
        good.Parameters.AddWithValue("source", HostileSource);
        var none = (long)(await good.ExecuteScalarAsync(cancellationToken))!;
        lesson.Say($"Concatenated: [red]{all}[/] rows. Parameterized: [green]{none}[/] rows. EF Core's LINQ and FromSql($\"...{{value}}\") always send parameters; FromSqlRaw with string concatenation does not.");
    }

    // ---------------------------------------------------------------- scaling

    private static async Task ScalingAsync(Lesson lesson, int dims, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("Scaling out, on paper", "When one server is not enough.");
        lesson.Table(new[]
            {
                ("read replicas", "searches far outnumber writes", "streaming replication; Npgsql: Host=primary,replica;Target Session Attributes=prefer-standby"),
                ("partitioning", "one big table, queries that name a date or a source", "PARTITION BY LIST/RANGE; each partition has its own, smaller vector index"),
                ("Citus", "more data or writes than one machine holds", "distributed PostgreSQL: tables sharded across nodes, pgvector on each"),
                ("smaller vectors", "the index no longer fits in memory", "halfvec, binary quantization with re-ranking (step 7)"),
            },
            ("approach", r => r.Item1), ("when", r => r.Item2), ("how", r => r.Item3));

        lesson.Step("A table partitioned by source", "PARTITION BY LIST (source): one partition per source, each with its own HNSW index. A query that names the source reads only its partition (partition pruning).");
        await lesson.ExecuteAsync("DROP TABLE IF EXISTS documents_by_source", cancellationToken);
        await lesson.ExecuteAsync($"CREATE TABLE documents_by_source (id integer, title text, source text NOT NULL, embedding vector({dims})) PARTITION BY LIST (source)", cancellationToken);
        foreach (var source in new[] { "docs", "blog", "research" })
        {
            await lesson.ExecuteAsync($"CREATE TABLE documents_by_source_{source} PARTITION OF documents_by_source FOR VALUES IN ('{source}')", cancellationToken);
        }

        await lesson.ExecuteAsync("CREATE TABLE documents_by_source_other PARTITION OF documents_by_source DEFAULT", cancellationToken);
        await lesson.ExecuteAsync("CREATE INDEX ON documents_by_source USING hnsw (embedding vector_cosine_ops)", cancellationToken);
        await lesson.ExecuteAsync("INSERT INTO documents_by_source SELECT id, title, source, embedding FROM vector_documents", cancellationToken);
        await lesson.ExecuteAsync("ANALYZE documents_by_source", cancellationToken);
        var counts = await lesson.QueryAsync("SELECT tableoid::regclass::text AS partition, count(*) AS rows FROM documents_by_source GROUP BY 1 ORDER BY 1", cancellationToken);
        lesson.Table(counts, ("partition", r => r["partition"]), ("rows", r => r["rows"]));
        await lesson.ExplainAsync("SELECT id, title FROM documents_by_source WHERE source = 'research' ORDER BY embedding <=> @q LIMIT 5", null,
            [new NpgsqlParameter("q", question)], cancellationToken);
        lesson.Say("[grey]Only documents_by_source_research appears in the plan: the other partitions were pruned before execution.[/]");
    }
}
