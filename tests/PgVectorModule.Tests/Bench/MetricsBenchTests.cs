using PgVectorModule.Bench.Ann;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;

namespace PgVectorModule.Tests.Bench;

/// <summary>The metrics on cases small enough to compute by hand.</summary>
public sealed class MetricsBenchTests
{
    private const double Tolerance = 1e-9;

    [Fact]
    public void Ndcg_of_a_perfect_ranking_is_one()
    {
        var judged = new Dictionary<string, int> { ["a"] = 2, ["b"] = 1 };
        Assert.Equal(1.0, RetrievalMetrics.NdcgAt(10, ["a", "b", "x"], judged), Tolerance);
    }

    [Fact]
    public void Ndcg_uses_graded_gains_and_log2_discounts()
    {
        // Ranking x, b, a with gains a = 2, b = 1: DCG = 1 / log2(3) + 2 / log2(4) = 0.6309298 + 1 = 1.6309298.
        // Ideal a, b: 2 / log2(2) + 1 / log2(3) = 2 + 0.6309298 = 2.6309298. nDCG = 0.619906
        var judged = new Dictionary<string, int> { ["a"] = 2, ["b"] = 1 };
        var expected = (1 / Math.Log2(3) + 2 / Math.Log2(4)) / (2 + 1 / Math.Log2(3));
        Assert.Equal(expected, RetrievalMetrics.NdcgAt(10, ["x", "b", "a"], judged), Tolerance);
        Assert.Equal(0.619906, RetrievalMetrics.NdcgAt(10, ["x", "b", "a"], judged), 1e-6);
    }

    [Fact]
    public void Ndcg_counts_only_the_first_k_results_and_ignores_zero_judgments()
    {
        var judged = new Dictionary<string, int> { ["a"] = 1, ["z"] = 0 };
        Assert.Equal(0.0, RetrievalMetrics.NdcgAt(2, ["z", "x", "a"], judged), Tolerance);
        // a at rank 3: 1 / log2(4) = 0.5, ideal 1.
        Assert.Equal(0.5, RetrievalMetrics.NdcgAt(3, ["z", "x", "a"], judged), Tolerance);
        Assert.Equal(0.0, RetrievalMetrics.NdcgAt(10, ["a"], new Dictionary<string, int> { ["a"] = 0 }), Tolerance);
    }

    [Fact]
    public void Recall_is_the_share_of_relevant_documents_in_the_first_k()
    {
        var judged = new Dictionary<string, int> { ["a"] = 1, ["b"] = 1, ["c"] = 2, ["d"] = 1 };
        Assert.Equal(0.5, RetrievalMetrics.RecallAt(3, ["a", "x", "c", "b"], judged), Tolerance);
        Assert.Equal(0.75, RetrievalMetrics.RecallAt(100, ["a", "x", "c", "b"], judged), Tolerance);
        Assert.Equal(0.0, RetrievalMetrics.RecallAt(100, [], judged), Tolerance);
    }

    [Fact]
    public void Mrr_is_one_over_the_rank_of_the_first_relevant_result_within_k()
    {
        var judged = new Dictionary<string, int> { ["a"] = 1, ["b"] = 1 };
        Assert.Equal(1.0 / 3, RetrievalMetrics.ReciprocalRankAt(10, ["x", "y", "b", "a"], judged), Tolerance);
        Assert.Equal(1.0, RetrievalMetrics.ReciprocalRankAt(10, ["a"], judged), Tolerance);
        Assert.Equal(0.0, RetrievalMetrics.ReciprocalRankAt(2, ["x", "y", "b"], judged), Tolerance);
    }

    [Fact]
    public void Overlap_is_recall_against_the_exact_top_k()
    {
        Assert.Equal(0.8, RetrievalMetrics.Overlap([1, 2, 3, 4, 9], [1, 2, 3, 4, 5]), Tolerance);
    }

    [Fact]
    public void Latency_percentiles_use_the_nearest_rank()
    {
        var latency = new Latency();
        foreach (var ms in new[] { 5, 1, 4, 2, 3, 6, 7, 8, 9, 10 })
        {
            latency.Add(TimeSpan.FromMilliseconds(ms));
        }

        Assert.Equal(5, latency.P50, 1e-6);
        Assert.Equal(10, latency.P95, 1e-6);
        Assert.Equal(10 / 0.055, latency.Qps, 1e-6);
    }

    private static AnnResult Hnsw(int ef, double recall, double linqMs, double compiledMs, double serverMs) =>
        new("HNSW", "ef_search", ef, recall, 1000 / linqMs, linqMs, linqMs, recall, compiledMs, compiledMs, serverMs, serverMs);

    [Fact]
    public void The_ann_verdict_names_the_cheapest_setting_meeting_the_target_on_either_net_path()
    {
        var ivf = new AnnResult("IVFFlat", "probes", 1, 0.7, 900, 1.1, 1.3, 0.7, 1.0, 1.2, 0.8, 0.9);
        // ef 10 misses on recall; ef 20 meets it only through the compiled, prepared path; ef 40 is slower.
        var verdicts = AnnCommand.Verdicts([Hnsw(10, 0.92, 1.00, 0.85, 0.57), Hnsw(20, 0.955, 1.08, 0.86, 0.67), Hnsw(40, 0.97, 1.46, 1.24, 1.02)], ivf);

        Assert.StartsWith("Cheapest HNSW setting with recall@10 >= 0.95 at p50 <= 1 ms: ef_search 20 (recall 0.955; p50 1.08 ms LINQ, 0.86 ms compiled", verdicts[0], StringComparison.Ordinal);
        Assert.Contains("ef_search 10, takes 0.57 ms inside the server", verdicts[1], StringComparison.Ordinal);
        Assert.StartsWith("IVFFlat's best recall per millisecond: probes 1", verdicts[2], StringComparison.Ordinal);
    }

    [Fact]
    public void The_ann_verdict_says_when_no_setting_meets_the_target_and_which_comes_closest()
    {
        var ivf = new AnnResult("IVFFlat", "probes", 1, 0.1, 900, 1.1, 1.3, 0.1, 1.0, 1.2, 0.8, 0.9);
        var slow = AnnCommand.Verdicts([Hnsw(10, 0.6, 1.3, 1.2, 0.85), Hnsw(80, 0.95, 4.0, 3.4, 3.2)], ivf);
        Assert.StartsWith("No HNSW setting reached recall@10 >= 0.95 at p50 <= 1 ms; the cheapest reaching recall@10 >= 0.95 is ef_search 80", slow[0], StringComparison.Ordinal);

        var poor = AnnCommand.Verdicts([Hnsw(10, 0.6, 0.9, 0.8, 0.5)], ivf);
        Assert.Equal("No HNSW setting reached recall@10 >= 0.95 at p50 <= 1 ms; none reached recall@10 0.95 at all.", poor[0]);
    }
}
