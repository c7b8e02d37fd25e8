namespace PgVectorModule.Search;

/// <summary>
/// The fused queries' last step (<see cref="SearchSql.Weighted"/>, <see cref="SearchSql.ReciprocalRankFusion"/>) in C#,
/// for legs that ran as statements of their own: rank each leg, join on id, score, keep the best. It computes what the
/// SQL computes, in the same types, so both forms return the same hits to the last bit and break ties alike (score
/// descending, then id).
/// </summary>
internal static class HybridFusion
{
    /// <param name="nearest">The vector leg, in any order: it is ranked by distance, then id.</param>
    /// <param name="keyword">The keyword leg, in any order: it is ranked by score descending, then id.</param>
    public static IReadOnlyList<SearchHit> Fuse(SearchMethod method, IReadOnlyList<LegCandidate> nearest, IReadOnlyList<LegCandidate> keyword,
        int limit, HybridOptions options)
    {
        ArgumentNullException.ThrowIfNull(nearest);
        ArgumentNullException.ThrowIfNull(keyword);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var vector = nearest.OrderBy(c => c.Value).ThenBy(c => c.Id).ToList();
        var lexical = keyword.OrderByDescending(c => c.Value).ThenBy(c => c.Id).ToList();
        return method switch
        {
            SearchMethod.ReciprocalRankFusion => ReciprocalRankFusion(vector, lexical, limit, options.RrfK),
            SearchMethod.Weighted => Weighted(vector, lexical, limit, options.VectorWeight),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Only the hybrid searches fuse two legs."),
        };
    }

    /// <summary>
    /// 1 / (k + rank) from each leg, summed. In SQL, 1.0 / (@k + rank) is numeric, not float8: decimal division rounded
    /// to the same places gives the same sums, so equal SQL scores stay equal here and ties fall to the id alike.
    /// </summary>
    private static List<SearchHit> ReciprocalRankFusion(List<LegCandidate> vector, List<LegCandidate> keyword, int limit, int k) =>
        Join(vector, keyword)
            .Select(j => (j.Candidate, j.VectorRank, j.KeywordRank, Score: Reciprocal(k, j.VectorRank) + Reciprocal(k, j.KeywordRank)))
            .OrderByDescending(f => f.Score).ThenBy(f => f.Candidate.Id)
            .Take(limit)
            .Select(f => Hit(f.Candidate, (double)f.Score, f.VectorRank, f.KeywordRank))
            .ToList();

    /// <summary>
    /// PostgreSQL's numeric 1.0 / (k + rank), as a decimal with the same digits and the same scale (trailing zeros kept,
    /// as numeric keeps them: the conversion to double reads the digits as stored); 0 for a leg that did not have the document.
    /// </summary>
    public static decimal Reciprocal(int k, int? rank)
    {
        if (rank is not { } r)
        {
            return 0m;
        }

        var scale = ReciprocalScale(k + r);
        // Adding a zero of that scale pads the rounded quotient to it: decimal addition keeps the larger scale.
        return decimal.Round(1m / (k + r), scale, MidpointRounding.AwayFromZero) + new decimal(0, 0, 0, false, (byte)scale);
    }

    /// <summary>
    /// The scale PostgreSQL gives 1.0 / n (select_div_scale): at least 16 significant digits, counted in its base-10,000
    /// digits, so 20 decimal places for n up to 9,999, 24 up to 99,999,999; rounded half away from zero.
    /// </summary>
    public static int ReciprocalScale(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        var baseDigits = 0;
        for (var rest = n; rest >= 10_000; rest /= 10_000)
        {
            baseDigits++;
        }

        return 20 + 4 * baseDigits;
    }

    /// <summary>
    /// Each leg's values min-max normalized to 0..1 over its own candidates (1 when they are all equal, as coalesce(..., 1)
    /// makes them), then weight * vector + (1 - weight) * keyword, in float8 arithmetic as the SQL does it.
    /// </summary>
    private static List<SearchHit> Weighted(List<LegCandidate> vector, List<LegCandidate> keyword, int limit, double weight)
    {
        var nearness = Normalized(vector, c => vector[^1].Value - c.Value);
        var relevance = Normalized(keyword, c => c.Value - keyword[^1].Value);
        return Join(vector, keyword)
            .Select(j => (j.Candidate, j.VectorRank, j.KeywordRank,
                Score: weight * (j.VectorRank is { } v ? nearness[v - 1] : 0) + (1 - weight) * (j.KeywordRank is { } r ? relevance[r - 1] : 0)))
            .OrderByDescending(f => f.Score).ThenBy(f => f.Candidate.Id)
            .Take(limit)
            .Select(f => Hit(f.Candidate, f.Score, f.VectorRank, f.KeywordRank))
            .ToList();
    }

    /// <summary>
    /// (max - distance) / (max - min) for the vector leg, (score - min) / (max - min) for the keyword leg: the ranked
    /// leg's last entry is the far end, and <paramref name="fromFarEnd"/> measures from it.
    /// </summary>
    private static double[] Normalized(List<LegCandidate> ranked, Func<LegCandidate, double> fromFarEnd)
    {
        if (ranked.Count == 0)
        {
            return [];
        }

        var range = fromFarEnd(ranked[0]);
        return ranked.Select(c => range == 0 ? 1 : fromFarEnd(c) / range).ToArray();
    }

    /// <summary>The FULL JOIN of the two ranked legs on id: every document either leg has, with its rank in each (1 = first).</summary>
    private static IEnumerable<(LegCandidate Candidate, int? VectorRank, int? KeywordRank)> Join(List<LegCandidate> vector, List<LegCandidate> keyword)
    {
        var keywordRanks = keyword.Select((c, i) => (c.Id, Rank: i + 1)).ToDictionary(r => r.Id, r => r.Rank);
        var vectorIds = new HashSet<int>();
        for (var i = 0; i < vector.Count; i++)
        {
            vectorIds.Add(vector[i].Id);
            yield return (vector[i], i + 1, keywordRanks.TryGetValue(vector[i].Id, out var rank) ? rank : null);
        }

        for (var i = 0; i < keyword.Count; i++)
        {
            if (!vectorIds.Contains(keyword[i].Id))
            {
                yield return (keyword[i], null, i + 1);
            }
        }
    }

    private static SearchHit Hit(LegCandidate candidate, double score, int? vectorRank, int? keywordRank) =>
        new(candidate.Id, candidate.Title, candidate.Source, score, vectorRank, keywordRank);
}
