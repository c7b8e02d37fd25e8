namespace PgVectorModule.Bench.Evaluation;

/// <summary>
/// The retrieval metrics BEIR reports, computed as trec_eval computes them: graded relevance from the judgments
/// (a document without a judgment, or judged 0, is not relevant), linear gains, log2 discounts.
/// </summary>
public static class RetrievalMetrics
{
    /// <summary>
    /// nDCG@k: DCG = sum over the first k results of gain / log2(rank + 1); divided by the DCG of the ideal order
    /// (the judged gains, highest first). 0 when the query has no relevant document.
    /// </summary>
    public static double NdcgAt(int k, IReadOnlyList<string> ranked, IReadOnlyDictionary<string, int> judgments)
    {
        ArgumentNullException.ThrowIfNull(ranked);
        ArgumentNullException.ThrowIfNull(judgments);
        double dcg = 0;
        for (var i = 0; i < Math.Min(k, ranked.Count); i++)
        {
            if (judgments.TryGetValue(ranked[i], out var gain) && gain > 0)
            {
                dcg += gain / Math.Log2(i + 2);
            }
        }

        var ideal = judgments.Values.Where(g => g > 0).OrderDescending().Take(k).Select((g, i) => g / Math.Log2(i + 2)).Sum();
        return ideal == 0 ? 0 : dcg / ideal;
    }

    /// <summary>Recall@k: the share of the relevant documents found in the first k results.</summary>
    public static double RecallAt(int k, IReadOnlyList<string> ranked, IReadOnlyDictionary<string, int> judgments)
    {
        ArgumentNullException.ThrowIfNull(ranked);
        ArgumentNullException.ThrowIfNull(judgments);
        var relevant = judgments.Count(j => j.Value > 0);
        if (relevant == 0)
        {
            return 0;
        }

        var found = ranked.Take(k).Distinct().Count(id => judgments.TryGetValue(id, out var gain) && gain > 0);
        return (double)found / relevant;
    }

    /// <summary>MRR@k for one query: 1 / rank of the first relevant result within the first k, else 0.</summary>
    public static double ReciprocalRankAt(int k, IReadOnlyList<string> ranked, IReadOnlyDictionary<string, int> judgments)
    {
        ArgumentNullException.ThrowIfNull(ranked);
        ArgumentNullException.ThrowIfNull(judgments);
        for (var i = 0; i < Math.Min(k, ranked.Count); i++)
        {
            if (judgments.TryGetValue(ranked[i], out var gain) && gain > 0)
            {
                return 1.0 / (i + 1);
            }
        }

        return 0;
    }

    /// <summary>Recall of an approximate top-k against the exact one: |approximate ∩ exact| / |exact|.</summary>
    public static double Overlap<T>(IReadOnlyCollection<T> approximate, IReadOnlyCollection<T> exact)
    {
        ArgumentNullException.ThrowIfNull(approximate);
        ArgumentNullException.ThrowIfNull(exact);
        return exact.Count == 0 ? 1 : (double)approximate.Intersect(exact).Count() / exact.Count;
    }
}
