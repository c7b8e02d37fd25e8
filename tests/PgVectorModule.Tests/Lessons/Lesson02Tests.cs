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
            Assert.True(result.Transcript.Completed);
            Assert.Equal(15, result.Transcript.Steps.Count);
            // 1 + 6 inserted, 1 removed, 2 deleted in bulk, 1 upserted, 0 from the failed import, 1 hostile title.
            Assert.Equal(6, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents"));
            Assert.Equal(["articles", "docs", "docs", "docs", "guides"],
                await database.StringsAsync("SELECT source FROM lesson02.documents WHERE title <> 'Bobby''; DROP TABLE documents; --' ORDER BY source COLLATE \"C\""));
        }
    }

    [Fact]
    public async Task Create_and_read_show_one_batch_and_the_identity_map()
    {
        var run = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Transcript;
        // EF Core ends SQL lines with the system's newline: compared with \n on every system.
        var (sql, notes) = (run.SentSql().ReplaceLineEndings("\n"), run.AllNotes());

        Assert.Contains("6 rows saved in 1 round trip.", notes, StringComparison.Ordinal);
        Assert.Single(run.Step("create-batch").SqlSent);
        Assert.Contains("Two FindAsync calls, 1 query", notes, StringComparison.Ordinal);
        Assert.Single(run.Step("find-by-key").SqlSent);
        Assert.Contains("WHERE d.source = @source OR d.title LIKE @word_contains", sql, StringComparison.Ordinal);
        Assert.Contains("LIMIT @p OFFSET @p", sql, StringComparison.Ordinal);
        Assert.Contains("SELECT d.id, d.title, d.source\n", sql, StringComparison.Ordinal);
        Assert.Contains("SELECT count(*)::int", sql, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Updates_send_only_the_changed_column_and_set_based_commands_load_nothing()
    {
        var run = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Transcript;
        var (sql, notes) = (run.SentSql().ReplaceLineEndings("\n"), run.AllNotes());

        Assert.Contains("UPDATE documents SET title = @p0, updated_at = @p1\n", sql, StringComparison.Ordinal);
        Assert.Contains("WHERE id = @p2 AND xmin = @p3", sql, StringComparison.Ordinal);
        Assert.Contains("UPDATE documents AS d", sql, StringComparison.Ordinal);
        Assert.Contains("2 rows moved from blog to articles", notes, StringComparison.Ordinal);
        Assert.Contains("WHERE id = @p0 AND xmin = @p1", run.Step("delete-tracked").SentSql(), StringComparison.Ordinal);
        Assert.Contains("DELETE FROM documents AS d", sql, StringComparison.Ordinal);
        Assert.Contains("2 rows deleted", notes, StringComparison.Ordinal);
        Assert.Empty(await database.StringsAsync("SELECT title FROM lesson02.documents WHERE source IN ('blog', 'research') OR title = 'Why an ORM'"));
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents WHERE updated_at < created_at"));
        Assert.Equal(1, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents WHERE source = 'articles' AND updated_at > created_at"));
    }

    [Fact]
    public async Task Upsert_keeps_one_row_per_source_url_even_with_concurrent_writers()
    {
        var run = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Transcript;
        var upsert = run.Step("upsert");

        Assert.Contains("ON CONFLICT (source_url) DO UPDATE", upsert.SentSql(), StringComparison.Ordinal);
        Assert.Contains("After 4 concurrent upserts: 1 row", run.AllNotes(), StringComparison.Ordinal);
        Assert.Contains(upsert.SqlSent, s => s.Parameters.Contains($"@p2 = '{CrudLesson.UpsertUrl}'")); // a parameter, not SQL text
        // Four concurrent writers, sent quietly, each recorded.
        Assert.Equal(6, upsert.SqlSent.Count(s => s.Text.Contains("ON CONFLICT", StringComparison.Ordinal)));
        var (first, second) = (upsert.Tables[0].Row("call", "first"), upsert.Tables[0].Row("call", "second"));
        Assert.Equal(first["id"], second["id"]);
        Assert.Equal(("True", "False"), (first["inserted"], second["inserted"]));
        Assert.Equal(["Concurrent writer"],
            await database.StringsAsync($"SELECT left(content, 17) FROM lesson02.documents WHERE source_url = '{CrudLesson.UpsertUrl}'"));
    }

    [Fact]
    public async Task The_failed_transaction_leaves_no_row_and_the_concurrency_conflict_is_resolved()
    {
        var notes = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Transcript.AllNotes();

        Assert.Contains("duplicate key value violates unique constraint \"ix_documents_source_url\": rolled back", notes, StringComparison.Ordinal);
        Assert.Contains("Rows of the import that stayed: 0 rows", notes, StringComparison.Ordinal);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents WHERE source = 'import'"));

        Assert.Contains("DbUpdateConcurrencyException", notes, StringComparison.Ordinal);
        Assert.Contains("Resolved", notes, StringComparison.Ordinal);
        // Alice's title and Bob's content both survived.
        Assert.Equal(["Alice's title|Bob's rewritten content."],
            await database.StringsAsync("SELECT title || '|' || content FROM lesson02.documents WHERE id = 1"));
    }

    [Fact]
    public async Task A_hostile_title_is_stored_and_found_as_plain_text()
    {
        var run = (await LessonRunner.RunAsync<CrudLesson>(database.Settings)).Transcript;
        var sql = run.SentSql();

        Assert.Contains("WHERE d.title = @title", sql, StringComparison.Ordinal);
        Assert.Contains($"@title = '{CrudLesson.HostileTitle}'", sql, StringComparison.Ordinal);
        Assert.Equal([CrudLesson.HostileTitle],
            await database.StringsAsync("SELECT title FROM lesson02.documents WHERE title LIKE 'Bobby%'"));

        // Concatenated into FromSqlRaw, the same title is SQL: EF sent it as written and the DROP TABLE ran (then rolled back).
        var step = run.Step("hostile-input");
        Assert.Contains(step.SqlSent, s => s.Text == $"SELECT *, xmin FROM documents WHERE title = '{CrudLesson.HostileTitle}'");
        Assert.Contains("the documents table was dropped", step.Note("Concatenated into FromSqlRaw:"), StringComparison.Ordinal);
        Assert.Contains(step.Sql, s => s.Shown && !s.Sent && s.Text.EndsWith("WHERE title = @p0", StringComparison.Ordinal));
        Assert.Equal(6, await database.ScalarAsync<long>("SELECT count(*) FROM lesson02.documents"));
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
