using System.Globalization;
using PgVectorModule.Data;
using PgVectorModule.Input;
using PgVectorModule.Problems;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson08;

public sealed partial class OperationsLesson
{
    // ---------------------------------------------------------------- pg_dump and pg_restore

    private static async Task DumpAndRestoreAsync(Lesson lesson, LocalServers servers, VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("pg-dump", "pg_dump -Fc: the lesson's schema, with the extension",
            "The custom format (-Fc) is compressed and lets pg_restore pick what it restores. --schema takes one schema; the vector extension lives in public, " +
            "so --extension=vector adds its CREATE EXTENSION (without it the dump names a type a new database lacks).");
        var source = lesson.Settings.ConnectionString();
        var folder = await servers.NewFolderAsync("dump", cancellationToken);
        var dumpFile = Path.Combine(folder, $"{lesson.Schema}.dump");
        string[] dump = ["--format=custom", $"--schema={lesson.Schema}", "--extension=vector", $"--file={dumpFile}", .. ConnectionArguments(source)];
        lesson.Sql("pg_dump " + string.Join(' ', dump));
        var dumped = await servers.PgAsync("pg_dump", dump, source.Password, cancellationToken);
        if (dumped.ExitCode != 0)
        {
            throw new SetupException($"pg_dump could not dump schema {lesson.Schema} ({FirstLine(dumped.Output)}). pg_dump must be at least the server's version; PG_BINDIR picks another.", ExitCodes.LocalServerFailed);
        }

        var list = await servers.PgAsync("pg_restore", ["--list", dumpFile], null, cancellationToken);
        var entries = list.Output.Split('\n').Where(l => l.Length > 0 && !l.StartsWith(';')).ToList();
        // The dump's table of contents: a detail; the sentence after counts it.
        using (lesson.Detail())
        {
            lesson.Sql("pg_restore --list " + dumpFile);
            lesson.Table(entries.Where(e => e.Contains(" EXTENSION ", StringComparison.Ordinal) || e.Contains(" TABLE ", StringComparison.Ordinal) ||
                                            e.Contains(" INDEX ", StringComparison.Ordinal) || e.Contains(" TABLE DATA ", StringComparison.Ordinal)),
                ("table of contents (extension, tables, data, indexes)", e => string.Join(' ', e.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(3))));
        }

        var kinds = entries.Select(e => string.Join(' ', e.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(3))).ToList();
        int Count(string kind) => kinds.Count(k => k.StartsWith(kind + " ", StringComparison.Ordinal));
        lesson.Say($"{new FileInfo(dumpFile).Length / 1024.0:N0} kB, {entries.Count} entries (pg_restore --list): " +
                   $"{(kinds.Contains("EXTENSION - vector") ? "CREATE EXTENSION vector, " : "")}{Count("TABLE") - Count("TABLE DATA")} tables, {Count("TABLE DATA")} with their rows, {Count("INDEX")} indexes. " +
                   "The HNSW index is stored as its CREATE INDEX: pg_restore builds it again from the restored rows.");

        lesson.Step("pg-restore", "pg_restore into a fresh database, and the same search",
            "A new, empty database; pg_restore --exit-on-error --single-transaction: the whole dump lands or none of it. Then the checks: extension, rows, index definitions, and one search on both databases.");
        string restoredName;
        // The new database: a detail.
        using (lesson.Detail())
        {
            restoredName = RestoredDatabaseName((string)(await lesson.QueryAsync("SELECT current_database() AS db", cancellationToken))[0]["db"]!);
            await lesson.ExecuteAsync($"DROP DATABASE IF EXISTS \"{restoredName}\" WITH (FORCE)", cancellationToken);
            await lesson.ExecuteAsync($"CREATE DATABASE \"{restoredName}\"", cancellationToken);
        }

        var target = new NpgsqlConnectionStringBuilder(source.ConnectionString) { Database = restoredName };
        try
        {
            var restore = await RestoreAsync(servers, dumpFile, target, cancellationToken);
            lesson.Sql(restore);
            List<(string Check, string Source, string Restored, bool Same)> checks;
            // The checks' SQL and both databases' answers side by side: a detail; the sentence after says whether they match.
            using (lesson.Detail())
            {
                checks = await CompareAsync(lesson, target, shape, question, cancellationToken);
                lesson.Table(checks, ("check", r => r.Check), ("course database", r => r.Source), ("restored", r => r.Restored), ("same", r => r.Same ? "yes" : "NO"));
            }

            lesson.Say(checks.All(c => c.Same)
                ? ($"All {checks.Count} checks equal: the extension, every vector, every index and the search's answer came back.", Tone.Key)
                : ($"The restored database differs: {string.Join("; ", checks.Where(c => !c.Same).Select(c => $"{c.Check}: {c.Source} against {c.Restored}"))}.", Tone.Bad));
        }
        finally
        {
            // The restored copy was the check; nothing of it stays behind.
            NpgsqlConnection.ClearAllPools();
            await using var drop = lesson.DataSource.CreateCommand($"DROP DATABASE IF EXISTS \"{restoredName}\" WITH (FORCE)");
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }

        lesson.Say($"Database {restoredName} dropped again. Restore by hand to look around: createdb copy && pg_restore --dbname=copy {lesson.Schema}.dump", Tone.Aside);
    }

    /// <summary>The restored copy's database name: the course database's, plus a suffix, within PostgreSQL's 63 bytes.</summary>
    public static string RestoredDatabaseName(string database)
    {
        ArgumentNullException.ThrowIfNull(database);
        const string suffix = "_lesson08_restore";
        // PostgreSQL counts an identifier's 63 in UTF-8 bytes: a name in another script fills them sooner than its Length says.
        return TextPrefix.Of(database, 63 - suffix.Length, TextMeasure.Utf8Bytes) + suffix;
    }

    /// <summary>
    /// pg_restore of <paramref name="dumpFile"/> into the existing, empty database <paramref name="target"/>, all or nothing.
    /// Returns the command it ran; a dump that does not restore is one sentence with pg_restore's first error, exit code 19.
    /// </summary>
    public static async Task<string> RestoreAsync(LocalServers servers, string dumpFile, NpgsqlConnectionStringBuilder target, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(servers);
        ArgumentNullException.ThrowIfNull(target);
        string[] restore = ["--exit-on-error", "--single-transaction", "--no-owner", .. ConnectionArguments(target), dumpFile];
        var restored = await servers.PgAsync("pg_restore", restore, target.Password, cancellationToken);
        if (restored.ExitCode != 0)
        {
            throw new SetupException(
                $"The dump {dumpFile} did not restore into database {target.Database} ({FirstLine(restored.Output)}); nothing of it was kept (--single-transaction). " +
                "Check that the file is a whole pg_dump -Fc archive and that the target server has pgvector and pg_restore is at least the dump's version.",
                ExitCodes.RestoreFailed);
        }

        return "pg_restore " + string.Join(' ', restore);
    }

    private static string[] ConnectionArguments(NpgsqlConnectionStringBuilder cs) =>
        ["-h", cs.Host!, "-p", cs.Port.ToString(CultureInfo.InvariantCulture), "-U", cs.Username ?? LocalServers.ServerUser, "-d", cs.Database!];

    private static async Task<List<(string Check, string Source, string Restored, bool Same)>> CompareAsync(Lesson lesson, NpgsqlConnectionStringBuilder target,
        VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        var facts = $"""
            SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS extension,
                   (SELECT count(*) FROM {lesson.Schema}.vector_documents) AS rows,
                   (SELECT md5(string_agg(embedding::text, ',' ORDER BY id)) FROM {lesson.Schema}.vector_documents) AS vectors_md5,
                   (SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes WHERE schemaname = '{lesson.Schema}' AND tablename = 'vector_documents') AS indexes,
                   (SELECT md5(string_agg(indexdef, ';' ORDER BY indexname)) FROM pg_indexes WHERE schemaname = '{lesson.Schema}') AS index_definitions_md5
            """;
        lesson.Sql(facts + "\n-- and VectorSearch.Nearest(db, question, limit: 10) on each database");
        var sides = new List<(IReadOnlyDictionary<string, object?> Facts, string Search)>();
        foreach (var cs in new[] { lesson.Settings.ConnectionString(), target })
        {
            await using var source = ModuleDataSource.Create(cs, lesson.Schema);
            await using var command = source.CreateCommand(facts);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var row = Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, i => reader.IsDBNull(i) ? null : reader.GetValue(i));
            await reader.DisposeAsync();
            await using var db = new SearchDbContext(SearchDbContext.CreateOptions(source), shape);
            var hits = await VectorSearch.Nearest(db, question, limit: 10).ToListAsync(cancellationToken);
            sides.Add((row, string.Join(", ", hits.Select(h => $"{h.Id}:{h.Distance.ToString("0.0000", CultureInfo.InvariantCulture)}"))));
        }

        var checks = new List<(string, string, string, bool)>();
        foreach (var (key, label) in new[] { ("extension", "vector extension version"), ("rows", "rows in vector_documents"), ("vectors_md5", "md5 of every embedding"),
                     ("indexes", "indexes on vector_documents"), ("index_definitions_md5", "md5 of every index definition") })
        {
            var a = Convert.ToString(sides[0].Facts[key], CultureInfo.InvariantCulture) ?? "(none)";
            var b = Convert.ToString(sides[1].Facts[key], CultureInfo.InvariantCulture) ?? "(none)";
            checks.Add((label, a, b, a == b));
        }

        checks.Add(("top 10 for the question (id:distance)", sides[0].Search, sides[1].Search, sides[0].Search == sides[1].Search));
        return checks;
    }

    // ---------------------------------------------------------------- point-in-time recovery

    private static async Task PointInTimeRecoveryAsync(Lesson lesson, LocalServers servers, CancellationToken cancellationToken)
    {
        lesson.DeepDive("pitr", "Point-in-time recovery from a WAL archive",
            "A dump is a snapshot; continuous archiving keeps every WAL segment, so a base backup can be replayed to any moment after it. archive_command needs a restart, " +
            "so this step runs a small cluster of its own: archive on, a base backup, good writes, a restore point, a mistake, recovery to the restore point.");
        var archive = await servers.NewFolderAsync("archive", cancellationToken);
        var clusterFolder = await servers.NewFolderAsync("pitr", cancellationToken);
        var data = Path.Combine(clusterFolder, "data");
        var password = Guid.NewGuid().ToString("N");
        // initdb through the course's one starter: the password in a private file deleted as soon as initdb has read it.
        await new PostgresCluster(servers.PgBin, data).InitAsync(LocalServers.ServerUser, password, ["--no-sync"], log: null, cancellationToken);

        string[] archiving = ["wal_level=replica", "archive_mode=on", $"archive_command='test ! -f {archive}/%f && cp %p {archive}/%f'"];
        var port = LocalServers.Port("the recovery step's port", null);
        var start = await servers.StartPostgresAsync("archiving cluster", data, port, [.. archiving, "fsync=off"], cancellationToken);
        lesson.Sql(string.Join('\n', archiving.Select(s => s.Replace("=", " = ", StringComparison.Ordinal))), ["postgresql.conf of the archiving server (here: -c options)", start]);
        var cs = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = LocalServers.ServerUser, Password = password, Database = "postgres", Pooling = false };

        var steps = new List<(string What, string Sql)>
        {
            ("set up", "CREATE EXTENSION vector; CREATE TABLE notes (id int PRIMARY KEY, body text, embedding vector(3)); INSERT INTO notes VALUES (1, 'first', '[1,0,0]'), (2, 'second', '[0,1,0]')"),
        };
        await RunOnAsync(cs, steps[0].Sql, cancellationToken);
        var baseBackup = Path.Combine(clusterFolder, "base");
        string[] backup = ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-U", LocalServers.ServerUser, "-D", baseBackup, "--checkpoint=fast", "--no-sync"];
        var took = await servers.PgAsync("pg_basebackup", backup, password, cancellationToken);
        if (took.ExitCode != 0)
        {
            throw new SetupException($"pg_basebackup of the recovery step's cluster failed ({FirstLine(took.Output)}).", ExitCodes.LocalServerFailed);
        }

        steps.Add(("base backup", "pg_basebackup " + string.Join(' ', backup)));
        foreach (var (what, sql) in new[]
                 {
                     ("good writes after the backup", "INSERT INTO notes VALUES (3, 'third', '[0,0,1]')"),
                     ("a named point to return to", "SELECT pg_create_restore_point('before_the_mistake')"),
                     ("the mistake", "DELETE FROM notes"),
                 })
        {
            await RunOnAsync(cs, sql, cancellationToken);
            steps.Add((what, sql));
        }

        // The WAL segment holding the restore point and the mistake is archived once it is full or switched.
        const string switchWal = "SELECT pg_walfile_name(pg_switch_wal())";
        var segment = await SwitchWalAsync(cs, switchWal, cancellationToken);
        steps.Add(("close the WAL segment so it is archived now", switchWal + $"  -- {segment}"));
        await WaitForArchiveAsync(Path.Combine(archive, segment), Path.Combine(clusterFolder, "data.log"), cancellationToken);
        var lost = await CountNotesAsync(cs, cancellationToken);

        // Recovery: the base backup, restore_command to fetch archived WAL, a target, and recovery.signal.
        string[] recovery = [$"restore_command='cp {archive}/%f %p'", "recovery_target_name='before_the_mistake'", "recovery_target_action='promote'"];
        await servers.WriteFileAsync(Path.Combine(baseBackup, "recovery.signal"), "", cancellationToken);
        var recoveredPort = LocalServers.Port("the recovery step's port", null);
        var recovered = await servers.StartPostgresAsync("recovered cluster", baseBackup, recoveredPort, [.. recovery, "fsync=off"], cancellationToken);
        var recoveredCs = new NpgsqlConnectionStringBuilder(cs.ConnectionString) { Port = recoveredPort };
        await WaitForPromotionAsync(recoveredCs, cancellationToken);
        steps.Add(("recover: the base backup, recovery.signal and these settings", string.Join('\n', recovery) + "\n" + recovered));
        lesson.Sql(string.Join("\n\n", steps.Select(s => $"-- {s.What}\n{s.Sql}")));

        var back = await CountNotesAsync(recoveredCs, cancellationToken);
        lesson.Table(new[] { ("the archiving cluster, after the mistake", lost), ("the recovered cluster, at before_the_mistake", back) },
            ("server", r => r.Item1), ("rows in notes", r => r.Item2));
        lesson.Say(back == 3 && lost == 0
            ? ("Recovered to the restore point: 3 rows, the write made after the base backup included, the DELETE not replayed. " +
              "recovery_target_time or _lsn name a moment instead. In production the archive lives elsewhere (pgBackRest, WAL-G, Barman).", Tone.Plain)
            : ($"The recovered cluster has {back} rows.", Tone.Bad));
        await servers.StopPostgresAsync(baseBackup, cancellationToken);
        await servers.StopPostgresAsync(data, cancellationToken);
    }

    private static async Task RunOnAsync(NpgsqlConnectionStringBuilder cs, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(cs.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<long> CountNotesAsync(NpgsqlConnectionStringBuilder cs, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(cs.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT count(*) FROM notes", connection);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<string> SwitchWalAsync(NpgsqlConnectionStringBuilder cs, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(cs.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return (string)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Waits until archive_command has copied <paramref name="archivedSegment"/> into the archive.</summary>
    private static async Task WaitForArchiveAsync(string archivedSegment, string log, CancellationToken cancellationToken)
    {
        for (var i = 0; !File.Exists(archivedSegment); i++)
        {
            if (i > 300)
            {
                throw new SetupException($"The recovery step's cluster did not archive {Path.GetFileName(archivedSegment)} within 30 s: archive_command failed (its log: {log}).", ExitCodes.LocalServerFailed);
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task WaitForPromotionAsync(NpgsqlConnectionStringBuilder cs, CancellationToken cancellationToken)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                await using var connection = new NpgsqlConnection(cs.ConnectionString);
                await connection.OpenAsync(cancellationToken);
                await using var command = new NpgsqlCommand("SELECT pg_is_in_recovery()", connection);
                if (await command.ExecuteScalarAsync(cancellationToken) is false)
                {
                    return;
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.CannotConnectNow && i < 300)
            {
            }

            if (i > 300)
            {
                throw new SetupException("The recovered cluster did not finish recovery within 30 s; see its log.", ExitCodes.LocalServerFailed);
            }

            await Task.Delay(100, cancellationToken);
        }
    }
}
