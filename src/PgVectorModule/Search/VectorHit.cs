namespace PgVectorModule.Search;

/// <summary>A vector search result with the raw distance beside the similarity derived from it.</summary>
public sealed record VectorHit(int Id, string Title, string? Source, double Distance)
{
    /// <summary>Cosine similarity = 1 - cosine distance.</summary>
    public double Similarity => 1 - Distance;
}
