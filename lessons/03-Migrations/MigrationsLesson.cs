using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using PgVectorModule.Data;

namespace PgVectorModule.Lessons.Lesson03;

/// <summary>
/// Lesson 03: evolve the documents table with EF Core migrations, the way Alembic does it in the Python module:
/// apply them one at a time from an empty schema, read the history, roll one back, go forward again and write
/// the idempotent script a deployment pipeline runs.
/// </summary>
public sealed class MigrationsLesson : ILesson
{
    public static LessonInfo Info => LessonCatalog.Get("03");

    /// <summary>Rows written under the first schema version, before word_count existed (public for the tests).</summary>
    public static IReadOnlyList<(string Title, string Content)> EarlyDocuments { get; } =
    [
        ("Schema versioning", "Every change to the schema is a small script with an id, applied in order."),
        ("Rolling back", "A migration knows how to undo itself."),
        ("Empty content", ""),
    ];

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        // A context whose migrations and history table both live in this lesson's schema (see CreateMigrationOptions).
        await using var db = lesson.NewMigrationsDbContext();
        var migrator = db.GetService<IMigrator>();
        var migrations = db.Database.GetMigrations().ToList(); // in id order: the timestamp prefix sorts them

        lesson.Step("empty-schema", "Start from an empty schema",
            $"Migrations assume they know what is already there, so the lesson starts with nothing: schema {lesson.Schema} is dropped and made again.");
        var mayCreateSchemas = (await lesson.QueryAsync("SELECT has_database_privilege(current_database(), 'CREATE') AS may", cancellationToken))[0]["may"] is true;
        if (mayCreateSchemas)
        {
            await lesson.ExecuteAsync($"DROP SCHEMA IF EXISTS {lesson.Schema} CASCADE", cancellationToken);
            await lesson.ExecuteAsync($"CREATE SCHEMA {lesson.Schema}", cancellationToken);
        }
        else
        {
            // Dropped, a schema an administrator made for this role could not be made again: empty it instead.
            lesson.Say($"This role may not create schemas in this database, so schema {lesson.Schema} (made for it) stays and only its tables are dropped.", Tone.Warning);
            await lesson.ExecuteAsync($"DROP TABLE IF EXISTS documents, \"{CourseDbContext.HistoryTable}\" CASCADE", cancellationToken);
        }

        lesson.Step("pending-migrations", "The migrations in the code, and which are pending",
            "dotnet ef migrations add wrote these classes into src/PgVectorModule/Migrations. EF Core compares them with the history table: none has run yet.");
        var pending = (await db.Database.GetPendingMigrationsAsync(cancellationToken)).ToHashSet();
        lesson.Table(migrations, ("migration id", m => m), ("status", m => pending.Contains(m) ? "pending" : "applied"));

        lesson.Step("apply-first", $"Apply the first migration: {Name(migrations[0])}",
            "MigrateAsync(target) applies every pending migration up to the target, here just the first. GenerateScript shows the SQL it is made of.");
        await ApplyAsync(lesson, migrator, Migration.InitialDatabase, migrations[0], cancellationToken);

        lesson.Step("rows-under-first", "Rows the application writes under that version",
            "Data that exists before a later migration is what makes migrations harder than CREATE TABLE: they must keep it and may need to fill new columns.");
        // Plain SQL: the Document class already describes the latest schema, which this table does not have yet.
        const string insertSql = "INSERT INTO documents (title, content, created_at, updated_at) VALUES ($1, $2, now(), now())";
        lesson.Sql(insertSql, [$"$1, $2 = each of the {EarlyDocuments.Count} (title, content) pairs"]);
        foreach (var (title, content) in EarlyDocuments)
        {
            await using var insert = lesson.DataSource.CreateCommand(insertSql);
            insert.Parameters.Add(new() { Value = title });
            insert.Parameters.Add(new() { Value = content });
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        lesson.Step("apply-rest", "Apply the rest, one migration at a time",
            "AddWordCount adds a column with a default (old rows get 0); BackfillWordCount is a hand-written data migration that counts their words; AddSourceUrl adds a column and a unique index.");
        for (var i = 1; i < migrations.Count; i++)
        {
            await ApplyAsync(lesson, migrator, migrations[i - 1], migrations[i], cancellationToken);
        }

        var rows = await lesson.QueryAsync("SELECT id, title, word_count, source_url FROM documents ORDER BY id", cancellationToken);
        lesson.Table(rows, ("id", r => r["id"]), ("title", r => r["title"]), ("word_count", r => r["word_count"]), ("source_url", r => r["source_url"]));

        lesson.Step("history", "The applied history",
            $"EF Core records each applied migration in {lesson.Schema}.\"{CourseDbContext.HistoryTable}\" (Alembic keeps one row in alembic_version). The last one is the current version.");
        var applied = (await db.Database.GetAppliedMigrationsAsync(cancellationToken)).ToList();
        var history = await lesson.QueryAsync($"SELECT migration_id, product_version FROM \"{CourseDbContext.HistoryTable}\" ORDER BY migration_id", cancellationToken);
        lesson.Table(history, ("migration_id", r => r["migration_id"]), ("product_version", r => r["product_version"]));
        lesson.Say($"Current version: {applied[^1]}");

        lesson.Step("roll-back", $"Roll back one migration: {Name(migrations[^1])}",
            "Migrating to the previous migration runs the last one's Down method: alembic downgrade -1. The catalog shows the column and its index gone.");
        await ShowSchemaAsync(lesson, "before", showSql: true, cancellationToken);
        await ApplyAsync(lesson, migrator, migrations[^1], migrations[^2], cancellationToken);
        await ShowSchemaAsync(lesson, "after", showSql: false, cancellationToken);

        lesson.Step("forward-again", "Forward to the latest again, and what MigrateAsync sends",
            "MigrateAsync() with no target is alembic upgrade head. This time the SQL echo shows every command, the history bookkeeping and the lock included.");
        await migrator.MigrateAsync(cancellationToken: cancellationToken);
        await ShowSchemaAsync(lesson, "now", showSql: false, cancellationToken);

        lesson.Step("idempotent-script", "An idempotent script for deployment",
            "A pipeline rarely lets the application change its own schema: it runs a script. The idempotent one checks the history before each migration, so it is safe on a database at any version.");
        var script = migrator.GenerateScript(options: MigrationsSqlGenerationOptions.Idempotent);
        lesson.Sql(script);
        // Proof of idempotency: run it against this database, already at the latest version: nothing changes.
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync(script, cancellationToken);
        }

        var after = (await db.Database.GetAppliedMigrationsAsync(cancellationToken)).Count();
        lesson.Say($"Ran the script on this database: still {after} migrations applied, {await CountAsync(lesson, cancellationToken)} rows kept.");
    }

    private static string Name(string migrationId) => migrationId[(migrationId.IndexOf('_', StringComparison.Ordinal) + 1)..];

    // One step of an upgrade or a downgrade: the SQL first (without running it), then the migrator does the work.
    private static async Task ApplyAsync(Lesson lesson, IMigrator migrator, string from, string to, CancellationToken cancellationToken)
    {
        lesson.Say($"{Label(from)} -> {Label(to)}", Tone.Key);
        lesson.Sql(migrator.GenerateScript(from, to));
        // The script above is what runs; the echo would repeat it with the bookkeeping.
        using (lesson.QuietSql())
        {
            await migrator.MigrateAsync(to, cancellationToken);
        }
    }

    private static string Label(string migrationId) => migrationId == Migration.InitialDatabase ? "(empty)" : Name(migrationId);

    private static async Task ShowSchemaAsync(Lesson lesson, string when, bool showSql, CancellationToken cancellationToken)
    {
        IReadOnlyList<IReadOnlyDictionary<string, object?>> columns;
        using (showSql ? null : lesson.QuietSql())
        {
            columns = await lesson.QueryAsync(
                """
                SELECT c.column_name, c.data_type, c.column_default,
                       (SELECT string_agg(i.indexname, ', ') FROM pg_indexes i
                        WHERE i.schemaname = c.table_schema AND i.tablename = c.table_name
                          AND i.indexdef LIKE '%(' || c.column_name || ')%') AS indexes
                FROM information_schema.columns c
                WHERE c.table_schema = current_schema() AND c.table_name = 'documents'
                ORDER BY c.ordinal_position
                """, cancellationToken);
        }

        lesson.Say($"documents, {when}:", Tone.Aside);
        lesson.Table(columns, ("column_name", c => c["column_name"]), ("data_type", c => c["data_type"]),
            ("default", c => c["column_default"]), ("indexes", c => c["indexes"]));
    }

    private static async Task<long> CountAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        await using var command = lesson.DataSource.CreateCommand("SELECT count(*) FROM documents");
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
