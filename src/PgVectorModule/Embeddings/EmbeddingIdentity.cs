namespace PgVectorModule.Embeddings;

/// <summary>The provider, model and dimension of the embeddings a program computes.</summary>
public sealed record EmbeddingIdentity(string Provider, string Model, int Dimensions)
{
    public override string ToString() => $"{Model} ({Dimensions} dimensions, {Provider})";
}
