namespace PgVectorModule.Search;

/// <summary>
/// One search result. <see cref="Score"/> is "higher is better" for every method. A fused result also says where each
/// list ranked it (1 = first), or null where that list did not have it among its candidates.
/// </summary>
public sealed record SearchHit(int Id, string Title, string? Source, double Score, int? VectorRank = null, int? KeywordRank = null);
