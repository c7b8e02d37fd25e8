using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using PgVectorModule.Embeddings;

namespace PgVectorModule.Search;

/// <summary>
/// The searches' traces and metrics, through System.Diagnostics alone: the library takes no OpenTelemetry package. An
/// application that wants them adds <see cref="SourceName"/> to its tracer provider (AddSource) and meter provider
/// (AddMeter), and Npgsql's instrumentation (AddNpgsql) for the statements under the spans. Without a listener a span
/// is never created and a measurement never recorded, so the searches pay next to nothing for them.
/// </summary>
public static class SearchTelemetry
{
    /// <summary>The name of both the ActivitySource and the Meter.</summary>
    public const string SourceName = "PgVectorModule.Search";

    /// <summary>One search, either form: the parent of the stages below, and of Npgsql's span in the one-statement form.</summary>
    public const string SearchSpan = "search";

    /// <summary>The question embedded as a search query (<see cref="TextEmbedder.EmbedQueryAsync"/>).</summary>
    public const string EmbedSpan = "embed question";

    /// <summary>The staged form's nearest-neighbour statement, with its HNSW settings in the same round trip.</summary>
    public const string VectorLegSpan = "vector leg";

    /// <summary>The staged form's BM25 statement.</summary>
    public const string KeywordLegSpan = "keyword leg";

    /// <summary>The staged form's fusion of both legs, in C#, without the database.</summary>
    public const string FuseSpan = "fuse";

    /// <summary>A histogram of whole searches, in seconds, by method and form.</summary>
    public const string DurationMetric = "search.duration";

    /// <summary>Tag values of <see cref="FormTag"/>.</summary>
    public const string Staged = "staged";

    public const string OneStatement = "one statement";

    // Tags. Numbers stay numbers, so a trace viewer can filter on them (hnsw.ef_search > 100).
    public const string MethodTag = "search.method";
    public const string FormTag = "search.form";
    public const string CandidatesTag = "search.candidates";
    public const string LimitTag = "search.limit";
    public const string FilteredTag = "search.filtered";
    public const string SourceTag = "search.source";
    public const string QueryTag = "search.query";
    public const string QueryLengthTag = "search.query.length";
    public const string RowsTag = "search.rows";
    public const string EfSearchTag = "hnsw.ef_search";
    public const string IterativeScanTag = "hnsw.iterative_scan";
    public const string ModelTag = "embedding.model";
    public const string DimensionsTag = "embedding.dimensions";
    public const string FusedCandidatesTag = "fusion.candidates";
    public const string RrfKTag = "fusion.rrf_k";
    public const string VectorWeightTag = "fusion.vector_weight";
    public const string ErrorTypeTag = "error.type";

    /// <summary>
    /// The most of the question a span carries: enough to tell searches apart in a trace viewer. A question is user input
    /// that may be long or private, and traces are kept and shipped elsewhere; the full length is a tag of its own.
    /// </summary>
    public const int MaxQueryTagLength = 64;

    private static readonly string? Version = typeof(SearchTelemetry).Assembly.GetName().Version?.ToString();

    internal static readonly ActivitySource Source = new(SourceName, Version);

    private static readonly Meter Meter = new(SourceName, Version);

    // The advice gives exporters buckets that fit a search (1 ms to 250 ms) instead of the SDK's default, made for
    // milliseconds; an application's own view still wins.
    private static readonly Histogram<double> Duration = Meter.CreateHistogram(DurationMetric, "s",
        "How long a search took, the question's embedding included when the search embedded it.",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25] });

    /// <summary>
    /// Runs <paramref name="search"/> under a <see cref="SearchSpan"/> and records its duration. The span is current while
    /// it runs, so the stages' spans and Npgsql's become its children.
    /// </summary>
    internal static async Task<IReadOnlyList<SearchHit>> SearchAsync(string form, SearchMethod method, string query, int limit, string? source,
        HybridOptions options, Func<Activity?, Task<IReadOnlyList<SearchHit>>> search)
    {
        using var activity = Source.StartActivity(SearchSpan);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(MethodTag, method.ToString());
            activity.SetTag(FormTag, form);
            activity.SetTag(QueryTag, Shortened(query));
            activity.SetTag(QueryLengthTag, query.Length);
            activity.SetTag(LimitTag, limit);
            Filter(activity, source);
            if (method.IsFused())
            {
                activity.SetTag(CandidatesTag, options.Candidates);
            }
        }

        var started = Stopwatch.GetTimestamp();
        string? error = null;
        try
        {
            var hits = await search(activity);
            activity?.SetTag(RowsTag, hits.Count);
            return hits;
        }
        catch (Exception e)
        {
            error = e.GetType().FullName;
            Failed(activity, e);
            throw;
        }
        finally
        {
            var tags = new TagList { { MethodTag, method.ToString() }, { FormTag, form } };
            if (error is not null)
            {
                tags.Add(ErrorTypeTag, error);
            }

            Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        }
    }

    /// <summary>Whether a search is filtered, and by which source.</summary>
    internal static void Filter(Activity? activity, string? source)
    {
        activity?.SetTag(FilteredTag, source is not null);
        if (source is not null)
        {
            activity?.SetTag(SourceTag, source);
        }
    }

    /// <summary>The question cut to <see cref="MaxQueryTagLength"/> characters, never in the middle of a surrogate pair.</summary>
    internal static string Shortened(string query)
    {
        if (query.Length <= MaxQueryTagLength)
        {
            return query;
        }

        var cut = char.IsHighSurrogate(query[MaxQueryTagLength - 1]) ? MaxQueryTagLength - 1 : MaxQueryTagLength;
        return string.Concat(query.AsSpan(0, cut), "…");
    }

    /// <summary>The question embedded as a search query, under an <see cref="EmbedSpan"/>.</summary>
    internal static async Task<Vector> EmbedQuestionAsync(TextEmbedder embedder, string question, CancellationToken cancellationToken)
    {
        using var activity = Source.StartActivity(EmbedSpan);
        activity?.SetTag(ModelTag, embedder.Identity.Model);
        activity?.SetTag(DimensionsTag, embedder.Dimensions);
        try
        {
            return await embedder.EmbedQueryAsync(question, cancellationToken);
        }
        catch (Exception e)
        {
            Failed(activity, e);
            throw;
        }
    }

    /// <summary>The HNSW settings a statement ran under, as set_config reported them (ef_search, then the iterative scan if any).</summary>
    internal static void SettingsApplied(Activity? activity, IReadOnlyList<string> applied)
    {
        if (activity is null || applied.Count == 0)
        {
            return;
        }

        activity.SetTag(EfSearchTag, int.Parse(applied[0], CultureInfo.InvariantCulture));
        activity.SetTag(IterativeScanTag, applied.Count > 1 ? applied[1] : "off");
    }

    /// <summary>A stage that failed says so on its span: an error status and the exception as an event.</summary>
    internal static void Failed(Activity? activity, Exception e)
    {
        activity?.AddException(e);
        activity?.SetStatus(ActivityStatusCode.Error, e.Message);
    }
}
