using PgVectorModule.Search;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>What a plan scans, in a few words, for the result tables of eval and scale.</summary>
public static class QueryPlan
{
    /// <summary>The scans a plan is made of, in a few words: what the table's "plan" column shows.</summary>
    public static string Summary(IReadOnlyList<string> plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var text = string.Join('\n', plan);
        var parts = new List<string>();
        if (text.Contains(VectorDocumentConfiguration.HnswIndex, StringComparison.Ordinal))
        {
            parts.Add("HNSW");
        }

        if (text.Contains($"Seq Scan on {VectorDocumentConfiguration.TableName}", StringComparison.Ordinal))
        {
            parts.Add("seq scan");
        }

        if (text.Contains(DocumentTermConfiguration.LexemeIndex, StringComparison.Ordinal))
        {
            parts.Add("postings index");
        }

        if (text.Contains(VectorDocumentConfiguration.SourceIndex, StringComparison.Ordinal))
        {
            parts.Add("source B-tree");
        }

        return parts.Count == 0 ? "other" : string.Join(" + ", parts);
    }
}
