namespace PgVectorModule.Search;

/// <summary>
/// One row of a hybrid search's leg, before fusion: <see cref="Value"/> is the cosine distance for the vector leg
/// (lower is nearer) and the BM25 score for the keyword leg (higher is better).
/// </summary>
internal sealed record LegCandidate(int Id, double Value);
