using PgVectorModule.Embeddings;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

/// <summary>
/// The embedding cache as a learner meets it: a lesson run again reads the corpus's vectors, says so in one line, and
/// ends exactly where a fresh embedding ends; two lessons filling one cache at once leave it whole.
/// </summary>
public sealed class EmbeddingCacheLessonTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _cache = Directory.CreateTempSubdirectory("lesson-cache-").FullName;

    public void Dispose() => Directory.Delete(_cache, recursive: true);

    private ModuleSettings Settings(string? cache) => ModuleSettings.From(name => name switch
    {
        "DATABASE_URL" => database.ConnectionString.ConnectionString,
        "EMBEDDING_CACHE" => cache is null ? "off" : "on",
        "EMBEDDING_CACHE_DIR" => cache,
        _ => null,
    }, "test");

    [Fact]
    public async Task A_second_run_reads_the_cache_says_so_and_matches_a_fresh_embedding()
    {
        var first = await LessonRunner.RunAsync<VectorSearchLesson>(Settings(_cache));
        Assert.True(first.ExitCode == 0, first.Output);
        Assert.DoesNotContain(first.Transcript.Notes, n => n.Contains("from the embedding cache", StringComparison.Ordinal));

        var second = await LessonRunner.RunAsync<VectorSearchLesson>(Settings(_cache));
        Assert.True(second.ExitCode == 0, second.Output);
        var note = Assert.Single(second.Transcript.Notes, n => n.Contains("from the embedding cache", StringComparison.Ordinal));
        Assert.StartsWith($"{SampleCorpus.All.Count} of {SampleCorpus.All.Count} vectors came from the embedding cache ({_cache}", note, StringComparison.Ordinal);
        Assert.EndsWith("EMBEDDING_CACHE=off embeds them afresh.", note, StringComparison.Ordinal);
        var cachedVectors = await StoredVectorsAsync();

        var fresh = await LessonRunner.RunAsync<VectorSearchLesson>(Settings(cache: null));
        Assert.True(fresh.ExitCode == 0, fresh.Output);
        Assert.DoesNotContain(fresh.Transcript.Notes, n => n.Contains("from the embedding cache", StringComparison.Ordinal));

        // The same rows, the same vectors to the last bit, and so the same answers in every search the lesson showed.
        Assert.Equal(cachedVectors, await StoredVectorsAsync());
        Assert.Equal(Tables(second.Transcript), Tables(fresh.Transcript));
    }

    [Fact]
    public async Task Two_lesson_processes_fill_one_cache_at_once_and_a_third_reads_it_whole()
    {
        var environment = new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString, ["EMBEDDING_CACHE_DIR"] = _cache };

        var both = await Task.WhenAll(LessonProcess.RunLessonAsync("04", environment), LessonProcess.RunLessonAsync("06", environment));
        Assert.All(both, r => Assert.True(r.ExitCode == 0, r.Output));

        var again = await LessonProcess.RunLessonAsync("04", environment);
        Assert.True(again.ExitCode == 0, again.Output);
        Assert.Contains($"{SampleCorpus.All.Count} of {SampleCorpus.All.Count} vectors came from the embedding cache", again.Transcript!.Step("embed-corpus").Notes[^1], StringComparison.Ordinal);
        // Every record in the model's folder is whole, and each is the model's vector of its text.
        using var embedder = TextEmbedder.Create(Settings(_cache).Embeddings);
        var folder = embedder.Cache!.Folder;
        Assert.Empty(Directory.GetFiles(folder, "*.tmp"));
        var stored = EmbeddingCache.ReadVectors(folder, embedder.Dimensions)!;
        Assert.True(stored.Count >= SampleCorpus.All.Count, $"{stored.Count} vectors");
        using var uncached = TextEmbedder.Create(Settings(cache: null).Embeddings);
        var sample = SampleCorpus.All.Take(5).Select(d => d.TextToEmbed).ToList();
        Assert.True(embedder.Cache.Find(sample).Count == sample.Count);
        var expected = await uncached.EmbedManyAsync(sample, progress: null, TestContext.Current.CancellationToken);
        for (var i = 0; i < sample.Count; i++)
        {
            Assert.True(embedder.Cache.TryGet(sample[i], out var hit));
            Assert.Equal(expected[i].ToArray(), hit.Vector);
        }
    }

    private async Task<List<string>> StoredVectorsAsync() =>
        await database.StringsAsync("SELECT title || ' ' || embedding::text FROM lesson05.vector_documents ORDER BY title, embedding::text");

    /// <summary>The tables of search results over the corpus (those with a title column), without their timings.</summary>
    private static List<string> Tables(LessonTranscript transcript) =>
        transcript.Steps.SelectMany(s => s.Tables).Where(t => t.Columns.Contains("title"))
            .Select(t => string.Join('\n', t.Rows.Select(r => string.Join('|', r.Where(c => !c.Key.Contains("ms", StringComparison.Ordinal)).Select(c => c.Value)))))
            .ToList();
}
