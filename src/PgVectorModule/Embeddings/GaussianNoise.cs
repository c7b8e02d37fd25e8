namespace PgVectorModule.Embeddings;

/// <summary>
/// Standard normal samples from a seeded <see cref="Random"/>, for synthetic vectors that cluster like real embeddings
/// and come out the same on every run with the same seed.
/// </summary>
public static class GaussianNoise
{
    /// <summary>Box-Muller: two uniforms (the first kept above zero for the logarithm) to one standard normal sample.</summary>
    public static double Next(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
