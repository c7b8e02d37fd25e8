namespace PgVectorModule.Search;

/// <summary>The SQL searches of <see cref="SearchSql"/>, by name.</summary>
public enum SearchMethod
{
    /// <summary>BM25 over the postings: any query term may match.</summary>
    Keyword,

    /// <summary>websearch_to_tsquery, every term required, ranked by ts_rank_cd.</summary>
    KeywordAllTerms,

    /// <summary>Both legs' candidates, min-max normalized and weighted.</summary>
    Weighted,

    /// <summary>Both legs' candidates, fused by 1 / (k + rank).</summary>
    ReciprocalRankFusion,
}

/// <summary>What a method is made of, said once for every place that asks.</summary>
internal static class SearchMethods
{
    /// <summary>Weighted and RRF fuse a vector leg with a keyword leg; the keyword methods are one statement over the postings.</summary>
    public static bool IsFused(this SearchMethod method) => method is SearchMethod.Weighted or SearchMethod.ReciprocalRankFusion;
}
