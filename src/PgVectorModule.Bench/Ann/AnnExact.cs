namespace PgVectorModule.Bench.Ann;

/// <summary>The exact top 10 by sequential scan: the ground truth, and the latency an index has to beat.</summary>
public sealed record AnnExact(double Qps, double P50Ms, double P95Ms, double ServerP50Ms, double ServerP95Ms);
