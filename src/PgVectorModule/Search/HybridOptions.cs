namespace PgVectorModule.Search;

/// <summary>
/// How the hybrid searches fuse their two legs. The defaults were chosen on SciFact's train judgments only
/// (<c>bench eval --sweep</c>; the grid and the reasons are in docs/benchmarks.md).
/// </summary>
public sealed record HybridOptions
{
    public const int DefaultCandidates = 100;
    public const double DefaultVectorWeight = 0.5;
    public const int DefaultRrfK = 10;

    /// <summary>How many rows each leg contributes before fusion.</summary>
    public int Candidates { get; init; } = DefaultCandidates;

    /// <summary>
    /// Weighted fusion: the vector leg's share, 0..1; the keyword leg gets the rest. 0.4 and 0.5 score alike on the train
    /// split; an even split is the one that does not favour the leg SciFact happens to reward.
    /// </summary>
    public double VectorWeight { get; init; } = DefaultVectorWeight;

    /// <summary>
    /// Reciprocal rank fusion's k in 1 / (k + rank): larger k flattens the difference between ranks. The literature's 60
    /// comes from fusing many TREC runs; with two lists, 10 ranked better on the train split (k below 10 edges further up,
    /// towards merely alternating the two lists' first results).
    /// </summary>
    public int RrfK { get; init; } = DefaultRrfK;

    public Bm25Parameters Bm25 { get; init; } = Bm25Parameters.Default;

    public static HybridOptions Default { get; } = new();
}
