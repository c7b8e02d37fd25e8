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

    /// <summary>EXPLAIN of the command EF Core sends for a LINQ query, on the context's own connection and settings.</summary>
    public static async Task<IReadOnlyList<string>> ExplainLinqAsync<T>(IQueryable<T> query, CancellationToken cancellationToken)
    {
        await using var command = query.CreateDbCommand();
        command.CommandText = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + command.CommandText;
        var opened = command.Connection!.State != System.Data.ConnectionState.Open;
        if (opened)
        {
            await command.Connection.OpenAsync(cancellationToken);
        }

        try
        {
            var lines = new List<string>();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                lines.Add(reader.GetString(0));
            }

            return lines;
        }
        finally
        {
            if (opened)
            {
                await command.Connection.CloseAsync();
            }
        }
    }
}
