using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using PgVectorModule.Configuration;
using PgVectorModule.Embeddings;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>
/// Embeddings on disk, one binary file per model: records of SHA-256(text) (32 bytes) then the vector's floats.
/// The key is the model's identity and the exact text, so a changed text or another model is embedded afresh,
/// and a rerun reads instead of recomputing. New vectors are appended.
/// </summary>
public sealed class EmbeddingCache
{
    private readonly Dictionary<string, float[]> _vectors = new(StringComparer.Ordinal);
    private readonly int _dimensions;

    private EmbeddingCache(string path, int dimensions)
    {
        Path = path;
        _dimensions = dimensions;
    }

    public string Path { get; }
    public int Count => _vectors.Count;

    /// <summary>Which vectors a cache file holds: provider and model, and for the local model how it reads long texts
    /// (chunked and averaged, or truncated, at so many word pieces), because that changes the vectors of long texts.
    /// A query's record is keyed by the text the model read, its query prefix included, so it needs no mark of its own.</summary>
    public static string ModelKey(TextEmbedder embedder)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        var key = $"{embedder.Identity.Provider}-{embedder.Identity.Model}";
        return embedder.Generator is LocalEmbeddingGenerator { Options: var o }
            ? $"{key}-{EmbeddingSettings.LongTextName(o.LongText)}{o.MaxTokens}"
            : key;
    }

    public static EmbeddingCache Open(string folder, string modelKey, int dimensions)
    {
        ArgumentNullException.ThrowIfNull(modelKey);
        var safe = string.Concat(modelKey.Select(c => char.IsLetterOrDigit(c) || c is '-' or '.' ? c : '_'));
        var cache = new EmbeddingCache(System.IO.Path.Combine(folder, $"{safe}-{dimensions}.bin"), dimensions);
        if (File.Exists(cache.Path))
        {
            var bytes = cache.Guard(() => File.ReadAllBytes(cache.Path), "read");
            var record = 32 + dimensions * sizeof(float);
            for (var offset = 0; offset + record <= bytes.Length; offset += record)
            {
                var key = Convert.ToHexString(bytes, offset, 32);
                cache._vectors[key] = MemoryMarshal.Cast<byte, float>(bytes.AsSpan(offset + 32, dimensions * sizeof(float))).ToArray();
            }
        }

        return cache;
    }

    /// <summary>Every vector in a cache file, in file order (the ann command's "a dataset's embeddings").</summary>
    public static IReadOnlyList<float[]> ReadVectors(string path, int dimensions)
    {
        if (!File.Exists(path))
        {
            throw new Configuration.SetupException($"{path} does not exist; eval writes its embeddings to artifacts/cache/*.bin, pass one of those.", Configuration.ExitCodes.InvalidInput);
        }

        var bytes = File.ReadAllBytes(path);
        var record = 32 + dimensions * sizeof(float);
        if (bytes.Length == 0 || bytes.Length % record != 0)
        {
            throw new Configuration.SetupException($"{path} is not an embedding cache of {dimensions}-dimension vectors: its {bytes.Length} bytes are not whole records of {record}.", Configuration.ExitCodes.InvalidInput);
        }

        var vectors = new List<float[]>(bytes.Length / record);
        for (var offset = 0; offset < bytes.Length; offset += record)
        {
            vectors.Add(MemoryMarshal.Cast<byte, float>(bytes.AsSpan(offset + 32, dimensions * sizeof(float))).ToArray());
        }

        return vectors;
    }

    public static string KeyOf(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public bool TryGet(string text, out float[] vector) => _vectors.TryGetValue(KeyOf(text), out vector!);

    public void Append(IReadOnlyList<string> texts, IReadOnlyList<float[]> vectors)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Any(v => v.Length != _dimensions))
        {
            throw new ArgumentException($"A vector of {vectors.First(v => v.Length != _dimensions).Length} dimensions in a {_dimensions}-dimension cache.", nameof(vectors));
        }

        Guard(() =>
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!);
            using var file = new FileStream(Path, FileMode.Append, FileAccess.Write);
            for (var i = 0; i < texts.Count; i++)
            {
                var key = KeyOf(texts[i]);
                if (_vectors.TryAdd(key, vectors[i]))
                {
                    file.Write(Convert.FromHexString(key));
                    file.Write(MemoryMarshal.AsBytes(vectors[i].AsSpan()));
                }
            }

            return 0;
        }, "written");
    }

    /// <summary>The cache folder is the user's choice (--cache): a file where a folder should be, no rights, a full disk get one sentence.</summary>
    private T Guard<T>(Func<T> io, string verb)
    {
        try
        {
            return io();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Configuration.SetupException(
                $"The embedding cache {Path} cannot be {verb} ({e.Message.TrimEnd('.')}): choose another folder with --cache DIR; vectors cached before are kept.",
                Configuration.ExitCodes.FileUnavailable, e);
        }
    }
}
