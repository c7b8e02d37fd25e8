using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// The embedding cache on its own: keyed by the model's whole identity, safe with several writers at once, and never
/// reading a damaged record as a vector.
/// </summary>
public sealed class EmbeddingCacheTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("embedding-cache-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EmbeddingFingerprint Fingerprint => new()
    {
        Provider = "local",
        Model = "test-model",
        Revision = "r1",
        Dimensions = 4,
        Reading = "chunk, 256 word pieces",
        QueryPrefix = "query: ",
    };

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void A_changed_model_identity_misses_and_the_same_identity_hits()
    {
        var settings = new EmbeddingCacheSettings(_folder);
        EmbeddingCache.Open(settings, Fingerprint).Save([new("a text", new CachedEmbedding([1, 0, 0, 0], 5))]);

        Assert.True(EmbeddingCache.Open(settings, Fingerprint).TryGet("a text", out var hit));
        Assert.Equal([1f, 0, 0, 0], hit.Vector);
        Assert.Equal(5, hit.TokenCount);
        Assert.False(EmbeddingCache.Open(settings, Fingerprint).TryGet("a text ", out _));
        foreach (var changed in new[]
                 {
                     Fingerprint with { Provider = "openai" }, Fingerprint with { Model = "other-model" }, Fingerprint with { Revision = "r2" },
                     Fingerprint with { Dimensions = 8 }, Fingerprint with { Reading = "truncate, 256 word pieces" },
                     Fingerprint with { QueryPrefix = "" }, Fingerprint with { DocumentPrefix = "passage: " },
                 })
        {
            Assert.NotEqual(Fingerprint.FolderName, changed.FolderName);
            Assert.False(EmbeddingCache.Open(settings, changed).TryGet("a text", out _), changed.Describe());
        }

        // A segment moved into another model's folder is not that model's: its header names the identity it was made for.
        var other = EmbeddingCache.Open(settings, Fingerprint with { Revision = "r2" });
        Directory.CreateDirectory(other.Folder);
        foreach (var segment in Directory.GetFiles(EmbeddingCache.Open(settings, Fingerprint).Folder, "*" + EmbeddingCache.SegmentExtension))
        {
            File.Copy(segment, Path.Combine(other.Folder, Path.GetFileName(segment)));
        }

        Assert.False(other.TryGet("a text", out _));
    }

    [Fact]
    public void A_truncated_or_damaged_segment_gives_its_whole_records_and_never_a_torn_one()
    {
        var settings = new EmbeddingCacheSettings(_folder);
        var cache = EmbeddingCache.Open(settings, Fingerprint);
        cache.Save([new("one", new CachedEmbedding([1, 1, 1, 1])), new("two", new CachedEmbedding([2, 2, 2, 2])), new("three", new CachedEmbedding([3, 3, 3, 3]))]);
        var segment = Assert.Single(Directory.GetFiles(cache.Folder, "*" + EmbeddingCache.SegmentExtension));

        // Cut in the middle of the third record, as a crash or a full disk would leave it.
        var bytes = File.ReadAllBytes(segment);
        File.WriteAllBytes(segment, bytes[..(bytes.Length - 10)]);
        var found = EmbeddingCache.Open(settings, Fingerprint).Find(["one", "two", "three"]);
        Assert.Equal(["one", "two"], found.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([2f, 2, 2, 2], found["two"].Vector);

        // One byte changed inside the first record's vector: its checksum no longer holds, so it is skipped, not misread.
        bytes = File.ReadAllBytes(segment);
        bytes[44 + 32 + 12 + 2] ^= 0x40;
        File.WriteAllBytes(segment, bytes);
        found = EmbeddingCache.Open(settings, Fingerprint).Find(["one", "two", "three"]);
        Assert.Equal(["two"], found.Keys);

        // What is missing is written again, and read from then on.
        EmbeddingCache.Open(settings, Fingerprint).Save([new("one", new CachedEmbedding([1, 1, 1, 1])), new("three", new CachedEmbedding([3, 3, 3, 3]))]);
        Assert.Equal(3, EmbeddingCache.Open(settings, Fingerprint).Count);
    }

    [Fact]
    public async Task Writers_that_save_and_merge_at_once_lose_and_corrupt_nothing()
    {
        // Four caches of one folder with no state in common, as four processes would be: each saves 30 segments of texts
        // that overlap the others' (more than MaxSegments, so they merge while the others write and read).
        var settings = new EmbeddingCacheSettings(_folder);
        static float[] VectorOf(int n) => [n, n + 0.5f, -n, 1f / (n + 1)];
        await Task.WhenAll(Enumerable.Range(0, 4).Select(writer => Task.Run(() =>
        {
            var cache = EmbeddingCache.Open(settings, Fingerprint);
            for (var round = 0; round < 30; round++)
            {
                var texts = Enumerable.Range(round * 10 + writer * 3, 12).ToList();
                cache.Save(texts.Select(n => new KeyValuePair<string, CachedEmbedding>($"text {n}", new CachedEmbedding(VectorOf(n)))).ToList());
                var seen = EmbeddingCache.Open(settings, Fingerprint).Find(texts.Select(n => $"text {n}").ToList());
                Assert.All(seen, pair => Assert.Equal(VectorOf(int.Parse(pair.Key[5..], System.Globalization.CultureInfo.InvariantCulture)), pair.Value.Vector));
            }
        }, Ct)));

        var all = Enumerable.Range(0, 30 * 10 + 9 + 12).Select(n => $"text {n}").ToList();
        var written = all.Where(t => Enumerable.Range(0, 4).Any(w => Enumerable.Range(0, 30).Any(r =>
        {
            var n = int.Parse(t[5..], System.Globalization.CultureInfo.InvariantCulture);
            return n >= r * 10 + w * 3 && n < r * 10 + w * 3 + 12;
        }))).ToList();
        var found = EmbeddingCache.Open(settings, Fingerprint).Find(all);
        Assert.Equal(written.Count, found.Count);
        Assert.All(found, pair => Assert.Equal(VectorOf(int.Parse(pair.Key[5..], System.Globalization.CultureInfo.InvariantCulture)), pair.Value.Vector));
        var folder = EmbeddingCache.Open(settings, Fingerprint).Folder;
        Assert.Empty(Directory.GetFiles(folder, "*.tmp"));
        Assert.True(Directory.GetFiles(folder, "*" + EmbeddingCache.SegmentExtension).Length <= EmbeddingCache.MaxSegments + 4);
    }

    [Fact]
    public async Task A_cache_folder_that_cannot_be_written_is_passed_over_unless_it_was_asked_for()
    {
        var file = Path.Combine(_folder, "a-file");
        await File.WriteAllTextAsync(file, "", Ct);
        using var embedder = TextEmbedder.Create(EmbeddingSettings.From(n => n == "EMBEDDING_CACHE_DIR" ? file : null));

        var vector = await embedder.EmbedAsync("vectors in PostgreSQL", Ct);

        Assert.Equal(384, vector.ToArray().Length);
        Assert.NotNull(embedder.Cache!.WriteProblem);
        var refused = Assert.Throws<SetupException>(() => EmbeddingCache.Open(new EmbeddingCacheSettings(file) { Required = true }, Fingerprint));
        Assert.Equal(ExitCodes.FileUnavailable, refused.ExitCode);
        Assert.Contains("choose another folder with --cache DIR", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EMBEDDING_CACHE_is_on_by_default_in_the_per_user_folder_off_on_request_and_refuses_other_words()
    {
        var standard = EmbeddingSettings.From(_ => null).Cache!;
        Assert.Equal(EmbeddingCacheSettings.DefaultFolder(), standard.Folder);
        Assert.EndsWith(Path.Combine("pgvector-module", "embeddings"), standard.Folder, StringComparison.Ordinal);
        Assert.False(standard.Folder.StartsWith(RepositoryRoot.Path, StringComparison.Ordinal), "the cache must live outside the repository");
        Assert.Null(EmbeddingSettings.From(n => n == "EMBEDDING_CACHE" ? "OFF" : null).Cache);
        Assert.Equal(Path.GetFullPath(_folder), EmbeddingSettings.From(n => n == "EMBEDDING_CACHE_DIR" ? _folder : null).Cache!.Folder);
        Assert.Null(new EmbeddingSettings().Cache);
        var problem = Assert.Throws<SetupException>(() => EmbeddingSettings.From(n => n == "EMBEDDING_CACHE" ? "sometimes" : null));
        Assert.Equal(ExitCodes.Failed, problem.ExitCode);
        Assert.Contains("set it to on", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_embedder_reads_what_it_saved_counts_it_and_gives_the_same_vectors()
    {
        var settings = EmbeddingSettings.From(n => n switch { "EMBEDDING_CACHE_DIR" => _folder, "EMBEDDING_LONG_TEXT" => "truncate", _ => null });
        var longText = string.Join(' ', Enumerable.Repeat("Vector indexes trade a little recall for speed.", 40));
        string[] texts = ["pgvector stores embeddings in PostgreSQL", longText];
        IReadOnlyList<Vector> fresh;
        using (var first = TextEmbedder.Create(settings))
        {
            fresh = await first.EmbedManyAsync(texts, progress: null, Ct);
            Assert.Equal(0, first.TextsFromCache);
            Assert.Equal(1, first.TextsTruncated);
        }

        using var second = TextEmbedder.Create(settings);
        var cached = await second.EmbedManyAsync(texts, progress: null, Ct);

        Assert.Equal(2, second.TextsFromCache);
        Assert.Equal(0, second.TokensEmbedded);
        Assert.False(((LocalEmbeddingGenerator)second.Generator).IsModelLoaded);
        // What the model reported is kept with the vector: a cut text is still counted as cut.
        Assert.Equal(1, second.TextsTruncated);
        Assert.Equal(fresh.Select(v => v.ToArray()), cached.Select(v => v.ToArray()));
    }
}
