using PgVectorModule.Lessons.Lesson02;
using PgVectorModule.Lessons.Lesson01;
using PgVectorModule.Lessons.Lesson03;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

public class Lesson02Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Runs_end_to_end_twice_with_the_same_rows()
    {
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<CrudLesson>(database.Settings);

            Assert.True(result.ExitCode == 0, $"run {run} exited with {result.ExitCode}:\n{result.Output}");
            Assert.Contains("Lesson 02 done (15 steps)", result.Output, StringComparison.Ordinal);
            // 1 + 6 inserted, 1 removed, 2 deleted in bulk, 1 upserted, 0 from the failed import, 1 hostile title.
            Assert.Equal(6, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents"));
            Assert.Equal(["articles", "docs", "docs", "docs", "guides"],
                await database.StringsAsync("SELECT source FROM lesson02.documents WHERE title <> 'Bobby''; DROP TABLE documents; --' ORDER BY source COLLATE \"C\""));
        }
    }

    [Fact]
    public async Task Create_and_read_show_one_batch_and_the_identity_map()
    {
        var output = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Output;

        Assert.Contains("6 rows saved in 1 round trip.", output, StringComparison.Ordinal);
        Assert.Contains("Two FindAsync calls, 1 query", output, StringComparison.Ordinal);
        Assert.Contains("WHERE d.source = @source OR d.title LIKE @word_contains", output, StringComparison.Ordinal);
        Assert.Contains("LIMIT @p OFFSET @p", output, StringComparison.Ordinal);
        Assert.Contains("SELECT d.id, d.title, d.source ", output, StringComparison.Ordinal);
        Assert.Contains("SELECT count(*)::int", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Updates_send_only_the_changed_column_and_set_based_commands_load_nothing()
    {
        var output = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Output;

        Assert.Contains("UPDATE documents SET title = @p0, updated_at = @p1 ", output, StringComparison.Ordinal);
        Assert.Contains("WHERE id = @p2 AND xmin = @p3", output, StringComparison.Ordinal);
        Assert.Contains("UPDATE documents AS d", output, StringComparison.Ordinal);
        Assert.Contains("2 rows moved from blog to articles", output, StringComparison.Ordinal);
        Assert.Contains("WHERE id = @p0 AND xmin = @p1", output, StringComparison.Ordinal); // the tracked DELETE
        Assert.Contains("DELETE FROM documents AS d", output, StringComparison.Ordinal);
        Assert.Contains("2 rows deleted", output, StringComparison.Ordinal);
        Assert.Empty(await database.StringsAsync("SELECT title FROM lesson02.documents WHERE source IN ('blog', 'research') OR title = 'Why an ORM'"));
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents WHERE updated_at < created_at"));
        Assert.Equal(1, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents WHERE source = 'articles' AND updated_at > created_at"));
    }

    [Fact]
    public async Task Upsert_keeps_one_row_per_source_url_even_with_concurrent_writers()
    {
        var output = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Output;

        Assert.Contains("ON CONFLICT (source_url) DO UPDATE", output, StringComparison.Ordinal);
        Assert.Contains("After 4 concurrent upserts: 1 row", output, StringComparison.Ordinal);
        Assert.Contains($"@p2 = '{CrudLesson.UpsertUrl}'", output, StringComparison.Ordinal); // a parameter, not SQL text
        Assert.Matches(@"first\s*│\s*(\d+)\s*│\s*True[\s\S]*second\s*│\s*\1\s*│\s*False", output);
        Assert.Equal(["Concurrent writer"],
            await database.StringsAsync($"SELECT left(content, 17) FROM lesson02.documents WHERE source_url = '{CrudLesson.UpsertUrl}'"));
    }

    [Fact]
    public async Task The_failed_transaction_leaves_no_row_and_the_concurrency_conflict_is_resolved()
    {
        var output = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Output;

        Assert.Contains("duplicate key value violates unique constraint \"ix_documents_source_url\": rolled back", output, StringComparison.Ordinal);
        Assert.Contains("Rows of the import that stayed: 0 rows", output, StringComparison.Ordinal);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents WHERE source = 'import'"));

        Assert.Contains("DbUpdateConcurrencyException", output, StringComparison.Ordinal);
        Assert.Contains("Resolved", output, StringComparison.Ordinal);
        // Alice's title and Bob's content both survived.
        Assert.Equal(["Alice's title|Bob's rewritten content."],
            await database.StringsAsync("SELECT title || '|' || content FROM lesson02.documents WHERE id = 1"));
    }

    [Fact]
    public async Task A_hostile_title_is_stored_and_found_as_plain_text()
    {
        var output = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Output;

        Assert.Contains("WHERE d.title = @title", output, StringComparison.Ordinal);
        Assert.Contains($"@title = '{CrudLesson.HostileTitle}'", output, StringComparison.Ordinal);
        Assert.Equal([CrudLesson.HostileTitle],
            await database.StringsAsync("SELECT title FROM lesson02.documents WHERE title LIKE 'Bobby%'"));
    }

    [Fact]
    public async Task Runs_alongside_lessons_01_and_03_each_in_its_own_schema()
    {
        var results = await Task.WhenAll(
            LessonRunner.RunAsync<EfCoreBasicsLesson>(database.Settings),
            LessonRunner.RunAsync<CrudLesson>(database.Settings),
            LessonRunner.RunAsync<MigrationsLesson>(database.Settings));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.Output));
        Assert.Equal(["lesson01.documents", "lesson02.documents", "lesson03.__EFMigrationsHistory", "lesson03.documents"],
            await database.StringsAsync(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY (table_schema || '.' || table_name) COLLATE \"C\""));
    }
}
