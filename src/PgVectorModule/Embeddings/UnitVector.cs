using System.Numerics.Tensors;

namespace PgVectorModule.Embeddings;

/// <summary>
/// Scaling a vector to length 1. Cosine distance then orders like inner product and L2, which is what the models'
/// own normalisation promises and what synthetic data has to imitate.
/// </summary>
public static class UnitVector
{
    /// <summary>Below this length a vector is left as it is (all zeros stays zeros) instead of blowing up.</summary>
    private const float MinimumLength = 1e-12f;

    /// <summary>Scales <paramref name="vector"/> in place to length 1, with SIMD through TensorPrimitives.</summary>
    public static void Normalize(Span<float> vector)
    {
        var length = TensorPrimitives.Norm(vector);
        TensorPrimitives.Multiply(vector, 1f / MathF.Max(length, MinimumLength), vector);
    }
}
