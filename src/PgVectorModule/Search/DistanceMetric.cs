namespace PgVectorModule.Search;

public enum DistanceMetric
{
    /// <summary><c>&lt;=&gt;</c>, 1 - cosine similarity: direction only. The usual choice for text embeddings.</summary>
    Cosine,

    /// <summary><c>&lt;-&gt;</c>, Euclidean distance. For unit vectors it ranks exactly like cosine.</summary>
    L2,

    /// <summary><c>&lt;#&gt;</c>, the negative inner product (negative so that smaller is nearer, like the others).</summary>
    InnerProduct,
}
