using PgVectorModule.Data;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Reliability;

/// <summary>Ctrl+C (the host's cancellation token) during embedding or ingestion: a prompt exit 130, nothing partial committed.</summary>
public class CancellationTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Cancelled_while_embedding_the_corpus_exits_130_promptly_with_no_rows_written()
    {
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var console = new TestConsole().Width(160);
        // Uncached, so the model is still computing when Ctrl+C comes (from the embedding cache the corpus loads at once).
        var settings = database.Settings with { Embeddings = database.Settings.Embeddings with { Cache = null } };
        var run = LessonHost.RunAsync<VectorSearchLesson>([], new LessonHostOptions { Console = console, Settings = settings, Interactive = false }, cancellation.Token);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        // Part-way through the embedding: the table exists (empty) and the COPY has not begun.
        while (!System.Text.RegularExpressions.Regex.IsMatch(Read(console), @"embedding and loading \d+ documents: [1-9]\d?%"))
        {
            Assert.False(run.IsCompleted, Read(console));
            Assert.True(DateTime.UtcNow < deadline, Read(console));
            await Task.Delay(10, Ct);
        }

        var cancelledAt = DateTime.UtcNow;
        await cancellation.CancelAsync();
        var exit = await run.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.True(exit == ExitCodes.Cancelled, console.Output);
        Assert.True(DateTime.UtcNow - cancelledAt < TimeSpan.FromSeconds(5), $"took {DateTime.UtcNow - cancelledAt} to stop");
        Assert.Contains("Cancelled. Nothing half-done was committed.", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Step 2", console.Output, StringComparison.Ordinal);
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson05.vector_documents"));
    }

    [Fact]
    public async Task Cancelled_in_the_middle_of_a_COPY_leaves_the_table_empty()
    {
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "cancel_copy");
        await using (var schema = dataSource.CreateCommand("CREATE SCHEMA IF NOT EXISTS cancel_copy"))
        {
            await schema.ExecuteNonQueryAsync(Ct);
        }

        const int dims = 384;
        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(dataSource), new VectorStoreShape(dims));
        await VectorStore.EnsureExtensionAsync(dataSource, db, Ct);
        await VectorStore.RecreateTablesAsync(db, Ct);

        // Enough rows that the COPY is still streaming when the token fires.
        const int rows = 40_000;
        var random = new Random(1);
        var documents = Enumerable.Range(0, rows).Select(i => new CorpusDocument($"title {i}", new string('x', 200), "docs")).ToList();
        var vectors = Enumerable.Range(0, rows).Select(_ => new Vector(Enumerable.Range(0, dims).Select(_ => (float)random.NextDouble()).ToArray())).ToList();

        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cancellation.CancelAfter(TimeSpan.FromMilliseconds(150));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VectorStore.CopyAsync(dataSource, documents, vectors, cancellation.Token));

        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM cancel_copy.vector_documents"));
    }

    private static string Read(TestConsole console)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return console.Output;
            }
            catch (Exception) when (attempt < 5)
            {
            }
        }
    }
}
