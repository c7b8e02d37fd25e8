using System.ClientModel;
using Microsoft.Extensions.AI;
using PgVectorModule.Configuration;
using PgVectorModule.Search;

namespace PgVectorModule.Embeddings;

/// <summary>
/// The module's embedding client: the configured <see cref="IEmbeddingGenerator{TInput,TEmbedding}"/> plus the
/// one dimension that flows into <c>vector(N)</c>, and failures turned into sentences a learner can act on.
/// </summary>
public sealed class TextEmbedder : IDisposable
{
    private readonly int _batchSize;

    public TextEmbedder(IEmbeddingGenerator<string, Embedding<float>> generator, EmbeddingIdentity identity, int batchSize)
    {
        Generator = generator ?? throw new ArgumentNullException(nameof(generator));
        Identity = identity ?? throw new ArgumentNullException(nameof(identity));
        _batchSize = batchSize > 0 ? batchSize : throw new ArgumentOutOfRangeException(nameof(batchSize));
    }

    public IEmbeddingGenerator<string, Embedding<float>> Generator { get; }
    public EmbeddingIdentity Identity { get; }
    public int Dimensions => Identity.Dimensions;

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
        if (settings.Provider == EmbeddingProviderKind.Local)
        {
            var local = new LocalEmbeddingGenerator(new LocalEmbeddingOptions { BatchSize = settings.BatchSize, LongText = settings.LocalLongText });
            return new TextEmbedder(local, new EmbeddingIdentity(LocalEmbeddingGenerator.ProviderName, LocalEmbeddingGenerator.ModelId, LocalEmbeddingGenerator.Dimensions), settings.BatchSize);
        }

        if (settings.OpenAIApiKey is null)
        {
            throw new SetupException("EMBEDDING_PROVIDER is openai but OPENAI_API_KEY is not set: put your key in .env (OPENAI_API_KEY=sk-...), or use the offline model with EMBEDDING_PROVIDER=local.", ExitCodes.EmbeddingProviderFailed);
        }

        var openai = OpenAIEmbeddingGeneratorFactory.Create(new OpenAIEmbeddingSettings
        {
            ApiKey = settings.OpenAIApiKey,
            Model = settings.OpenAIModel,
            Dimensions = settings.OpenAIDimensions,
            Endpoint = settings.OpenAIBaseUrl,
            BatchSize = settings.BatchSize,
        });
        return new TextEmbedder(openai, new EmbeddingIdentity("openai", settings.OpenAIModel, settings.OpenAIDimensions), settings.BatchSize);
    }

    /// <summary>One text to one unit-length vector.</summary>
    public async Task<Vector> EmbedAsync(string text, CancellationToken cancellationToken = default) =>
        (await EmbedManyAsync([text], progress: null, cancellationToken))[0];

    /// <summary>Many texts, in batches, reporting how many are done after each batch.</summary>
    public async Task<IReadOnlyList<Vector>> EmbedManyAsync(IReadOnlyList<string> texts, IProgress<int>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var vectors = new List<Vector>(texts.Count);
        foreach (var batch in texts.Chunk(_batchSize))
        {
            GeneratedEmbeddings<Embedding<float>> embeddings;
            try
            {
                embeddings = await Generator.GenerateAsync(batch, cancellationToken: cancellationToken);
            }
            catch (OpenAIAuthenticationException e)
            {
                throw new SetupException(e.Message + " The key in the environment or .env was refused; create a new one, or use the offline model with EMBEDDING_PROVIDER=local.", ExitCodes.EmbeddingProviderFailed, e);
            }
            catch (ClientResultException e)
            {
                throw new SetupException($"The embeddings API answered {e.Status} for {Identity.Model}: {e.Message.Split('\n')[0]} Check OPENAI_EMBEDDING_MODEL and OPENAI_BASE_URL, or use EMBEDDING_PROVIDER=local.", ExitCodes.EmbeddingProviderFailed, e);
            }
            catch (HttpRequestException e)
            {
                throw new SetupException($"The embeddings API at {Identity.Provider} could not be reached ({e.Message}). Check your network and OPENAI_BASE_URL, or use the offline model with EMBEDDING_PROVIDER=local.", ExitCodes.EmbeddingProviderFailed, e);
            }

            TokensEmbedded += embeddings.Usage?.InputTokenCount ?? 0;
            foreach (var embedding in embeddings)
            {
                if (embedding.AdditionalProperties?.TryGetValue("chunks", out var chunks) == true && chunks is int n && n > 1)
                {
                    TextsChunked++;
                }

                if (embedding.AdditionalProperties?.TryGetValue("truncated", out var truncated) == true && truncated is true)
                {
                    TextsTruncated++;
                }

                EmbeddingGuard.EnsureDimension(embedding.Vector, Dimensions, Identity);
                vectors.Add(new Vector(embedding.Vector));
            }

            progress?.Report(vectors.Count);
        }

        return vectors;
    }

    public void Dispose() => Generator.Dispose();
}
