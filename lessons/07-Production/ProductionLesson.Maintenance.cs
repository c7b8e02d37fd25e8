
namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Monitoring and maintenance: statistics, vacuum, reindex, sizes, index usage, slow queries, the extension's version.</summary>
public sealed partial class ProductionLesson
{
    private static async Task MaintenanceAsync(Lesson lesson, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("analyze", "ANALYZE and VACUUM ANALYZE",
            "ANALYZE refreshes the planner's statistics; VACUUM makes deleted rows' space reusable. Autovacuum does both in time; after a big delete (here every tenth row), do it now.");
        using (lesson.Detail())
        {
            await lesson.ExecuteAsync("DELETE FROM bulk_vectors WHERE id % 10 = 0", cancellationToken);
        }

        await lesson.ExecuteAsync("ANALYZE bulk_vectors", cancellationToken);
        await lesson.ExecuteAsync("VACUUM ANALYZE bulk_vectors", cancellationToken);
        IReadOnlyList<IReadOnlyDictionary<string, object?>> table;
        using (lesson.Detail())
        {
            table = await lesson.QueryAsync(
                "SELECT n_live_tup, last_vacuum IS NOT NULL AS vacuumed, last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relid = 'bulk_vectors'::regclass",
                cancellationToken);
            lesson.Table(table, ("live rows", r => r["n_live_tup"]), ("vacuumed", r => r["vacuumed"]), ("analyzed", r => r["analyzed"]));
        }

        lesson.Say($"pg_stat_user_tables: {table[0]["n_live_tup"]} live rows, vacuumed {table[0]["vacuumed"]}, analyzed {table[0]["analyzed"]}.");

        lesson.Step("reindex", "REINDEX INDEX CONCURRENTLY",
            "Rebuilds an index (after many updates and deletes an HNSW graph holds dead entries) while reads and writes go on; it cannot run inside a transaction.");
        await lesson.ExecuteAsync("REINDEX INDEX CONCURRENTLY bulk_vectors_hnsw", cancellationToken);

        lesson.Step("sizes", "Table and index sizes", "pg_total_relation_size counts the table with its indexes and TOAST; pg_relation_size one relation only.");
        IReadOnlyList<IReadOnlyDictionary<string, object?>> sizes;
        using (lesson.Detail())
        {
            sizes = await lesson.QueryAsync("""
                SELECT c.relname AS relation, pg_relation_size(c.oid) AS bytes, pg_total_relation_size(c.oid) AS total_bytes
                FROM pg_class c
                WHERE c.relnamespace = current_schema()::regnamespace AND c.relname LIKE 'bulk_vectors%'
                ORDER BY c.relname
                """, cancellationToken);
            lesson.Table(sizes, ("relation", r => r["relation"]), ("pg_relation_size", r => Size((long)r["bytes"]!)), ("pg_total_relation_size", r => Size((long)r["total_bytes"]!)));
        }

        var bulkTable = sizes.Single(r => (string)r["relation"]! == "bulk_vectors");
        lesson.Say($"bulk_vectors: {Size((long)bulkTable["bytes"]!)} alone, {Size((long)bulkTable["total_bytes"]!)} with its indexes and TOAST; the indexes: " +
                   string.Join(", ", sizes.Where(r => r != bulkTable).Select(r => $"{r["relation"]} {Size((long)r["bytes"]!)}")) + ".");

        lesson.Step("index-usage", "Is the vector index used? pg_stat_user_indexes",
            "idx_scan counts the scans of each index. Read it, search, read it again: an index whose count never grows is one to drop.");
        const string scans = "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'bulk_vectors_hnsw' AND schemaname = current_schema()";
        var before = (long)(await lesson.QueryAsync(scans, cancellationToken))[0]["idx_scan"]!;
        var after = before;
        // The searches, the same statement again and the two counts: a detail; the sentence below says them.
        using (lesson.Detail())
        {
            await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
            using (lesson.QuietSql())
            {
                for (var i = 0; i < 5; i++)
                {
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                    await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
                    await lesson.QueryAsync("SELECT id FROM bulk_vectors ORDER BY embedding <=> @q LIMIT 10", connection, [new NpgsqlParameter("q", question)], cancellationToken);
                    await transaction.CommitAsync(cancellationToken);
                }

                // Statistics reach shared memory when a session goes idle, at most once a second: ask for it now.
                await lesson.QueryAsync("SELECT pg_stat_force_next_flush()", connection, [], cancellationToken);
            }

            lesson.Sql("SELECT id FROM bulk_vectors ORDER BY embedding <=> @q LIMIT 10  -- 5 times");
            for (var wait = 0; wait < 30 && after < before + 5; wait++)
            {
                using var quiet = wait == 0 ? null : lesson.QuietSql(); // shown once, then quiet while it waits for the statistics
                after = (long)(await lesson.QueryAsync(scans, cancellationToken))[0]["idx_scan"]!;
                if (after < before + 5)
                {
                    await Task.Delay(100, cancellationToken);
                }
            }

            lesson.Table([(before, after)], ("idx_scan before", r => r.before), ("idx_scan after 5 searches", r => r.after));
        }

        lesson.Say($"idx_scan of bulk_vectors_hnsw: {before} before, {after} after 5 searches.");
    }

    /// <summary>pg_stat_statements: whether the server loads it, and if so the costliest statement shapes on bulk_vectors.</summary>
    public static async Task PgStatStatementsAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        lesson.DeepDive("pg-stat-statements", "pg_stat_statements", "The server's record of every statement shape: calls, total and mean time. It needs shared_preload_libraries (a restart), then CREATE EXTENSION.");
        string preload;
        try
        {
            preload = (string?)(await lesson.QueryAsync("SHOW shared_preload_libraries", cancellationToken))[0]["shared_preload_libraries"] ?? "";
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            lesson.Say($"This role may not read the server's settings ({e.MessageText}); this step is skipped. " +
                       "An administrator can GRANT pg_read_all_settings to it.", Tone.Warning);
            return;
        }

        if (!preload.Split(',', StringSplitOptions.TrimEntries).Contains("pg_stat_statements"))
        {
            lesson.Say($"pg_stat_statements is not loaded on this server (shared_preload_libraries = '{preload}'). " +
                       "Add it there (postgresql.conf, or command: -c shared_preload_libraries=pg_stat_statements in docker-compose), restart, and run this step again.", Tone.Warning);
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
            if (top.Count > 0)
            {
                lesson.Say($"The costliest statement shape on bulk_vectors so far: {top[0]["total_ms"]} ms in {top[0]["calls"]} calls, {(string)top[0]["query"]!}");
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            lesson.Say($"pg_stat_statements is loaded, but this user may not create the extension ({e.MessageText}).", Tone.Warning);
        }
    }

    public const string ExtensionStepTitle = "pgvector's version: ALTER EXTENSION vector UPDATE";

    /// <summary>Upgrading pgvector: the version this database runs, the version the server has, and ALTER EXTENSION ... UPDATE.</summary>
    public static async Task ExtensionVersionAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        lesson.DeepDive("extension-version", ExtensionStepTitle,
            "Each database keeps the SQL objects of the pgvector version it was created or last updated with: after upgrading the package, " +
            "run ALTER EXTENSION vector UPDATE in every database (as the extension's owner or a superuser).");
        const string installed = "SELECT extversion FROM pg_extension WHERE extname = 'vector'";
        const string available = "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'";
        var before = (string)(await lesson.QueryAsync(installed, cancellationToken))[0]["extversion"]!;
        var offered = (string)(await lesson.QueryAsync(available, cancellationToken))[0]["default_version"]!;

        string after;
        try
        {
            await lesson.ExecuteAsync("ALTER EXTENSION vector UPDATE", cancellationToken);
            after = (string)(await lesson.QueryAsync(installed, cancellationToken))[0]["extversion"]!;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            lesson.Table([(before, offered)], ("extversion (this database)", r => r.before), ("default_version (the installed package)", r => r.offered));
            lesson.Say($"Skipped: {e.MessageText}. ALTER EXTENSION vector UPDATE needs the extension's owner or a superuser: " +
                       $"ask an administrator to run it in this database{(before == offered ? " after the next package upgrade (today the versions match)" : "")}.", Tone.Warning);
            return;
        }

        lesson.Table([(before, offered, after)], ("extversion before", r => r.before), ("default_version (the installed package)", r => r.offered), ("extversion after UPDATE", r => r.after));
        lesson.Say(before == offered
            ? $"Already at {after}: the UPDATE was a no-op."
            : $"Updated from {before} to {after}: this database now has the objects of the package the server loads.");
    }
}
