using System.Runtime.InteropServices;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;

namespace PgVectorModule.Bench.Ann;

/// <summary>
/// The vectors ann --vectors names: a model's folder of the embedding cache (what eval prints), one of its segment
/// files, or a plain file of records (a 32-byte key, then the floats) for vectors made elsewhere.
/// </summary>
public static class VectorFile
{
    public static IReadOnlyList<float[]> Read(string path, int dimensions)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new SetupException($"{path} does not exist; eval prints the folder of the embedding cache that holds its vectors: pass that one.", ExitCodes.InvalidInput);
        }

        if (EmbeddingCache.ReadVectors(path, dimensions) is { } cached)
        {
            return cached;
        }

        if (Directory.Exists(path))
        {
            throw new SetupException($"{path} holds no {dimensions}-dimension vectors of the embedding cache; pass the model's folder eval names.", ExitCodes.InvalidInput);
        }

        var bytes = File.ReadAllBytes(path);
        var record = 32 + dimensions * sizeof(float);
        if (bytes.Length == 0 || bytes.Length % record != 0)
        {
            throw new SetupException($"{path} is not an embedding cache of {dimensions}-dimension vectors: its {bytes.Length} bytes are not whole records of {record}.", ExitCodes.InvalidInput);
        }

        var vectors = new List<float[]>(bytes.Length / record);
        for (var offset = 0; offset < bytes.Length; offset += record)
        {
            vectors.Add(MemoryMarshal.Cast<byte, float>(bytes.AsSpan(offset + 32, dimensions * sizeof(float))).ToArray());
        }

        return vectors;
    }
}
