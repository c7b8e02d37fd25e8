using Pgvector.EntityFrameworkCore;

namespace PgVectorModule.Search;

/// <summary>Nearest-neighbour queries through Pgvector.EntityFrameworkCore: LINQ that becomes ORDER BY distance LIMIT k.</summary>
public static class VectorSearch
{
    public static IQueryable<VectorHit> Nearest(SearchDbContext db, Vector query, DistanceMetric metric = DistanceMetric.Cosine,
        int limit = 5, string? source = null, double? maxDistance = null)
    {
        ArgumentNullException.ThrowIfNull(db);
        var documents = db.Documents.AsNoTracking();
        if (source is not null)
        {
            documents = documents.Where(d => d.Source == source);
        }

        // Each branch is written out so EF sees one operator per query: <=>, <-> or <#>.
        var projected = metric switch
        {
            DistanceMetric.Cosine => documents.Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.CosineDistance(query) }),
            DistanceMetric.L2 => documents.Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.L2Distance(query) }),
            _ => documents.Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.MaxInnerProduct(query) }),
        };

        if (maxDistance is { } threshold)
        {
            projected = projected.Where(h => h.Distance < threshold);
        }

        // Ascending distance with a LIMIT: the only shape an HNSW or IVFFlat index can answer.
        return projected.OrderBy(h => h.Distance).Take(limit).Select(h => new VectorHit(h.Id, h.Title, h.Source, h.Distance));
    }

    // EF Core binds a compiled query to the model it first ran with; each vector shape (dimension, index settings) has a
    // model of its own, so each model gets its compiled query.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Microsoft.EntityFrameworkCore.Metadata.IModel,
        Func<SearchDbContext, Vector, int, IAsyncEnumerable<VectorHit>>> CompiledNearest = new();

    /// <summary>
    /// The hot path: <see cref="Nearest"/> by cosine distance without a filter or threshold, compiled once with
    /// <c>EF.CompileAsyncQuery</c>. The SQL is the same; what it saves is EF Core looking the LINQ up in its query
    /// cache on every call. With prepared statements (<c>Max Auto Prepare</c> in the connection string), which save
    /// the server's parse and plan, it is what <c>bench ann</c> times as "compiled"; the figures are in docs/benchmarks.md.
    /// </summary>
    public static IAsyncEnumerable<VectorHit> NearestCosineCompiled(SearchDbContext db, Vector query, int limit = 5)
    {
        ArgumentNullException.ThrowIfNull(db);
        var compiled = CompiledNearest.GetValue(db.Model, _ => EF.CompileAsyncQuery((SearchDbContext context, Vector q, int k) =>
            context.Documents.AsNoTracking()
                .Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.CosineDistance(q) })
                .OrderBy(h => h.Distance)
                .Take(k)
                .Select(h => new VectorHit(h.Id, h.Title, h.Source, h.Distance))));
        return compiled(db, query, limit);
    }
}
