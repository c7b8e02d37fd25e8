using System.ClientModel;
using System.Text.Json;
using Microsoft.Extensions.AI;
using PgVectorModule.Problems;

namespace PgVectorModule.Embeddings;

/// <summary>
/// The module's embedding client: the configured <see cref="IEmbeddingGenerator{TInput,TEmbedding}"/> plus the
/// one dimension that flows into <c>vector(N)</c>, and failures turned into sentences a learner can act on.
/// </summary>
public sealed class TextEmbedder : IDisposable
{
    private readonly int _batchSize;

    private readonly string _offline;

    public TextEmbedder(IEmbeddingGenerator<string, Embedding<float>> generator, EmbeddingIdentity identity, int batchSize, bool providerChosenByKey = false,
        string queryPrefix = "", string documentPrefix = "")
    {
        Generator = generator ?? throw new ArgumentNullException(nameof(generator));
        Identity = identity ?? throw new ArgumentNullException(nameof(identity));
        _batchSize = batchSize > 0 ? batchSize : throw new ArgumentOutOfRangeException(nameof(batchSize));
        // A learner who set OPENAI_API_KEY for something else may not know it switched the provider.
        _offline = providerChosenByKey
            ? $"or use the offline model with EMBEDDING_PROVIDER={EmbeddingProviderNames.Local} (OPENAI_API_KEY alone selects {EmbeddingProviderNames.OpenAI})"
            : $"or use the offline model with EMBEDDING_PROVIDER={EmbeddingProviderNames.Local}";
        QueryPrefix = queryPrefix ?? throw new ArgumentNullException(nameof(queryPrefix));
        DocumentPrefix = documentPrefix ?? throw new ArgumentNullException(nameof(documentPrefix));
    }

    public IEmbeddingGenerator<string, Embedding<float>> Generator { get; }
    public EmbeddingIdentity Identity { get; }
    public int Dimensions => Identity.Dimensions;

    /// <summary>What the model puts before a search query and never before a document (snowflake-arctic-embed-xs's
    /// instruction); empty for a model that embeds both alike (all-MiniLM-L6-v2, OpenAI's).</summary>
    public string QueryPrefix { get; }

    /// <summary>What the model puts before every document (e5's "passage: "); empty for most.</summary>
    public string DocumentPrefix { get; }

    /// <summary>
    /// Where vectors are kept between runs (<see cref="EmbeddingSettings.Cache"/>), or null: every text is embedded afresh.
    /// Keyed by <see cref="Fingerprint"/> and the exact text the model reads.
    /// </summary>
    public EmbeddingCache? Cache { get; private set; }

    /// <summary>Everything that decides a text's vector; what the cache is keyed by.</summary>
    public EmbeddingFingerprint Fingerprint { get; private init; } = null!;

    /// <summary>How many texts so far were read from the cache instead of being embedded.</summary>
    public int TextsFromCache { get; private set; }

    /// <summary>
    /// How many texts so far were longer than the model's input limit and were embedded as overlapping chunks whose
    /// vectors were averaged (the local model; callers say so to the user rather than cut text silently).
    /// </summary>
    public int TextsChunked { get; private set; }

    /// <summary>How many texts so far were longer than the model's input limit and were cut to it (EMBEDDING_LONG_TEXT=truncate).</summary>
    public int TextsTruncated { get; private set; }

    /// <summary>Tokens the model has read so far, as its usage reports them: for the local model the word pieces of every
    /// sequence it ran ([CLS] and [SEP], chunk overlaps included; a truncated text counts its first 256 only).</summary>
    public long TokensEmbedded { get; private set; }

    public static TextEmbedder Create(EmbeddingSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var embedder = CreateUncached(settings);
        try
        {
            embedder.Cache = settings.Cache is { } cache ? EmbeddingCache.Open(cache, embedder.Fingerprint) : null;
            return embedder;
        }
        catch
        {
            embedder.Dispose();
            throw;
        }
    }

    private static TextEmbedder CreateUncached(EmbeddingSettings settings)
    {
        if (settings.Provider == EmbeddingProviderKind.Local)
        {
            var model = settings.LocalModel;
            var options = new LocalEmbeddingOptions { Model = model, BatchSize = settings.BatchSize, LongText = settings.LocalLongText };
            var local = new LocalEmbeddingGenerator(options);
            try
            {
                if (model.KnownDimensions is null)
                {
                    // A model of your own: its graph says the dimension, and a tokenizer or setting that does not fit it is said now.
                    local.Load();
                }

                var dimensions = local.Dimensions;
                return new TextEmbedder(local, new EmbeddingIdentity(EmbeddingProviderNames.Local, model.Id, dimensions), settings.BatchSize,
                    queryPrefix: model.QueryPrefix, documentPrefix: model.DocumentPrefix)
                {
                    Fingerprint = new EmbeddingFingerprint
                    {
                        Provider = EmbeddingProviderNames.Local,
                        Model = model.Id,
                        Revision = $"{model.Revision}; runner {LocalEmbeddingGenerator.RunnerVersion}",
                        Dimensions = dimensions,
                        Reading = $"{EmbeddingSettings.LongTextName(options.LongText)}, {options.MaxTokens} word pieces, {options.ChunkOverlapTokens} overlap, " +
                                  $"{model.Pooling.ToString().ToLowerInvariant()} pooling{(model.Normalize ? ", normalized" : "")}",
                        QueryPrefix = model.QueryPrefix,
                        DocumentPrefix = model.DocumentPrefix,
                    },
                };
            }
            catch
            {
                local.Dispose();
                throw;
            }
        }

        if (settings.OpenAIApiKey is null)
        {
            throw new SetupException($"EMBEDDING_PROVIDER is {EmbeddingProviderNames.OpenAI} but OPENAI_API_KEY is not set: put your key in .env (OPENAI_API_KEY=sk-...), " +
                $"or use the offline model with EMBEDDING_PROVIDER={EmbeddingProviderNames.Local}.", ExitCodes.EmbeddingProviderFailed);
        }

        var openai = OpenAIEmbeddingGeneratorFactory.Create(new OpenAIEmbeddingSettings
        {
            ApiKey = settings.OpenAIApiKey,
            Model = settings.OpenAIModel,
            Dimensions = settings.OpenAIDimensions,
            Endpoint = settings.OpenAIBaseUrl,
            BatchSize = settings.BatchSize,
            RequestTimeout = settings.OpenAITimeout,
            MaxRetries = settings.OpenAIMaxRetries,
        });
        return new TextEmbedder(openai, new EmbeddingIdentity(EmbeddingProviderNames.OpenAI, settings.OpenAIModel, settings.OpenAIDimensions), settings.BatchSize, settings.ProviderChosenByKey)
        {
            Fingerprint = new EmbeddingFingerprint
            {
                Provider = EmbeddingProviderNames.OpenAI,
                Model = settings.OpenAIModel,
                // Another server behind OPENAI_BASE_URL may answer the same model name with other vectors.
                Revision = settings.OpenAIBaseUrl?.ToString() ?? "api.openai.com",
                Dimensions = settings.OpenAIDimensions,
            },
        };
    }

    /// <summary>One text to one unit-length vector, embedded as a document (stored and searched for).</summary>
    public async Task<Vector> EmbedAsync(string text, CancellationToken cancellationToken = default) =>
        (await EmbedManyAsync([text], progress: null, cancellationToken))[0];

    /// <summary>A search question to one unit-length vector: the text after the model's <see cref="QueryPrefix"/>.
    /// A model trained on prefixed queries ranks documents worse for a bare question.</summary>
    public async Task<Vector> EmbedQueryAsync(string question, CancellationToken cancellationToken = default) =>
        (await EmbedQueriesAsync([question], progress: null, cancellationToken))[0];

    /// <summary>Many search questions, each after the model's <see cref="QueryPrefix"/>.</summary>
    public Task<IReadOnlyList<Vector>> EmbedQueriesAsync(IReadOnlyList<string> questions, IProgress<int>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(questions);
        return EmbedAsReadAsync(questions.Select(QueryText).ToList(), progress, cancellationToken);
    }

    /// <summary>The text the model reads for a search question (what <see cref="EmbedQueryAsync"/> embeds).</summary>
    public string QueryText(string question)
    {
        ArgumentNullException.ThrowIfNull(question);
        return QueryPrefix + question;
    }

    /// <summary>The text the model reads for a document: the text after the model's <see cref="DocumentPrefix"/>.</summary>
    public string DocumentText(string document)
    {
        ArgumentNullException.ThrowIfNull(document);
        return DocumentPrefix + document;
    }

    /// <summary>Many documents, in batches, reporting how many are done after each batch (those the cache holds first).</summary>
    public Task<IReadOnlyList<Vector>> EmbedManyAsync(IReadOnlyList<string> texts, IProgress<int>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return EmbedAsReadAsync(DocumentPrefix.Length == 0 ? texts : texts.Select(DocumentText).ToList(), progress, cancellationToken);
    }

    /// <summary>Texts exactly as the model reads them (prefixes applied): the cache's vectors, then the model's for the rest, saved.</summary>
    private async Task<IReadOnlyList<Vector>> EmbedAsReadAsync(IReadOnlyList<string> texts, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        var cached = Cache?.Find(texts) ?? new Dictionary<string, CachedEmbedding>();
        var vectors = new Vector?[texts.Count];
        var missing = new List<int>();
        for (var i = 0; i < texts.Count; i++)
        {
            if (cached.TryGetValue(texts[i], out var hit) && hit.Vector.Length == Dimensions)
            {
                vectors[i] = new Vector(hit.Vector);
                TextsFromCache++;
                Count(hit.Chunks, hit.Truncated);
            }
            else
            {
                missing.Add(i);
            }
        }

        var done = texts.Count - missing.Count;
        if (done > 0)
        {
            progress?.Report(done);
        }

        var computed = await ComputeAsync(missing.Select(i => texts[i]).ToList(), new OffsetProgress(progress, done), cancellationToken);
        var fresh = new List<KeyValuePair<string, CachedEmbedding>>(missing.Count);
        for (var k = 0; k < missing.Count; k++)
        {
            vectors[missing[k]] = computed[k].Vector;
            fresh.Add(new(texts[missing[k]], computed[k].Cached));
        }

        if (fresh.Count > 0)
        {
            Cache?.Save(fresh);
        }

        return vectors.Select(v => v!).ToList();
    }

    private void Count(int chunks, bool truncated)
    {
        if (chunks > 1)
        {
            TextsChunked++;
        }

        if (truncated)
        {
            TextsTruncated++;
        }
    }

    /// <summary>The model's vectors for texts, in batches, with what it reported of each.</summary>
    private async Task<List<(Vector Vector, CachedEmbedding Cached)>> ComputeAsync(IReadOnlyList<string> texts, IProgress<int> progress, CancellationToken cancellationToken)
    {
        var vectors = new List<(Vector Vector, CachedEmbedding Cached)>(texts.Count);
        foreach (var batch in texts.Chunk(_batchSize))
        {
            GeneratedEmbeddings<Embedding<float>> embeddings;
            try
            {
                embeddings = await Generator.GenerateAsync(batch, cancellationToken: cancellationToken);
            }
            catch (OpenAIAuthenticationException e)
            {
                throw new SetupException(e.Message + $" The key in the environment or .env was refused; create a new one, {_offline}.", ExitCodes.EmbeddingProviderFailed, e);
            }
            catch (OpenAIUnreachableException e) when (e.TimedOutAfter is { } limit)
            {
                throw new SetupException(
                    $"The embeddings API at {e.Endpoint} did not answer within {limit.TotalSeconds:0.#} s (OPENAI_TIMEOUT_SECONDS, retries included). " +
                    $"Check your network and OPENAI_BASE_URL, raise OPENAI_TIMEOUT_SECONDS for a slow server, {_offline}.",
                    ExitCodes.EmbeddingProviderFailed, e);
            }
            catch (OpenAIUnreachableException e)
            {
                throw new SetupException($"The embeddings API at {e.Endpoint} could not be reached: {e.Reason}. Check your network and OPENAI_BASE_URL, {_offline}.",
                    ExitCodes.EmbeddingProviderFailed, e);
            }
            catch (ClientResultException e)
            {
                throw new SetupException($"The embeddings API at {Endpoint} answered {e.Status} for {Identity.Model}: {e.Message.Split('\n')[0]} Check OPENAI_EMBEDDING_MODEL and OPENAI_BASE_URL, {_offline}.", ExitCodes.EmbeddingProviderFailed, e);
            }
            catch (JsonException e)
            {
                throw new SetupException($"The server at {Endpoint} answered, but not as the embeddings API does ({e.Message.Split('.')[0]}): " +
                    $"check OPENAI_BASE_URL (the API's root, ending in /v1), {_offline}.", ExitCodes.EmbeddingProviderFailed, e);
            }

            TokensEmbedded += embeddings.Usage?.InputTokenCount ?? 0;
            foreach (var embedding in embeddings)
            {
                var properties = embedding.AdditionalProperties;
                var chunks = properties?.TryGetValue("chunks", out var c) == true && c is int n ? n : 1;
                var truncated = properties?.TryGetValue("truncated", out var t) == true && t is true;
                var tokens = properties?.TryGetValue("token_count", out var k) == true && k is int count ? count : 0;
                Count(chunks, truncated);
                EnsureDimension(embedding.Vector);
                var array = embedding.Vector.ToArray();
                vectors.Add((new Vector(array), new CachedEmbedding(array, tokens, chunks, truncated)));
            }

            progress.Report(vectors.Count);
        }

        return vectors;
    }

    /// <summary>Where requests go, for messages: the generator's own report (OPENAI_BASE_URL, else OpenAI's default).</summary>
    private string Endpoint => Generator.GetService<EmbeddingGeneratorMetadata>()?.ProviderUri?.ToString() ?? Identity.Provider;

    public void Dispose() => Generator.Dispose();

    /// <summary>A server that ignores the dimensions it was asked for (or another model behind the same name) is caught here, before PostgreSQL.</summary>
    private void EnsureDimension(ReadOnlyMemory<float> vector)
    {
        if (vector.Length != Dimensions)
        {
            throw new SetupException(
                $"A {vector.Length}-dimension vector cannot go into a vector({Dimensions}) column: {Identity} returned it. Check that the model and " +
                "OPENAI_EMBEDDING_DIMENSIONS name what the server computes (some servers ignore the dimensions they are asked for), or use the offline model with EMBEDDING_PROVIDER=local.",
                ExitCodes.EmbeddingMismatch);
        }
    }

    /// <summary>Reports a count after those already done, on the caller's thread (Progress&lt;T&gt; would post it later).</summary>
    private sealed class OffsetProgress(IProgress<int>? inner, int offset) : IProgress<int>
    {
        public void Report(int value) => inner?.Report(offset + value);
    }
}
