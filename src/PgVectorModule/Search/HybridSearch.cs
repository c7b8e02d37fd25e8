using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Embeddings;

namespace PgVectorModule.Search;

/// <summary>Runs the shared search SQL (<see cref="SearchSql"/>) through a data source.</summary>
public static class HybridSearch
{
    /// <summary>pgvector's default hnsw.ef_search: an HNSW scan returns at most this many rows unless it is raised.</summary>
    public const int PgvectorDefaultEfSearch = 40;

    public static Task<IReadOnlyList<SearchHit>> KeywordAsync(NpgsqlDataSource dataSource, string query, int limit = 5, string? source = null,
        Bm25Parameters? bm25 = null, CancellationToken cancellationToken = default) =>
        SearchAsync(dataSource, SearchMethod.Keyword, query, embedding: null, limit, source, HybridOptions.Default with { Bm25 = bm25 ?? Bm25Parameters.Default }, cancellationToken);

    /// <summary>Every term required (websearch_to_tsquery), ranked by ts_rank_cd: the strict search a search box starts from.</summary>
    public static Task<IReadOnlyList<SearchHit>> KeywordAllTermsAsync(NpgsqlDataSource dataSource, string query, int limit = 5, string? source = null,
        CancellationToken cancellationToken = default) =>
        SearchAsync(dataSource, SearchMethod.KeywordAllTerms, query, embedding: null, limit, source, options: null, cancellationToken);

    public static Task<IReadOnlyList<SearchHit>> WeightedAsync(NpgsqlDataSource dataSource, string query, Vector embedding, int limit = 5,
        string? source = null, HybridOptions? options = null, CancellationToken cancellationToken = default) =>
        SearchAsync(dataSource, SearchMethod.Weighted, query, embedding, limit, source, options, cancellationToken);

    public static Task<IReadOnlyList<SearchHit>> ReciprocalRankFusionAsync(NpgsqlDataSource dataSource, string query, Vector embedding, int limit = 5,
        string? source = null, HybridOptions? options = null, CancellationToken cancellationToken = default) =>
        SearchAsync(dataSource, SearchMethod.ReciprocalRankFusion, query, embedding, limit, source, options, cancellationToken);

    /// <summary>
    /// Any of the searches by name; <paramref name="embedding"/> is needed by the fused ones only. One span
    /// (<see cref="SearchTelemetry.SearchSpan"/>) covers it, with Npgsql's span of the one round trip under it.
    /// </summary>
    public static Task<IReadOnlyList<SearchHit>> SearchAsync(NpgsqlDataSource dataSource, SearchMethod method, string query, Vector? embedding,
        int limit = 5, string? source = null, HybridOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(query);
        var settings = options ?? HybridOptions.Default;
        return SearchTelemetry.SearchAsync(SearchTelemetry.OneStatement, method, query, limit, source, settings,
            activity => RunAsync(dataSource, method, query, embedding, limit, source, settings, activity, cancellationToken));
    }

    /// <summary>
    /// The same, embedding <paramref name="question"/> as a search query first when the method needs it, inside the same
    /// span: the one-statement form to set beside <see cref="StagedHybridSearch"/>, stage for stage.
    /// </summary>
    public static Task<IReadOnlyList<SearchHit>> SearchAsync(NpgsqlDataSource dataSource, TextEmbedder embedder, SearchMethod method, string question,
        int limit = 5, string? source = null, HybridOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(embedder);
        ArgumentNullException.ThrowIfNull(question);
        var settings = options ?? HybridOptions.Default;
        var fused = method.IsFused();
        return SearchTelemetry.SearchAsync(SearchTelemetry.OneStatement, method, question, limit, source, settings, async activity =>
        {
            var embedding = fused ? await SearchTelemetry.EmbedQuestionAsync(embedder, question, cancellationToken) : null;
            return await RunAsync(dataSource, method, question, embedding, limit, source, settings, activity, cancellationToken);
        });
    }

    private static async Task<IReadOnlyList<SearchHit>> RunAsync(NpgsqlDataSource dataSource, SearchMethod method, string query, Vector? embedding,
        int limit, string? source, HybridOptions options, Activity? activity, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = Prepare(connection, method, query, embedding, limit, source, options, explain: null);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var applied = await ReadSettingsAsync(reader, batch, cancellationToken);
        if (method.IsFused())
        {
            SearchTelemetry.SettingsApplied(activity, applied);
        }

        return await ReadHitsAsync(reader, method, cancellationToken);
    }

    /// <summary>A search's rows as hits: id, title, source, score, and for the fused searches each leg's rank.</summary>
    internal static async Task<IReadOnlyList<SearchHit>> ReadHitsAsync(NpgsqlDataReader reader, SearchMethod method, CancellationToken cancellationToken)
    {
        var hits = new List<SearchHit>();
        var ranks = method.IsFused();
        while (await reader.ReadAsync(cancellationToken))
        {
            hits.Add(new SearchHit(
                reader.GetInt32(0),
                reader.GetString(1),
                await reader.IsDBNullAsync(2, cancellationToken) ? null : reader.GetString(2),
                Convert.ToDouble(reader.GetValue(3), CultureInfo.InvariantCulture),
                ranks && !await reader.IsDBNullAsync(4, cancellationToken) ? (int)reader.GetInt64(4) : null,
                ranks && !await reader.IsDBNullAsync(5, cancellationToken) ? (int)reader.GetInt64(5) : null));
        }

        return hits;
    }

    /// <summary>
    /// The plan of a search as it runs, with the same settings in the same transaction: EXPLAIN followed by
    /// <paramref name="explainOptions"/> (for example "ANALYZE, COSTS OFF"). Returns the plan's lines.
    /// </summary>
    public static async Task<IReadOnlyList<string>> ExplainAsync(NpgsqlDataSource dataSource, SearchMethod method, string query, Vector? embedding,
        int limit = 5, string? source = null, HybridOptions? options = null, string explainOptions = "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF",
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = Prepare(connection, method, query, embedding, limit, source, options ?? HybridOptions.Default, explainOptions);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        await ReadSettingsAsync(reader, batch, cancellationToken);
        var lines = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            lines.Add(reader.GetString(0));
        }

        return lines;
    }

    /// <summary>
    /// The settings a fused query's vector leg needs, for the transaction it runs in: an HNSW scan returns at most
    /// hnsw.ef_search rows, so it is raised to the candidate count (never lowered below what the session set), and under
    /// a filter the scan goes on past rows the filter drops (an iterative scan in relaxed order; the fused query ranks by
    /// distance again, so the order is exact). set_config(..., true) is SET LOCAL as a function: it takes a parameter,
    /// and in one batch it lasts until the batch's implicit transaction ends, so no setting outlives the search.
    /// <para>
    /// With them, enable_seqscan off (pgvector's README: "you can encourage the planner to use an index"): below about
    /// 5,000 rows of 384 dimensions the planner prices reading the whole table and sorting it under the HNSW scan that
    /// @candidates rows cost (its estimate charges a random page per row fetched), so the vector leg's plan would depend
    /// on the table's size; on a 3,600-row table it took the exact scan, at several times the HNSW leg's latency
    /// (docs/benchmarks.md). Off, an unfiltered vector leg is always the HNSW scan; a filter may still be answered from
    /// the B-tree on source (an index too), where the planner finds that cheaper. Every other table the statement reads
    /// has an index it uses, except bm25_corpus's few rows, which are read as before (no other path exists).
    /// </para>
    /// <para>
    /// And jit off: up to PostgreSQL 17, enable_seqscan off works by adding 10^10 to the cost of every sequential scan
    /// left in the plan (bm25_corpus's), which lifts the statement far above jit_above_cost; compiling it then took
    /// seconds, ten times the query itself. A search of a few milliseconds gains nothing from JIT.
    /// </para>
    /// </summary>
    public static IEnumerable<NpgsqlBatchCommand> VectorLegSettings(int candidates, bool filtered)
    {
        // One statement, one row: ef_search as set (the value ReadSettingsAsync reports first), then enable_seqscan and jit.
        var efSearch = new NpgsqlBatchCommand(
            "SELECT set_config('hnsw.ef_search', greatest(@ef_search, coalesce(current_setting('hnsw.ef_search', true)::int, 0))::text, true), " +
            "set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)");
        efSearch.Parameters.AddWithValue("ef_search", Math.Max(candidates, PgvectorDefaultEfSearch));
        yield return efSearch;
        if (filtered)
        {
            yield return new NpgsqlBatchCommand("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)");
        }
    }

    /// <summary>
    /// jit off for the batch's implicit transaction, for a keyword search (the fused ones get it with their vector leg's
    /// settings). PostgreSQL compiles a plan whose estimated cost passes jit_above_cost before it runs it: the keyword
    /// statement's estimate does once the table holds some thousands of documents, and compiling it then took about a
    /// second on the course machine (10,000 documents, PostgreSQL 15), for a search of milliseconds.
    /// </summary>
    internal static NpgsqlBatchCommand JitOff() => new("SELECT set_config('jit', 'off', true)");

    /// <summary>The SQL of a method.</summary>
    public static string Sql(SearchMethod method) => method switch
    {
        SearchMethod.Keyword => SearchSql.Keyword,
        SearchMethod.KeywordAllTerms => SearchSql.KeywordAllTerms,
        SearchMethod.Weighted => SearchSql.Weighted,
        SearchMethod.ReciprocalRankFusion => SearchSql.ReciprocalRankFusion,
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
    };

    private static NpgsqlBatch Prepare(NpgsqlConnection connection, SearchMethod method, string query, Vector? embedding, int limit, string? source,
        HybridOptions options, string? explain)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var fused = method.IsFused();
        if (fused && embedding is null)
        {
            throw new ArgumentNullException(nameof(embedding), $"{method} search needs the query's embedding.");
        }

        var batch = new NpgsqlBatch(connection);
        if (fused)
        {
            foreach (var setting in VectorLegSettings(options.Candidates, source is not null))
            {
                batch.BatchCommands.Add(setting);
            }
        }
        else
        {
            batch.BatchCommands.Add(JitOff());
        }

        var search = new NpgsqlBatchCommand(explain is null ? Sql(method) : $"EXPLAIN ({explain}) {Sql(method)}");
        var parameters = search.Parameters;
        parameters.AddWithValue("query", query);
        parameters.AddWithValue("limit", limit);
        parameters.Add(new NpgsqlParameter("source", NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)source ?? DBNull.Value });
        if (method != SearchMethod.KeywordAllTerms)
        {
            parameters.AddWithValue("k1", options.Bm25.K1);
            parameters.AddWithValue("b", options.Bm25.B);
        }

        if (fused)
        {
            parameters.AddWithValue("embedding", embedding!);
            parameters.AddWithValue("candidates", options.Candidates);
            AddFusionParameters(parameters, method, options);
        }

        batch.BatchCommands.Add(search);
        return batch;
    }

    /// <summary>The fusion's own parameters: the vector weight or RRF's k. The one statement and the staged fusion bind them here.</summary>
    internal static void AddFusionParameters(NpgsqlParameterCollection parameters, SearchMethod method, HybridOptions options)
    {
        switch (method)
        {
            case SearchMethod.Weighted:
                parameters.AddWithValue("vector_weight", options.VectorWeight);
                break;
            case SearchMethod.ReciprocalRankFusion:
                parameters.AddWithValue("k", options.RrfK);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, "Only the hybrid searches fuse two legs.");
        }
    }

    /// <summary>
    /// The settings' one-row results come first; the search's rows are the last result set. Returns what each setting
    /// was set to (set_config returns it): ef_search, then the iterative scan when there is a filter.
    /// </summary>
    internal static async Task<IReadOnlyList<string>> ReadSettingsAsync(NpgsqlDataReader reader, NpgsqlBatch batch, CancellationToken cancellationToken)
    {
        var applied = new List<string>();
        for (var skip = batch.BatchCommands.Count - 1; skip > 0; skip--)
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                applied.Add(reader.GetString(0));
            }

            await reader.NextResultAsync(cancellationToken);
        }

        return applied;
    }
}
