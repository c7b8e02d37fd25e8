using PgVectorModule.Embeddings;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>
/// Reproducible unit vectors from a seed. Uniform random directions make every neighbour about equally far, which
/// no real embedding does; a gaussian mixture (points scattered around a number of centres) gives ANN indexes the
/// clustered structure they are built for, and a recall figure that means something.
/// </summary>
public sealed class SyntheticVectors
{
    private readonly Random _random;
    private readonly float[][] _centres;
    private readonly double _spread;
    private readonly float[][] _basis;

    /// <param name="clusters">Centres of the mixture; 0 or 1 gives independent uniform directions.</param>
    /// <param name="spread">How far points scatter around their centre, relative to the centre's length.</param>
    /// <param name="intrinsicDimensions">
    /// Points vary around their centre along this many shared directions (plus a little noise in all of them), as
    /// real embeddings do: they fill a low-dimensional part of the space, which is what makes ANN indexes work.
    /// </param>
    public SyntheticVectors(int dimensions, int seed, int clusters = 0, double spread = 0.8, int intrinsicDimensions = 32)
    {
        Dimensions = dimensions;
        _random = new Random(seed);
        _spread = spread;
        _centres = clusters <= 1 ? [] : Enumerable.Range(0, clusters).Select(_ => Gaussian(1.0)).ToArray();
        _basis = clusters <= 1 ? [] : Enumerable.Range(0, intrinsicDimensions).Select(_ => Gaussian(1.0 / Math.Sqrt(intrinsicDimensions))).ToArray();
    }

    public int Dimensions { get; }

    public float[] Next()
    {
        float[] v;
        if (_centres.Length == 0)
        {
            v = Gaussian(1.0);
        }
        else
        {
            var centre = _centres[_random.Next(_centres.Length)];
            v = Gaussian(0.1 * _spread);
            foreach (var direction in _basis)
            {
                var z = (float)(_spread * GaussianNoise.Next(_random));
                for (var i = 0; i < v.Length; i++)
                {
                    v[i] += z * direction[i];
                }
            }

            for (var i = 0; i < v.Length; i++)
            {
                v[i] += centre[i];
            }
        }

        UnitVector.Normalize(v);
        return v;
    }

    private float[] Gaussian(double sigma)
    {
        var v = new float[Dimensions];
        for (var i = 0; i < v.Length; i++)
        {
            v[i] = (float)(sigma * GaussianNoise.Next(_random));
        }

        return v;
    }
}
