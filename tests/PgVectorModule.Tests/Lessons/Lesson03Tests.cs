using PgVectorModule.Data;
using PgVectorModule.Lessons.Lesson03;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

public class Lesson03Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Runs_end_to_end_twice_and_leaves_every_migration_applied_in_its_schema()
    {
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<MigrationsLesson>(database.Settings);

            Assert.True(result.ExitCode == 0, $"run {run} exited with {result.ExitCode}:\n{result.Output}");
            // Each migration's SQL, the downgrade and the idempotent script are shown.
            var shown = result.Transcript.ShownSql();
            Assert.Contains("CREATE TABLE documents", shown, StringComparison.Ordinal);
            Assert.Contains("ALTER TABLE documents ADD word_count integer NOT NULL DEFAULT 0", shown, StringComparison.Ordinal);
            Assert.Contains("SET word_count = coalesce(", shown, StringComparison.Ordinal);
            Assert.Contains("CREATE UNIQUE INDEX ix_documents_source_url ON documents (source_url)", shown, StringComparison.Ordinal);
            Assert.Contains("DROP INDEX ix_documents_source_url", shown, StringComparison.Ordinal);
            Assert.Contains("ALTER TABLE documents DROP COLUMN source_url", shown, StringComparison.Ordinal);
            Assert.Contains("LOCK TABLE lesson03.\"__EFMigrationsHistory\"", shown, StringComparison.Ordinal);
            Assert.Contains("IF NOT EXISTS(SELECT 1 FROM lesson03.\"__EFMigrationsHistory\" WHERE \"migration_id\" = ", shown, StringComparison.Ordinal);
            Assert.Contains("still 4 migrations applied, 3 rows kept", result.Transcript.AllNotes(), StringComparison.Ordinal);
            Assert.True(result.Transcript.Completed);
            Assert.Equal(9, result.Transcript.Steps.Count);

            var history = await database.StringsAsync("SELECT migration_id FROM lesson03.\"__EFMigrationsHistory\" ORDER BY migration_id");
            Assert.Equal(MigrationIds(), history);
            Assert.Equal(3, await database.ScalarAsync<long>("SELECT count(*) FROM lesson03.documents"));
        }
    }

    [Fact]
    public async Task The_data_migration_counted_the_words_of_rows_written_before_it()
    {
        await LessonRunner.RunAsync<MigrationsLesson>(database.Settings);

        var counts = await database.StringsAsync("SELECT title || '=' || word_count FROM lesson03.documents ORDER BY id");

        Assert.Equal(MigrationsLesson.EarlyDocuments.Select(d => $"{d.Title}={WordCounter.Count(d.Content)}"), counts);
        Assert.Contains("Schema versioning=15", counts);
    }

    [Fact]
    public async Task Works_only_in_its_own_schema_history_table_included()
    {
        await LessonRunner.RunAsync<MigrationsLesson>(database.Settings);

        var tables = await database.StringsAsync(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY (table_schema || '.' || table_name) COLLATE \"C\"");

        Assert.Equal(["lesson03.__EFMigrationsHistory", "lesson03.documents"], tables);
    }

    private static List<string> MigrationIds()
    {
        using var db = new CourseDbContext(new DbContextOptionsBuilder<CourseDbContext>().UseNpgsql().UseSnakeCaseNamingConvention().Options);
        return db.Database.GetMigrations().ToList();
    }
}
