using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using PgVectorModule.Data;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>The committed migrations against a real server: they build the model's schema, and undo it cleanly.</summary>
[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class MigrationsTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task The_model_has_no_changes_that_a_migration_does_not_cover()
    {
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "pending_check");
        await using var db = new CourseDbContext(CourseDbContext.CreateOptions(dataSource));

        Assert.False(db.Database.HasPendingModelChanges(), "The model differs from the last migration: run dotnet ef migrations add.");
    }

    [Fact]
    public async Task They_apply_to_an_empty_schema_and_give_every_column_of_the_model()
    {
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "apply_check");
        await using var db = new CourseDbContext(CourseDbContext.CreateMigrationOptions(dataSource, "apply_check"));

        await db.Database.MigrateAsync(TestContext.Current.CancellationToken);

        Assert.Empty(await db.Database.GetPendingMigrationsAsync(TestContext.Current.CancellationToken));
        var modelColumns = db.Model.FindEntityType(typeof(Document))!.GetProperties()
            .Select(p => p.GetColumnName())
            .Where(c => c != "xmin") // a system column every PostgreSQL row has
            .Order(StringComparer.Ordinal);
        var tableColumns = await database.StringsAsync(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'apply_check' AND table_name = 'documents' ORDER BY column_name COLLATE \"C\"");
        Assert.Equal(modelColumns, tableColumns);
        Assert.Equal(db.Database.GetMigrations(),
            await database.StringsAsync("SELECT migration_id FROM apply_check.\"__EFMigrationsHistory\" ORDER BY migration_id"));
        // Nothing leaked into public (efcore.pg would put the history there without the pinned schema).
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"));
    }

    [Fact]
    public async Task Down_then_up_gives_the_same_schema()
    {
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "round_trip");
        await using var db = new CourseDbContext(CourseDbContext.CreateMigrationOptions(dataSource, "round_trip"));
        var migrator = db.GetService<IMigrator>();
        var ct = TestContext.Current.CancellationToken;
        var migrations = db.Database.GetMigrations().ToList();

        await migrator.MigrateAsync(cancellationToken: ct);
        var latest = await SchemaAsync("round_trip");

        await migrator.MigrateAsync(migrations[^2], ct); // downgrade -1
        var oneDown = await SchemaAsync("round_trip");
        Assert.NotEqual(latest, oneDown);
        await migrator.MigrateAsync(cancellationToken: ct);
        Assert.Equal(latest, await SchemaAsync("round_trip"));

        await migrator.MigrateAsync(Migration.InitialDatabase, ct); // every Down, back to nothing
        Assert.DoesNotContain(await SchemaAsync("round_trip"), line => line.StartsWith("documents.", StringComparison.Ordinal));
        await migrator.MigrateAsync(cancellationToken: ct);
        Assert.Equal(latest, await SchemaAsync("round_trip"));
    }

    [Fact]
    public async Task The_backfill_counts_words_the_way_the_application_does()
    {
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "backfill");
        await using var db = new CourseDbContext(CourseDbContext.CreateMigrationOptions(dataSource, "backfill"));
        var migrator = db.GetService<IMigrator>();
        var ct = TestContext.Current.CancellationToken;
        string[] contents = ["one", "  two  words ", "tabs\tand\nnew lines  count", "", "   "];

        await migrator.MigrateAsync(db.Database.GetMigrations().Single(m => m.EndsWith("_AddWordCount", StringComparison.Ordinal)), ct);
        foreach (var content in contents)
        {
            await using var insert = dataSource.CreateCommand("INSERT INTO documents (title, content, created_at, updated_at) VALUES ('t', $1, now(), now())");
            insert.Parameters.Add(new() { Value = content });
            await insert.ExecuteNonQueryAsync(ct);
        }

        await migrator.MigrateAsync(cancellationToken: ct);

        var counts = await database.StringsAsync("SELECT word_count::text FROM backfill.documents ORDER BY id");
        Assert.Equal(contents.Select(c => WordCounter.Count(c).ToString(System.Globalization.CultureInfo.InvariantCulture)), counts);
        Assert.Equal(["1", "2", "5", "0", "0"], counts);
    }

    // Columns (type, nullability, default) and indexes (full definition) of a schema, one line each.
    private Task<List<string>> SchemaAsync(string schema) =>
        database.StringsAsync(
            $"""
            SELECT table_name || '.' || column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '')
                   || ' null=' || is_nullable || ' default=' || coalesce(column_default, '-')
            FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = 'documents'
            UNION ALL
            SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'documents'
            ORDER BY 1
            """);
}
