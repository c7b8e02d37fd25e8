using System.Globalization;
using System.Text;
using BERTTokenizers.Base;
using Microsoft.Extensions.AI;
using Microsoft.ML.OnnxRuntime;

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
/// A local model (<see cref="LocalEmbeddingModel"/>: all-MiniLM-L6-v2 or snowflake-arctic-embed-xs; 384 dims, unit
/// length) from its SentenceTransformers.* package, run in process. Uses the package's embedded model.onnx and BERT
/// tokenizer, but its own InferenceSession so it controls SessionOptions, the token limit (for MiniLM 256, not the
/// package's silent 512), chunking and pooling (the model's own: mean for MiniLM, [CLS] for arctic-embed).
/// Inference is serialized: one batch at a time uses all intra-op threads.
/// </summary>
public sealed class LocalEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private const string OutputName = "last_hidden_state";
    private static readonly string[] OutputNames = [OutputName];

    private readonly LocalEmbeddingOptions _options;
    private readonly Lazy<TokenizerBase> _tokenizer;
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

        _tokenizer = new Lazy<TokenizerBase>(Model.CreateTokenizer, LazyThreadSafetyMode.ExecutionAndPublication);
        _model = new Lazy<OnnxModel>(() => new OnnxModel(Model, _options.IntraOpNumThreads), LazyThreadSafetyMode.ExecutionAndPublication);
        Metadata = new EmbeddingGeneratorMetadata(EmbeddingProviderNames.Local, providerUri: null, defaultModelId: Model.Id, defaultModelDimensions: Model.Dimensions);
    }

    public EmbeddingGeneratorMetadata Metadata { get; }

    public LocalEmbeddingModel Model => _options.Model;

    private int Dimensions => _options.Model.Dimensions;

    public LocalEmbeddingOptions Options => _options;

    /// <summary>True once the ONNX model has been loaded (first GenerateAsync).</summary>
    public bool IsModelLoaded => _model.IsValueCreated;

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

        // 3. One unit-length vector per input text, in input order.
        DateTimeOffset now = DateTimeOffset.UtcNow;
        for (int i = 0; i < texts.Length; i++)
        {
            float[] v = sums[i];
            UnitVector.Normalize(v);
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
        var ids = new long[n * seqLen];
        var mask = new long[n * seqLen];
        var types = new long[n * seqLen];                     // single segment: all zeros
        for (int r = 0; r < n; r++)
        {
            Sequence s = batch[r];
            int o = r * seqLen;
            ids[o] = ClsId;
            Array.Copy(s.Body, s.Start, ids, o + 1, s.Length);
            ids[o + 1 + s.Length] = SepId;
            mask.AsSpan(o, s.Length + 2).Fill(1);
        }

        long[] shape = [n, seqLen];

        lock (_runLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            OnnxModel onnx = _model.Value;                    // lazy, thread-safe, first call loads ~90 MB
            using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
            using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
            using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
            var inputs = new Dictionary<string, OrtValue>
            {
                ["input_ids"] = idsValue,
                ["attention_mask"] = maskValue,
                ["token_type_ids"] = typesValue,
            };
            using var runOptions = new RunOptions();
            // Also stop mid-batch: ORT aborts the run when Terminate is set.
            using CancellationTokenRegistration reg = cancellationToken.Register(() => runOptions.Terminate = true);
            IDisposableReadOnlyCollection<OrtValue> outputs;
            try
            {
                outputs = onnx.Session.Run(runOptions, inputs, OutputNames);
            }
            catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            using (outputs)
            {
                // last_hidden_state: [n, seqLen, 384]. Pool each row the model's way (padding is at the end), then L2.
                ReadOnlySpan<float> hidden = outputs[0].GetTensorDataAsSpan<float>();
                var pooled = new float[n][];
                for (int r = 0; r < n; r++)
                {
                    var v = new float[Dimensions];
                    if (Model.Pooling == LocalPooling.Cls)
                    {
                        hidden.Slice(r * seqLen * Dimensions, Dimensions).CopyTo(v);
                    }
                    else
                    {
                        int realTokens = batch[r].Length + 2;
                        for (int t = 0; t < realTokens; t++)
                        {
                            ReadOnlySpan<float> row = hidden.Slice((r * seqLen + t) * Dimensions, Dimensions);
                            for (int j = 0; j < Dimensions; j++)
                            {
                                v[j] += row[j];
                            }
                        }

                        float inv = 1f / realTokens;
                        for (int j = 0; j < Dimensions; j++)
                        {
                            v[j] *= inv;
                        }
                    }

                    UnitVector.Normalize(v);
                    pooled[r] = v;
                }

                return pooled;
            }
        }
    }

    private const long ClsId = 101;
    private const long SepId = 102;

    /// <summary>Word-piece ids without [CLS]/[SEP].</summary>
    private long[] TokenizeBody(string text)
    {
        string normalized = NormalizeText(text);
        var tokens = _tokenizer.Value.Tokenize(int.MaxValue, normalized)[0];   // [CLS] ... [SEP]
        var body = new long[tokens.Length - 2];
        for (int i = 0; i < body.Length; i++)
        {
            body[i] = tokens[i + 1].VocabularyIndex;
        }

        return body;
    }

    /// <summary>
    /// The package's tokenizer splits words only on ' ' and "\r\n" and does not strip accents, so "a\nb" or
    /// "café" become [UNK]. Bring text closer to BERT's uncased BasicTokenizer first: lower-case, strip accents,
    /// every whitespace/control run -> one space, non-ASCII punctuation padded with spaces.
    /// </summary>
    internal static string NormalizeText(string text)
    {
        string decomposed = text.ToLowerInvariant().Normalize(NormalizationForm.FormD);
        var sb = new StringBuilder(decomposed.Length);
        void Space() { if (sb.Length > 0 && sb[^1] != ' ') { sb.Append(' '); } }
        foreach (char ch in decomposed)
        {
            UnicodeCategory cat = CharUnicodeInfo.GetUnicodeCategory(ch);
            if (cat == UnicodeCategory.NonSpacingMark)
            {
                continue;
            }

            if (char.IsWhiteSpace(ch) || char.IsControl(ch) || cat == UnicodeCategory.Format) { Space(); continue; }
            if (ch > 127 && char.IsPunctuation(ch)) { Space(); sb.Append(ch); sb.Append(' '); continue; }
            sb.Append(ch);
        }

        return sb.ToString().Trim();
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

    private sealed class OnnxModel : IDisposable
    {
        private readonly SessionOptions _sessionOptions;

        public OnnxModel(LocalEmbeddingModel model, int intraOpThreads)
        {
            OnnxRuntimeTelemetry.TurnOff();
            _sessionOptions = new SessionOptions
            {
                IntraOpNumThreads = intraOpThreads,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            try
            {
                Session = new InferenceSession(model.ReadOnnx(), _sessionOptions);
            }
            catch
            {
                _sessionOptions.Dispose();
                throw;
            }
        }

        public InferenceSession Session { get; }

        public void Dispose()
        {
            Session.Dispose();
            _sessionOptions.Dispose();
        }
    }
}
