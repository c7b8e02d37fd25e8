using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Problems;

namespace PgVectorModule.Bench.Ann;

/// <summary>
/// The vectors ann loads and the queries it asks: a reproducible mixture, or real embeddings with queries held out of
/// the table, from a file eval wrote or of texts (a file, one per line, or the SDK's own API documentation) embedded
/// through the same cache. <paramref name="Marker"/> is written as the table's comment, so the same rows are not loaded twice.
/// </summary>
public sealed record AnnVectors(List<Vector> Points, List<Vector> Queries, string Source, string Marker)
{
    /// <summary>The one source the options name, or the seeded mixture when they name none.</summary>
    public static async Task<AnnVectors> LoadAsync(BenchContext context, string? vectorsFile, string? textsFile, bool sdkDocs, string? cacheFolder,
        int dimensions, int rows, int queryCount, int seed, int clusters, double spread, CancellationToken cancellationToken)
    {
        if ((vectorsFile is not null ? 1 : 0) + (textsFile is not null ? 1 : 0) + (sdkDocs ? 1 : 0) > 1)
        {
            throw new SetupException("ann takes one source of vectors: --vectors FILE, --texts FILE or --sdk-docs (or none, for the seeded mixture).",
                ExitCodes.InvalidInput);
        }

        if (vectorsFile is not null)
        {
            return HoldOut(VectorFile.Read(vectorsFile, dimensions), $"embeddings from {Path.GetFileName(Path.TrimEndingDirectorySeparator(vectorsFile))}", dimensions, rows, queryCount, seed);
        }

        if (textsFile is not null || sdkDocs)
        {
            var texts = await EmbeddedTexts.LoadAsync(context, textsFile, cacheFolder, dimensions, AnnCommand.Name, cancellationToken);
            return HoldOut(texts.Vectors, textsFile is null ? "embeddings of the .NET SDK's API documentation" : $"embeddings of {Path.GetFileName(textsFile)}",
                dimensions, rows, queryCount, seed);
        }

        return Synthetic(dimensions, rows, queryCount, seed, clusters, spread);
    }

    private static AnnVectors Synthetic(int dimensions, int rows, int queryCount, int seed, int clusters, double spread)
    {
        var generator = new SyntheticVectors(dimensions, seed, clusters, spread);
        var points = Enumerable.Range(0, rows).Select(_ => new Vector(generator.Next())).ToList();
        var queries = Enumerable.Range(0, queryCount).Select(_ => new Vector(generator.Next())).ToList();
        var spreadText = spread.ToString(CultureInfo.InvariantCulture);
        return new AnnVectors(points, queries, $"a mixture of {clusters} clusters, spread {spreadText}, seed {seed}",
            $"bench ann: {rows} rows, {dimensions} dimensions, seed {seed}, {clusters} clusters, spread {spreadText}");
    }

    /// <summary>
    /// Real embeddings shuffled by the seed; the first Q become queries and are kept out of the table, as ANN
    /// benchmarks hold out theirs; the next N (at most) are the table.
    /// </summary>
    private static AnnVectors HoldOut(IReadOnlyList<float[]> vectors, string source, int dimensions, int rows, int queryCount, int seed)
    {
        if (vectors.Count <= queryCount)
        {
            throw new SetupException($"There are {vectors.Count} vectors from {source}; ann needs more than --queries {queryCount}. Give it more, or pass fewer --queries.",
                ExitCodes.InvalidInput);
        }

        var random = new Random(seed);
        var order = Enumerable.Range(0, vectors.Count).ToArray();
        random.Shuffle(order);
        var queries = order.Take(queryCount).Select(i => new Vector(vectors[i])).ToList();
        var points = order.Skip(queryCount).Take(rows).Select(i => new Vector(vectors[i])).ToList();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var vector in vectors)
        {
            hash.AppendData(MemoryMarshal.AsBytes(vector.AsSpan()));
        }

        var digest = Convert.ToHexString(hash.GetHashAndReset())[..16];
        return new AnnVectors(points, queries, $"{source}, {queryCount} held out as queries, seed {seed}",
            $"bench ann: {points.Count} rows, {dimensions} dimensions, seed {seed}, vectors sha256 {digest}");
    }
}
