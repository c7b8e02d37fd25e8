using Microsoft.Extensions.AI;
using Microsoft.ML.OnnxRuntime;
using PgVectorModule.Problems;

namespace PgVectorModule.Embeddings;

/// <summary>What to do with a text longer than <see cref="LocalEmbeddingOptions.MaxTokens"/>.</summary>
public enum LongTextHandling
{
    /// <summary>Split into overlapping token windows, embed each, average (weighted by tokens), re-normalize.</summary>
    ChunkAndAverage,

    /// <summary>Keep the first MaxTokens word pieces; the embedding is flagged "truncated" = true.</summary>
    Truncate,
}

public sealed class LocalEmbeddingOptions
{
    private readonly int? _maxTokens;

    /// <summary>Which model to run (LOCAL_EMBEDDING_MODEL).</summary>
    public LocalEmbeddingModel Model { get; init; } = LocalEmbeddingModel.Default;

    /// <summary>Sequences (texts or chunks) per ONNX Runtime call.</summary>
    public int BatchSize { get; init; } = EmbeddingSettings.LocalDefaultBatchSize;

    /// <summary>Word pieces per sequence including [CLS] and [SEP]; by default what the model was trained with
    /// (<see cref="LocalEmbeddingModel.TrainedMaxTokens"/>: 256 for all-MiniLM-L6-v2, 512 for snowflake-arctic-embed-xs),
    /// at most its position table (<see cref="LocalEmbeddingModel.ModelMaxTokens"/>).</summary>
    public int MaxTokens
    {
        get => _maxTokens ?? Model.TrainedMaxTokens;
        init => _maxTokens = value;
    }

    public LongTextHandling LongText { get; init; } = LongTextHandling.ChunkAndAverage;

    /// <summary>Word pieces shared by consecutive chunks (ChunkAndAverage only).</summary>
    public int ChunkOverlapTokens { get; init; } = 32;

    /// <summary>ONNX Runtime intra-op threads; 0 = ONNX Runtime's own default.</summary>
    public int IntraOpNumThreads { get; init; } = Environment.ProcessorCount;
}

/// <summary>
/// A local model (<see cref="LocalEmbeddingModel"/>: all-MiniLM-L6-v2 or snowflake-arctic-embed-xs, 384 dims, unit
/// length, from its SentenceTransformers.* package; or a BERT-family ONNX file of your own), run in process. Uses the
/// model's ONNX graph and vocabulary with its own InferenceSession and BERT word pieces (<see cref="BertWordPieces"/>), so
/// it controls SessionOptions, the token limit (for MiniLM 256, not the package's silent 512), chunking and pooling
/// (the model's own: mean for MiniLM, [CLS] for arctic-embed). Inference is serialized: one batch at a time uses all
/// intra-op threads.
/// </summary>
public sealed class LocalEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>
    /// Raised when the runner's arithmetic or tokenization changes the vectors it computes, so the embedding cache keeps
    /// no vector an older runner made (2: word pieces from Microsoft.ML.Tokenizers' BertTokenizer).
    /// </summary>
    public const int RunnerVersion = 2;

    private readonly LocalEmbeddingOptions _options;
    private readonly Lazy<BertWordPieces> _tokenizer;
    private readonly Lazy<OnnxModel> _model;
    private readonly Lock _runLock = new();
    private bool _disposed;

    public LocalEmbeddingGenerator(LocalEmbeddingOptions? options = null)
    {
        _options = options ?? new LocalEmbeddingOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.BatchSize, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxTokens, 3, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(_options.MaxTokens, Model.ModelMaxTokens, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.ChunkOverlapTokens, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(_options.ChunkOverlapTokens, _options.MaxTokens - 2, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.IntraOpNumThreads, nameof(options));

        _tokenizer = new Lazy<BertWordPieces>(ReadTokenizer, LazyThreadSafetyMode.ExecutionAndPublication);
        _model = new Lazy<OnnxModel>(() => new OnnxModel(Model, _options, _tokenizer.Value), LazyThreadSafetyMode.ExecutionAndPublication);
        Metadata = new EmbeddingGeneratorMetadata(EmbeddingProviderNames.Local, providerUri: null, defaultModelId: Model.Id, defaultModelDimensions: Model.KnownDimensions);
    }

    public EmbeddingGeneratorMetadata Metadata { get; }

    public LocalEmbeddingModel Model => _options.Model;

    /// <summary>The vectors' dimension: known for the packaged models; a model of your own is loaded to read it from its graph.</summary>
    public int Dimensions => Model.KnownDimensions ?? LoadedModel.Dimensions;

    public LocalEmbeddingOptions Options => _options;

    /// <summary>True once the ONNX model has been loaded (first GenerateAsync).</summary>
    public bool IsModelLoaded => _model.IsValueCreated;

    /// <summary>The model's word pieces (its vocabulary only: the graph is not loaded).</summary>
    public BertWordPieces Tokenizer => _tokenizer.Value;

    /// <summary>
    /// Loads the model now (it loads on first use otherwise), so a model of your own that does not fit its tokenizer or
    /// its settings, or an ONNX Runtime that cannot load, is reported before any work.
    /// </summary>
    public void Load() => _ = LoadedModel;

    private OnnxModel LoadedModel
    {
        get
        {
            lock (_runLock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                return _model.Value;
            }
        }
    }

    /// <summary>Word pieces the model would see for <paramref name="text"/>, including [CLS] and [SEP].
    /// Compare with <see cref="LocalEmbeddingOptions.MaxTokens"/>. Loads only the vocabulary, not the model.</summary>
    public int CountTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TokenizeBody(text).Length + 2;
    }

    public bool ExceedsTokenLimit(string text) => CountTokens(text) > _options.MaxTokens;

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values,
        EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (options?.Dimensions is int d && d != Dimensions)
        {
            throw new NotSupportedException($"{Model.Id} produces {Dimensions} dimensions; {d} was requested.");
        }

        if (options?.ModelId is string m && !string.Equals(m, Model.Id, StringComparison.OrdinalIgnoreCase))
        {
            throw new NotSupportedException($"This generator runs {Model.Id}; '{m}' was requested.");
        }

        string[] texts = values.ToArray();
        var result = new GeneratedEmbeddings<Embedding<float>>(texts.Length);
        if (texts.Length == 0)
        {
            return result;
        }

        // 1. Tokenize and split into sequences of at most MaxTokens word pieces.
        var sequences = new List<Sequence>();
        var perText = new TextInfo[texts.Length];
        int window = _options.MaxTokens - 2;
        int stride = window - _options.ChunkOverlapTokens;
        for (int i = 0; i < texts.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (texts[i] is null)
            {
                throw new ArgumentException($"values[{i}] is null.", nameof(values));
            }

            long[] body = TokenizeBody(texts[i]);
            int total = body.Length + 2;
            if (body.Length <= window)
            {
                sequences.Add(new Sequence(i, body, 0, body.Length));
                perText[i] = new TextInfo(total, 1, false);
            }
            else if (_options.LongText == LongTextHandling.Truncate)
            {
                sequences.Add(new Sequence(i, body, 0, window));
                perText[i] = new TextInfo(total, 1, true);
            }
            else
            {
                int chunks = 0;
                for (int start = 0; ; start += stride)
                {
                    int len = Math.Min(window, body.Length - start);
                    sequences.Add(new Sequence(i, body, start, len));
                    chunks++;
                    if (start + len >= body.Length)
                    {
                        break;
                    }
                }

                perText[i] = new TextInfo(total, chunks, false);
            }
        }

        // 2. Run batches, longest first, so each batch pads to similar lengths.
        Sequence[] ordered = sequences.OrderByDescending(s => s.Length).ToArray();
        var sums = new float[texts.Length][];
        var weights = new float[texts.Length];
        long tokensProcessed = 0;
        for (int b = 0; b < ordered.Length; b += _options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();   // honoured between batches
            var batch = new ArraySegment<Sequence>(ordered, b, Math.Min(_options.BatchSize, ordered.Length - b));
            float[][] pooled = await Task.Run(() => RunBatch(batch, cancellationToken), cancellationToken);
            for (int k = 0; k < batch.Count; k++)
            {
                Sequence s = batch[k];
                float w = s.Length + 2;                       // weight chunks by their size
                float[] acc = sums[s.TextIndex] ??= new float[Dimensions];
                for (int j = 0; j < Dimensions; j++)
                {
                    acc[j] += w * pooled[k][j];
                }

                weights[s.TextIndex] += w;
                tokensProcessed += s.Length + 2;
            }
        }

        // 3. One vector per input text, in input order: unit length, or (a model that does not normalise) the weighted mean.
        DateTimeOffset now = DateTimeOffset.UtcNow;
        for (int i = 0; i < texts.Length; i++)
        {
            float[] v = sums[i];
            if (Model.Normalize)
            {
                UnitVector.Normalize(v);
            }
            else
            {
                System.Numerics.Tensors.TensorPrimitives.Divide(v, weights[i], v);
            }

            result.Add(new Embedding<float>(v)
            {
                ModelId = Model.Id,
                CreatedAt = now,
                AdditionalProperties = new AdditionalPropertiesDictionary
                {
                    ["token_count"] = perText[i].TokenCount,
                    ["chunks"] = perText[i].Chunks,
                    ["truncated"] = perText[i].Truncated,
                },
            });
        }

        result.Usage = new UsageDetails { InputTokenCount = tokensProcessed, TotalTokenCount = tokensProcessed };
        return result;
    }

    private float[][] RunBatch(IReadOnlyList<Sequence> batch, CancellationToken cancellationToken)
    {
        int n = batch.Count;
        int seqLen = batch.Max(s => s.Length) + 2;
        BertWordPieces tokenizer = _tokenizer.Value;
        var ids = new long[n * seqLen];
        var mask = new long[n * seqLen];
        for (int r = 0; r < n; r++)
        {
            Sequence s = batch[r];
            int o = r * seqLen;
            ids[o] = tokenizer.ClassificationId;
            Array.Copy(s.Body, s.Start, ids, o + 1, s.Length);
            ids[o + 1 + s.Length] = tokenizer.SeparatorId;
            mask.AsSpan(o, s.Length + 2).Fill(1);
        }

        lock (_runLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            OnnxModel onnx = _model.Value;                    // lazy, thread-safe, first call loads ~90 MB
            int dimensions = onnx.Dimensions;
            using var runOptions = new RunOptions();
            // Also stop mid-batch: ORT aborts the run when Terminate is set.
            using CancellationTokenRegistration reg = cancellationToken.Register(() => runOptions.Terminate = true);
            IDisposableReadOnlyCollection<OrtValue> outputs;
            try
            {
                outputs = onnx.Run(runOptions, ids, mask, n, seqLen);
            }
            catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            using (outputs)
            {
                // last_hidden_state: [n, seqLen, dimensions]. Pool each row the model's way (padding is at the end), then L2.
                ReadOnlySpan<float> hidden = outputs[0].GetTensorDataAsSpan<float>();
                var pooled = new float[n][];
                for (int r = 0; r < n; r++)
                {
                    var v = new float[dimensions];
                    if (Model.Pooling == LocalPooling.Cls)
                    {
                        hidden.Slice(r * seqLen * dimensions, dimensions).CopyTo(v);
                    }
                    else
                    {
                        int realTokens = batch[r].Length + 2;
                        for (int t = 0; t < realTokens; t++)
                        {
                            ReadOnlySpan<float> row = hidden.Slice((r * seqLen + t) * dimensions, dimensions);
                            for (int j = 0; j < dimensions; j++)
                            {
                                v[j] += row[j];
                            }
                        }

                        float inv = 1f / realTokens;
                        for (int j = 0; j < dimensions; j++)
                        {
                            v[j] *= inv;
                        }
                    }

                    if (Model.Normalize)
                    {
                        UnitVector.Normalize(v);
                    }

                    pooled[r] = v;
                }

                return pooled;
            }
        }
    }

    /// <summary>Word-piece ids without [CLS]/[SEP].</summary>
    private long[] TokenizeBody(string text) => Array.ConvertAll(_tokenizer.Value.Encode(text), id => (long)id);

    private BertWordPieces ReadTokenizer()
    {
        try
        {
            return Model.CreateTokenizer();
        }
        catch (Exception e) when (Model.TokenizerPath is { } path && e is IOException or UnauthorizedAccessException or FormatException or System.Text.Json.JsonException
            or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            throw new SetupException($"The tokenizer {path} cannot be read as a BERT tokenizer ({e.Message.TrimEnd('.')}): LOCAL_EMBEDDING_MODEL_TOKENIZER takes " +
                "the vocab.txt or the tokenizer.json of a WordPiece model, the one that came with the .onnx file.", ExitCodes.Failed, e);
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }

        if (serviceType == typeof(EmbeddingGeneratorMetadata))
        {
            return Metadata;
        }

        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
        lock (_runLock)                                       // waits for a running batch to finish
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_model.IsValueCreated)
            {
                _model.Value.Dispose();
            }
        }
    }

    private readonly record struct Sequence(int TextIndex, long[] Body, int Start, int Length);

    private readonly record struct TextInfo(int TokenCount, int Chunks, bool Truncated);

    /// <summary>One InferenceSession over the model's graph, with what it takes in and gives out.</summary>
    private sealed class OnnxModel : IDisposable
    {
        private const string HiddenState = "last_hidden_state";
        private readonly SessionOptions _sessionOptions;
        private readonly string[] _outputNames;
        private readonly bool _takesTokenTypes;

        public OnnxModel(LocalEmbeddingModel model, LocalEmbeddingOptions options, BertWordPieces tokenizer)
        {
            if (model.OnnxPath is { } path && !File.Exists(path))
            {
                throw new SetupException($"The model file {path} (LOCAL_EMBEDDING_MODEL_PATH) is gone; give the path of the model's .onnx file, or unset it for the packaged {LocalEmbeddingModel.Default.Id}.", ExitCodes.Failed);
            }

            OnnxRuntimeTelemetry.TurnOff();
            try
            {
                _sessionOptions = new SessionOptions
                {
                    IntraOpNumThreads = options.IntraOpNumThreads,
                    InterOpNumThreads = 1,
                    ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                    GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                    // A failed run becomes an exception and then a sentence; ONNX Runtime's own log line would only repeat it,
                    // in red, even for the checks below that are meant to fail.
                    LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
                };
            }
            catch (Exception e) when (OnnxRuntimeLibrary.IsUnavailable(e))
            {
                throw OnnxRuntimeLibrary.Unavailable(e);
            }

            try
            {
                Session = model.ReadPackagedOnnx() is { } bytes ? new InferenceSession(bytes, _sessionOptions) : new InferenceSession(model.OnnxPath!, _sessionOptions);
                var inputs = Session.InputMetadata.Keys.ToHashSet(StringComparer.Ordinal);
                if (!inputs.Contains("input_ids") || !inputs.Contains("attention_mask"))
                {
                    throw NotAnEncoder(model, $"its inputs are {string.Join(", ", inputs)}");
                }

                _takesTokenTypes = inputs.Contains("token_type_ids");
                var output = Session.OutputMetadata.ContainsKey(HiddenState)
                    ? HiddenState
                    : Session.OutputMetadata.FirstOrDefault(o => o.Value.Dimensions.Length == 3).Key
                      ?? throw NotAnEncoder(model, $"it has no output of one vector per word piece (its outputs are {string.Join(", ", Session.OutputMetadata.Keys)})");
                _outputNames = [output];
                Dimensions = Session.OutputMetadata[output].Dimensions[^1];
                if (model.OnnxPath is not null)
                {
                    Check(model, options, tokenizer);
                }
            }
            catch (OnnxRuntimeException e) when (model.OnnxPath is { } file && Session is null)
            {
                _sessionOptions.Dispose();
                throw new SetupException($"ONNX Runtime cannot load {file} ({e.Message.Split('\n')[0].TrimEnd('.')}): LOCAL_EMBEDDING_MODEL_PATH takes a model exported to ONNX " +
                    "(a .onnx file, with its .onnx_data beside it if it has one).", ExitCodes.Failed, e);
            }
            catch
            {
                Session?.Dispose();
                _sessionOptions.Dispose();
                throw;
            }
        }

        public InferenceSession Session { get; }

        /// <summary>The width of the hidden state: the vectors' dimension.</summary>
        public int Dimensions { get; private set; }

        public IDisposableReadOnlyCollection<OrtValue> Run(RunOptions runOptions, long[] ids, long[] mask, int rows, int length)
        {
            long[] shape = [rows, length];
            using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
            using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
            using var typesValue = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape);   // single segment: all zeros
            var inputs = new Dictionary<string, OrtValue> { ["input_ids"] = idsValue, ["attention_mask"] = maskValue };
            if (_takesTokenTypes)
            {
                inputs["token_type_ids"] = typesValue;
            }

            return Session.Run(runOptions, inputs, _outputNames);
        }

        public void Dispose()
        {
            Session.Dispose();
            _sessionOptions.Dispose();
        }

        /// <summary>
        /// A model of your own against its tokenizer and settings, with three small runs: the tokenizer's last id must be
        /// a row of the model's embedding table and one past it must not (a vocabulary of another size is another
        /// model's), and a sequence of LOCAL_EMBEDDING_MODEL_MAX_TOKENS word pieces must fit its position table.
        /// </summary>
        private void Check(LocalEmbeddingModel model, LocalEmbeddingOptions options, BertWordPieces tokenizer)
        {
            bool Runs(params long[] ids)
            {
                var mask = new long[ids.Length];
                Array.Fill(mask, 1L);
                using var runOptions = new RunOptions();
                try
                {
                    using var outputs = Run(runOptions, ids, mask, 1, ids.Length);
                    var shape = outputs[0].GetTensorTypeAndShape().Shape;
                    Dimensions = (int)shape[^1];
                    return true;
                }
                catch (OnnxRuntimeException)
                {
                    return false;
                }
            }

            var (cls, sep, last) = ((long)tokenizer.ClassificationId, (long)tokenizer.SeparatorId, (long)tokenizer.VocabularySize - 1);
            var tokenizerFile = model.TokenizerPath;
            if (!Runs(cls, last, sep))
            {
                throw new SetupException($"The tokenizer {tokenizerFile} does not fit the model {model.OnnxPath}: its {tokenizer.VocabularySize:N0} word pieces are more than the " +
                    "rows of the model's embedding table. Give LOCAL_EMBEDDING_MODEL_TOKENIZER the vocab.txt or tokenizer.json that came with the model.", ExitCodes.Failed);
            }

            if (Runs(cls, last + 1, sep))
            {
                throw new SetupException($"The tokenizer {tokenizerFile} does not fit the model {model.OnnxPath}: the model's embedding table has more rows than its " +
                    $"{tokenizer.VocabularySize:N0} word pieces. Give LOCAL_EMBEDDING_MODEL_TOKENIZER the vocab.txt or tokenizer.json that came with the model.", ExitCodes.Failed);
            }

            var longest = new long[options.MaxTokens];
            Array.Fill(longest, tokenizer.UnknownId);
            (longest[0], longest[^1]) = (cls, sep);
            if (!Runs(longest))
            {
                throw new SetupException($"The model {model.OnnxPath} cannot read {options.MaxTokens} word pieces at once (LOCAL_EMBEDDING_MODEL_MAX_TOKENS): " +
                    "set it to the model's max_position_embeddings (512 for most BERT models) or less.", ExitCodes.Failed);
            }
        }

        private static SetupException NotAnEncoder(LocalEmbeddingModel model, string why) =>
            new($"The model {model.OnnxPath ?? model.Id} is not a BERT-family encoder this course can run: {why}. LOCAL_EMBEDDING_MODEL_PATH takes an ONNX " +
                "export with input_ids and attention_mask inputs and a last_hidden_state output (what sentence-transformers and Optimum export).", ExitCodes.Failed);
    }
}
