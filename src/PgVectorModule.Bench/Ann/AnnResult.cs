using PgVectorModule.Search;

namespace PgVectorModule.Bench.Ann;

/// <summary>One index setting measured: recall against the exact top 10 and latency on each path.</summary>
/// <param name="P50Ms">The lessons' LINQ (<see cref="VectorSearch.Nearest"/>), timed in .NET, round trip included.</param>
/// <param name="HotP50Ms">The compiled query (<see cref="VectorSearch.NearestCosineCompiled"/>) on a connection with prepared statements.</param>
/// <param name="ServerP50Ms">Planning plus execution inside PostgreSQL (EXPLAIN ANALYZE of the LINQ's command).</param>
public sealed record AnnResult(string Index, string Setting, int Value, double RecallAt10, double Qps, double P50Ms, double P95Ms,
    double HotRecallAt10, double HotP50Ms, double HotP95Ms, double ServerP50Ms, double ServerP95Ms)
{
    /// <summary>The faster of the two .NET paths.</summary>
    public double BestP50Ms => Math.Min(P50Ms, HotP50Ms);

    /// <summary>The lower of the two paths' recall (they send the same SQL, so they should agree).</summary>
    public double WorstRecallAt10 => Math.Min(RecallAt10, HotRecallAt10);
}
