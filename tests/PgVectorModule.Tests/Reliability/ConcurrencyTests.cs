using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson06;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;
using PgVectorModule.Tests.Library;

namespace PgVectorModule.Tests.Reliability;

/// <summary>Many searchers through one data source, concurrent upserts of one key.</summary>
public class ConcurrencyTests(SearchCorpus corpus) : IClassFixture<SearchCorpus>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Eight_searchers_times_a_hundred_queries_through_one_data_source_all_succeed()
    {
        var questions = SearchCorpus.Documents.Select(d => d.Title).ToList();
        var embeddings = new List<Vector>();
        foreach (var question in questions)
        {
            embeddings.Add(await corpus.Embedder.EmbedAsync(question, Ct));
        }

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(searcher => Task.Run(async () =>
        {
            var answered = 0;
            for (var i = 0; i < 100; i++)
            {
                var k = (searcher + i) % questions.Count;
                var hits = i % 2 == 0
                    ? await HybridSearch.ReciprocalRankFusionAsync(corpus.DataSource, questions[k], embeddings[k], cancellationToken: Ct)
                    : await HybridSearch.KeywordAsync(corpus.DataSource, questions[k], cancellationToken: Ct);
                answered += hits.Count > 0 && hits[0].Title == questions[k] ? 1 : 0;
            }

            return answered;
        }, Ct)));

        // Every query answered, and each found the document whose title it asked for.
        Assert.All(results, answered => Assert.Equal(100, answered));
    }

    [Fact]
    public async Task Concurrent_upserts_of_the_same_key_leave_exactly_one_row()
    {
        await using (var create = corpus.DataSource.CreateCommand(
            "CREATE TABLE IF NOT EXISTS upsert_race (source_url text PRIMARY KEY, title text NOT NULL, writes integer NOT NULL)"))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        await Task.WhenAll(Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 25; i++)
            {
                await using var upsert = corpus.DataSource.CreateCommand("""
                    INSERT INTO upsert_race (source_url, title, writes) VALUES (@url, @title, 1)
                    ON CONFLICT (source_url) DO UPDATE SET title = EXCLUDED.title, writes = upsert_race.writes + 1
                    """);
                upsert.Parameters.AddWithValue("url", "https://example.com/one-key");
                upsert.Parameters.AddWithValue("title", $"writer {writer}, write {i}");
                await upsert.ExecuteNonQueryAsync(Ct);
            }
        }, Ct)));

        Assert.Equal(1, await corpus.Database.ScalarAsync<long>("SELECT count(*) FROM search_tests.upsert_race"));
        Assert.Equal(200, await corpus.Database.ScalarAsync<long>("SELECT writes FROM search_tests.upsert_race"));
    }
}

/// <summary>Two search lessons at once against one database: each owns its schema, neither disturbs the other.</summary>
public class ConcurrentLessonsTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Lessons_05_and_06_run_at_the_same_time_each_in_its_own_schema()
    {
        var results = await Task.WhenAll(
            LessonRunner.RunAsync<VectorSearchLesson>(database.Settings),
            LessonRunner.RunAsync<HybridSearchLesson>(database.Settings));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.Output));
        Assert.Contains("Lesson 05 done", results[0].Output, StringComparison.Ordinal);
        Assert.Contains("Lesson 06 done", results[1].Output, StringComparison.Ordinal);
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson05.vector_documents"));
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson06.vector_documents"));
    }
}

/// <summary>The same lesson twice at once against one database: the second waits for the first instead of dropping its tables.</summary>
public class SameLessonTwiceTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task A_second_run_of_a_lesson_waits_for_the_first_and_then_succeeds()
    {
        var ct = TestContext.Current.CancellationToken;
        // Stand in for a first run: hold lesson 01's lock on a connection of our own.
        await using var holder = new NpgsqlConnection(database.ConnectionString.ConnectionString);
        await holder.OpenAsync(ct);
        await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({LessonHost.SchemaLockKey})", holder))
        {
            take.Parameters.AddWithValue("schema", "lesson01");
            await take.ExecuteNonQueryAsync(ct);
        }

        var second = LessonRunner.RunAsync<PgVectorModule.Lessons.Lesson01.EfCoreBasicsLesson>(database.Settings);

        // The second run is blocked on the lock: the server shows its advisory lock request as not granted.
        var waited = false;
        for (var i = 0; i < 200 && !waited; i++)
        {
            waited = await database.ScalarAsync<long>(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") > 0;
            if (!waited)
            {
                await Task.Delay(50, ct);
            }
        }

        Assert.True(waited, "the second run did not wait for the lock");
        Assert.False(second.IsCompleted);
        await using (var release = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", holder))
        {
            await release.ExecuteNonQueryAsync(ct);
        }

        var result = await second;
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("Another run of lesson 01 is working in schema lesson01 of this database; waiting", result.Output, StringComparison.Ordinal);
        Assert.Contains("Lesson 01 done", result.Output, StringComparison.Ordinal);
        // Its own lock is given back at the end.
        Assert.Equal(0, await database.ScalarAsync<long>(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"));
    }
}
