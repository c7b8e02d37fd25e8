using System.Diagnostics;
using PgVectorModule.Embeddings;

namespace PgVectorModule.Search;

/// <summary>
/// The hybrid searches in stages, each with a span of its own (<see cref="SearchTelemetry"/>): embed the question, the
/// vector leg (<see cref="SearchSql.VectorLeg"/>, with the same HNSW settings as the fused statement), the keyword leg
/// (<see cref="SearchSql.Keyword"/> at the candidate count), then the fusion (<see cref="SearchSql.FuseLegs"/>: the one
/// statement's own fusion SQL, over the legs' ids and values sent back as arrays). It returns the same hits as
/// <see cref="HybridSearch"/>'s one statement; what it costs is two more round trips and the candidates on the wire. It
/// is the form to trace when the question is where a search's time goes; the one statement stays the form to serve
/// searches with.
/// </summary>
public static class StagedHybridSearch
{
    /// <summary>Embeds <paramref name="question"/> as a search query, then searches in stages.</summary>
    public static async Task<IReadOnlyList<SearchHit>> SearchAsync(NpgsqlDataSource dataSource, TextEmbedder embedder, SearchMethod method, string question,
        int limit = 5, string? source = null, HybridOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        ArgumentNullException.ThrowIfNull(question);
        return await SearchAsync(dataSource, method, question, embedding: null, embedder, limit, source, options, cancellationToken);
    }

    /// <summary>Searches in stages with the question's embedding already made (no embedding stage).</summary>
    public static async Task<IReadOnlyList<SearchHit>> SearchAsync(NpgsqlDataSource dataSource, SearchMethod method, string query, Vector embedding,
        int limit = 5, string? source = null, HybridOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        ArgumentNullException.ThrowIfNull(query);
        return await SearchAsync(dataSource, method, query, embedding, embedder: null, limit, source, options, cancellationToken);
    }

    private static Task<IReadOnlyList<SearchHit>> SearchAsync(NpgsqlDataSource dataSource, SearchMethod method, string query, Vector? embedding,
        TextEmbedder? embedder, int limit, string? source, HybridOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (!method.IsFused())
        {
            throw new ArgumentOutOfRangeException(nameof(method), method, "Only the hybrid searches have legs to stage; a keyword search is one statement.");
        }

        var settings = options ?? HybridOptions.Default;
        return SearchTelemetry.SearchAsync(SearchTelemetry.Staged, method, query, limit, source, settings, async _ =>
        {
            var vector = embedding ?? await SearchTelemetry.EmbedQuestionAsync(embedder!, query, cancellationToken);
            // Both legs on one connection, one after the other: a trace then reads as the time line of one search.
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            var nearest = await VectorLegAsync(connection, vector, source, settings, cancellationToken);
            var keyword = await KeywordLegAsync(connection, query, source, settings, cancellationToken);
            return await FuseAsync(connection, method, nearest, keyword, limit, settings, cancellationToken);
        });
    }

    /// <summary>
    /// The nearest @candidates by cosine distance, in one batch with the settings the fused statement runs under
    /// (<see cref="HybridSearch.VectorLegSettings"/>): the span carries the ef_search and iterative scan the server
    /// reports having set, and the rows that came back (fewer than the candidates asked for means the scan ran short).
    /// </summary>
    private static async Task<List<LegCandidate>> VectorLegAsync(NpgsqlConnection connection, Vector embedding, string? source, HybridOptions options,
        CancellationToken cancellationToken)
    {
        using var activity = SearchTelemetry.Source.StartActivity(SearchTelemetry.VectorLegSpan);
        activity?.SetTag(SearchTelemetry.CandidatesTag, options.Candidates);
        SearchTelemetry.Filter(activity, source);
        try
        {
            await using var batch = new NpgsqlBatch(connection);
            foreach (var setting in HybridSearch.VectorLegSettings(options.Candidates, source is not null))
            {
                batch.BatchCommands.Add(setting);
            }

            var leg = new NpgsqlBatchCommand(SearchSql.VectorLeg);
            leg.Parameters.AddWithValue("embedding", embedding);
            leg.Parameters.AddWithValue("candidates", options.Candidates);
            leg.Parameters.Add(Source(source));
            batch.BatchCommands.Add(leg);

            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            SearchTelemetry.SettingsApplied(activity, await HybridSearch.ReadSettingsAsync(reader, batch, cancellationToken));
            return await ReadCandidatesAsync(reader, valueColumn: 1, activity, cancellationToken);
        }
        catch (Exception e)
        {
            SearchTelemetry.Failed(activity, e);
            throw;
        }
    }

    /// <summary>The best @candidates by BM25: the keyword search with its limit at the candidate count.</summary>
    private static async Task<List<LegCandidate>> KeywordLegAsync(NpgsqlConnection connection, string query, string? source, HybridOptions options,
        CancellationToken cancellationToken)
    {
        using var activity = SearchTelemetry.Source.StartActivity(SearchTelemetry.KeywordLegSpan);
        activity?.SetTag(SearchTelemetry.CandidatesTag, options.Candidates);
        SearchTelemetry.Filter(activity, source);
        try
        {
            // jit off first, in the same batch (HybridSearch.JitOff says why).
            await using var batch = new NpgsqlBatch(connection) { BatchCommands = { HybridSearch.JitOff() } };
            var command = new NpgsqlBatchCommand(SearchSql.Keyword);
            command.Parameters.AddWithValue("query", query);
            command.Parameters.AddWithValue("limit", options.Candidates);
            command.Parameters.Add(Source(source));
            command.Parameters.AddWithValue("k1", options.Bm25.K1);
            command.Parameters.AddWithValue("b", options.Bm25.B);
            batch.BatchCommands.Add(command);
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            await HybridSearch.ReadSettingsAsync(reader, batch, cancellationToken);
            return await ReadCandidatesAsync(reader, valueColumn: 3, activity, cancellationToken);
        }
        catch (Exception e)
        {
            SearchTelemetry.Failed(activity, e);
            throw;
        }
    }

    /// <summary>A leg's rows: the id (first column) and the distance or score (<paramref name="valueColumn"/>), counted on the leg's span.</summary>
    private static async Task<List<LegCandidate>> ReadCandidatesAsync(NpgsqlDataReader reader, int valueColumn, Activity? activity,
        CancellationToken cancellationToken)
    {
        var rows = new List<LegCandidate>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new LegCandidate(reader.GetInt32(0), reader.GetDouble(valueColumn)));
        }

        activity?.SetTag(SearchTelemetry.RowsTag, rows.Count);
        return rows;
    }

    /// <summary>
    /// The fusion, timed on its own: the fused statement's own fusion SQL over the legs' ids and values, with the same
    /// fusion parameters bound the same way (<see cref="HybridSearch.AddFusionParameters"/>), so a change to fusion is
    /// made in one place.
    /// </summary>
    private static async Task<IReadOnlyList<SearchHit>> FuseAsync(NpgsqlConnection connection, SearchMethod method, List<LegCandidate> nearest,
        List<LegCandidate> keyword, int limit, HybridOptions options, CancellationToken cancellationToken)
    {
        using var activity = SearchTelemetry.Source.StartActivity(SearchTelemetry.FuseSpan);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(SearchTelemetry.MethodTag, method.ToString());
            activity.SetTag(SearchTelemetry.FusedCandidatesTag, nearest.Select(c => c.Id).Union(keyword.Select(c => c.Id)).Count());
            if (method == SearchMethod.ReciprocalRankFusion)
            {
                activity.SetTag(SearchTelemetry.RrfKTag, options.RrfK);
            }
            else
            {
                activity.SetTag(SearchTelemetry.VectorWeightTag, options.VectorWeight);
            }
        }

        try
        {
            await using var command = new NpgsqlCommand(SearchSql.FuseLegs(method), connection);
            command.Parameters.AddWithValue("vector_ids", nearest.Select(c => c.Id).ToArray());
            command.Parameters.AddWithValue("vector_distances", nearest.Select(c => c.Value).ToArray());
            command.Parameters.AddWithValue("keyword_ids", keyword.Select(c => c.Id).ToArray());
            command.Parameters.AddWithValue("keyword_scores", keyword.Select(c => c.Value).ToArray());
            command.Parameters.AddWithValue("limit", limit);
            command.Parameters.AddWithValue("candidates", options.Candidates);
            HybridSearch.AddFusionParameters(command.Parameters, method, options);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var hits = await HybridSearch.ReadHitsAsync(reader, method, cancellationToken);
            activity?.SetTag(SearchTelemetry.RowsTag, hits.Count);
            return hits;
        }
        catch (Exception e)
        {
            SearchTelemetry.Failed(activity, e);
            throw;
        }
    }

    private static NpgsqlParameter Source(string? source) =>
        new("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)source ?? DBNull.Value };
}
