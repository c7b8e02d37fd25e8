using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace PgVectorModule.Embeddings;

/// <summary>
/// Everything that decides which vector a text gets, so the embedding cache keeps vectors of different models (or of one
/// model read differently) apart: the provider and model, the model's exact files, the dimension, how a long text is
/// read, the pooling, and the prefixes. Any change gives another <see cref="Hash"/>, and with it another cache folder.
/// </summary>
public sealed record EmbeddingFingerprint
{
    public required string Provider { get; init; }

    public required string Model { get; init; }

    /// <summary>Which build of the model: a package's version and its model file's size, a file's SHA-256, an API's endpoint.</summary>
    public string Revision { get; init; } = "";

    public required int Dimensions { get; init; }

    /// <summary>How a text is read: word pieces per sequence, long-text handling and overlap, pooling, normalisation.</summary>
    public string Reading { get; init; } = "";

    public string QueryPrefix { get; init; } = "";

    public string DocumentPrefix { get; init; } = "";

    /// <summary>The fields above, one per line: what is hashed, and what the cache folder's model.txt shows a reader.</summary>
    public string Describe() => string.Join('\n',
        $"provider: {Provider}",
        $"model: {Model}",
        $"revision: {Revision}",
        $"dimensions: {Dimensions.ToString(CultureInfo.InvariantCulture)}",
        $"reading: {Reading}",
        $"query prefix: {Quote(QueryPrefix)}",
        $"document prefix: {Quote(DocumentPrefix)}") + "\n";

    /// <summary>SHA-256 of <see cref="Describe"/>, in lower-case hex.</summary>
    public string Hash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Describe())));

    /// <summary>The cache folder's name: readable first (provider, model, dimension), then part of the hash that tells revisions apart.</summary>
    public string FolderName => $"{Safe(Provider)}-{Safe(Model)}-{Dimensions.ToString(CultureInfo.InvariantCulture)}-{Hash[..12]}";

    private static string Quote(string text) => '"' + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + '"';

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_'));
}
