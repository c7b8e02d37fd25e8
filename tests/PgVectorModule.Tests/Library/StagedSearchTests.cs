using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// Every third document of the sample corpus (60 of 180, as lessons 08 and 09 load it: real text, and quicker to embed
/// than all of it), embedded by the local model and indexed as the lessons do it.
/// </summary>
public sealed class SampleCorpusSearch(PostgresServer server) : LoadedCorpus(server, SchemaName, Documents)
{
    public const string SchemaName = "staged_search";

    public static IReadOnlyList<CorpusDocument> Documents { get; } = SampleCorpus.All.Where((_, i) => i % 3 == 0).ToList();

    public NpgsqlConnectionStringBuilder ConnectionString => Database.ConnectionString;
}

/// <summary>
/// The staged hybrid search against the one statement on the sample corpus, and the spans and measurements both forms
/// emit, read back through OpenTelemetry's in-memory exporters. Other test classes run searches at the same time, so every
/// trace is picked out by the id of a span the test started, and measurements are compared before and after.
/// </summary>
[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class StagedSearchTests(SampleCorpusSearch corpus) : IClassFixture<SampleCorpusSearch>
{
    private static readonly ActivitySource TestSource = new("PgVectorModule.Tests.StagedSearch");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Paraphrases, exact terms, a filter that changes the answer, and a question nothing answers (queries from corpus-queries.md).</summary>
    public static readonly string[] Questions =
    [
        "automatic failover to a standby replica",
        "42P01",
        "error 53300",
        "HNSW graph index for approximate nearest neighbor search",
        "reciprocal rank fusion of keyword and vector results",
        "sourdough bread starter recipe",
    ];

    [Theory]
    [InlineData(SearchMethod.ReciprocalRankFusion, null)]
    [InlineData(SearchMethod.ReciprocalRankFusion, "docs")]
    [InlineData(SearchMethod.Weighted, null)]
    [InlineData(SearchMethod.Weighted, "research")]
    public async Task Staged_and_one_statement_return_the_same_hits_to_the_last_bit_ties_included(SearchMethod method, string? source)
    {
        var ties = 0;
        var compared = 0;
        foreach (var question in Questions)
        {
            var embedding = await corpus.Embedder.EmbedQueryAsync(question, Ct);
            // The default candidates with the usual top 5; then fewer candidates than a source has documents, with the
            // whole fused list (up to twice the candidates), so documents only one leg has, and the ties among them, count too.
            foreach (var (options, limit) in new[] { (HybridOptions.Default, 5), (HybridOptions.Default with { Candidates = 12 }, 24), (HybridOptions.Default with { Candidates = 5 }, 10) })
            {
                var one = await HybridSearch.SearchAsync(corpus.DataSource, method, question, embedding, limit, source, options, Ct);
                var staged = await StagedHybridSearch.SearchAsync(corpus.DataSource, method, question, embedding, limit, source, options, Ct);

                Assert.Equal(one, staged);
                Assert.NotEmpty(staged);
                Assert.All(staged, h => Assert.True(source is null || h.Source == source, $"{h.Title} is from {h.Source}"));
                compared += staged.Count;
                ties += staged.Zip(staged.Skip(1)).Count(p => p.First.Score == p.Second.Score);
            }
        }

        // The tie-break (score descending, then id) was exercised, not only distinct scores.
        Assert.True(ties > 0, $"no equal scores among {compared} hits");
    }

    [Fact]
    public async Task The_embedding_forms_agree_with_the_vector_forms()
    {
        const string question = "how do I keep a search service running when a database server fails?";
        var embedding = await corpus.Embedder.EmbedQueryAsync(question, Ct);

        var expected = await HybridSearch.ReciprocalRankFusionAsync(corpus.DataSource, question, embedding, cancellationToken: Ct);

        Assert.Equal(expected, await HybridSearch.SearchAsync(corpus.DataSource, corpus.Embedder, SearchMethod.ReciprocalRankFusion, question, cancellationToken: Ct));
        Assert.Equal(expected, await StagedHybridSearch.SearchAsync(corpus.DataSource, corpus.Embedder, SearchMethod.ReciprocalRankFusion, question, cancellationToken: Ct));
    }

    [Fact]
    public async Task Only_the_hybrid_searches_have_legs_to_stage()
    {
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            StagedHybridSearch.SearchAsync(corpus.DataSource, SearchMethod.Keyword, "42P01", new Vector(new float[corpus.Embedder.Dimensions]), cancellationToken: Ct));
        Assert.Equal("method", error.ParamName);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("docs")]
    public async Task A_staged_search_is_one_search_span_over_embed_vector_leg_keyword_leg_and_fuse_with_Npgsql_statements_under_the_legs(string? source)
    {
        const string question = "reciprocal rank fusion of keyword and vector results";
        var spans = new List<Activity>();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(SearchTelemetry.SourceName, TestSource.Name).AddNpgsql().AddInMemoryExporter(spans).Build();
        // A connection in the pool first: a new one would add Npgsql's CONNECT span (the next test is about that).
        await WarmAsync(corpus.DataSource);

        var (trace, hits) = await TracedAsync(() => StagedHybridSearch.SearchAsync(corpus.DataSource, corpus.Embedder, SearchMethod.ReciprocalRankFusion, question, source: source, cancellationToken: Ct));
        tracing.ForceFlush();

        var inTrace = spans.Where(s => s.TraceId == trace.TraceId).ToList();
        var search = Assert.Single(inTrace, s => s.ParentSpanId == trace.SpanId);
        Assert.Equal((SearchTelemetry.SourceName, SearchTelemetry.SearchSpan), (search.Source.Name, search.DisplayName));
        Assert.Equal([SearchTelemetry.EmbedSpan, SearchTelemetry.VectorLegSpan, SearchTelemetry.KeywordLegSpan, SearchTelemetry.FuseSpan],
            Children(inTrace, search).Select(s => s.DisplayName));
        Assert.All(Children(inTrace, search), s => Assert.Equal(SearchTelemetry.SourceName, s.Source.Name));
        var (embed, vectorLeg, keywordLeg, fuse) = (Child(inTrace, search, 0), Child(inTrace, search, 1), Child(inTrace, search, 2), Child(inTrace, search, 3));

        // Npgsql's spans: one statement's under each leg and under the fusion, none under embedding, nothing else in the trace.
        var vectorStatement = Assert.Single(Children(inTrace, vectorLeg));
        var keywordStatement = Assert.Single(Children(inTrace, keywordLeg));
        var fuseStatement = Assert.Single(Children(inTrace, fuse));
        Assert.Empty(Children(inTrace, embed));
        Assert.Empty(Children(inTrace, vectorStatement));
        Assert.Empty(Children(inTrace, keywordStatement));
        Assert.Empty(Children(inTrace, fuseStatement));
        Assert.Equal(1 + 5 + 3, inTrace.Count); // the test's own span, the search's five, Npgsql's three: nothing else
        Assert.All([vectorStatement, keywordStatement, fuseStatement], s => Assert.Equal(("Npgsql", ActivityKind.Client), (s.Source.Name, s.Kind)));
        // The fusion is the one statement's own SQL over the legs' arrays: one fusion, written once.
        Assert.Equal(SearchSql.FuseLegs(SearchMethod.ReciprocalRankFusion).Trim(), Tag<string>(fuseStatement, "db.query.text").Trim());
        var vectorSql = Tag<string>(vectorStatement, "db.query.text");
        Assert.Contains("set_config('hnsw.ef_search'", vectorSql, StringComparison.Ordinal);
        Assert.Contains(SearchSql.VectorLeg.Trim(), vectorSql, StringComparison.Ordinal);
        Assert.Equal(source is not null, vectorSql.Contains("hnsw.iterative_scan", StringComparison.Ordinal));
        // The keyword leg: jit off, then the library's keyword statement (a plan costed over jit_above_cost is compiled first).
        var keywordSql = Tag<string>(keywordStatement, "db.query.text");
        Assert.StartsWith("SELECT set_config('jit', 'off', true);", keywordSql, StringComparison.Ordinal);
        Assert.EndsWith(SearchSql.Keyword.Trim(), keywordSql.Trim(), StringComparison.Ordinal);

        // Tags that teach.
        Assert.Equal("ReciprocalRankFusion", Tag<string>(search, SearchTelemetry.MethodTag));
        Assert.Equal(SearchTelemetry.Staged, Tag<string>(search, SearchTelemetry.FormTag));
        Assert.Equal(question, Tag<string>(search, SearchTelemetry.QueryTag));
        Assert.All([search, vectorLeg, keywordLeg], s =>
        {
            Assert.Equal(source is not null, Tag<bool>(s, SearchTelemetry.FilteredTag));
            Assert.Equal(source, s.GetTagItem(SearchTelemetry.SourceTag));
        });
        Assert.Equal(HybridOptions.DefaultCandidates, Tag<int>(search, SearchTelemetry.CandidatesTag));
        Assert.Equal(hits.Count, Tag<int>(search, SearchTelemetry.RowsTag));
        Assert.Equal(corpus.Embedder.Identity.Model, Tag<string>(embed, SearchTelemetry.ModelTag));
        Assert.Equal(corpus.Embedder.Dimensions, Tag<int>(embed, SearchTelemetry.DimensionsTag));
        Assert.Equal(HybridOptions.DefaultCandidates, Tag<int>(vectorLeg, SearchTelemetry.EfSearchTag));
        Assert.Equal(source is null ? "off" : "relaxed_order", Tag<string>(vectorLeg, SearchTelemetry.IterativeScanTag));
        // Fewer documents than candidates: the leg returns all of them, and under the filter the iterative scan finds every one of the source's.
        Assert.Equal(source is null ? SampleCorpusSearch.Documents.Count : SampleCorpusSearch.Documents.Count(d => d.Source == source), Tag<int>(vectorLeg, SearchTelemetry.RowsTag));
        var keywordRows = Tag<int>(keywordLeg, SearchTelemetry.RowsTag);
        Assert.InRange(keywordRows, 1, HybridOptions.DefaultCandidates);
        Assert.Equal(HybridOptions.DefaultRrfK, Tag<int>(fuse, SearchTelemetry.RrfKTag));
        Assert.InRange(Tag<int>(fuse, SearchTelemetry.FusedCandidatesTag), Math.Max(keywordRows, Tag<int>(vectorLeg, SearchTelemetry.RowsTag)),
            keywordRows + Tag<int>(vectorLeg, SearchTelemetry.RowsTag));
        Assert.Equal(5, Tag<int>(fuse, SearchTelemetry.RowsTag));
        Assert.All([search, embed, vectorLeg, keywordLeg, vectorStatement, keywordStatement], s => Assert.True(s.Duration > TimeSpan.Zero, s.DisplayName));
        Assert.All(inTrace, s => Assert.Equal(ActivityStatusCode.Unset, s.Status));
    }

    [Fact]
    public async Task On_a_new_data_source_the_first_search_opens_a_connection_under_its_span_and_the_next_does_not()
    {
        var spans = new List<Activity>();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(SearchTelemetry.SourceName, TestSource.Name).AddNpgsql().AddInMemoryExporter(spans).Build();
        await using var fresh = ModuleDataSource.Create(corpus.ConnectionString, SampleCorpusSearch.SchemaName);

        var (first, _) = await TracedAsync(() => StagedHybridSearch.SearchAsync(fresh, corpus.Embedder, SearchMethod.Weighted, "42P01", cancellationToken: Ct));
        var (second, _) = await TracedAsync(() => StagedHybridSearch.SearchAsync(fresh, corpus.Embedder, SearchMethod.Weighted, "42P01", cancellationToken: Ct));
        tracing.ForceFlush();

        IEnumerable<string> StagesOf(Activity trace)
        {
            var inTrace = spans.Where(s => s.TraceId == trace.TraceId).ToList();
            return Children(inTrace, Assert.Single(inTrace, s => s.ParentSpanId == trace.SpanId)).Select(s => s.Source.Name == "Npgsql" ? "Npgsql " + s.DisplayName.Split(' ')[0] : s.DisplayName);
        }

        Assert.Equal([SearchTelemetry.EmbedSpan, "Npgsql CONNECT", SearchTelemetry.VectorLegSpan, SearchTelemetry.KeywordLegSpan, SearchTelemetry.FuseSpan], StagesOf(first));
        Assert.Equal([SearchTelemetry.EmbedSpan, SearchTelemetry.VectorLegSpan, SearchTelemetry.KeywordLegSpan, SearchTelemetry.FuseSpan], StagesOf(second));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_one_statement_search_is_one_span_over_one_Npgsql_batch_after_the_embedding_when_it_embeds(bool embeds)
    {
        const string question = "error 53300";
        var spans = new List<Activity>();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(SearchTelemetry.SourceName, TestSource.Name).AddNpgsql().AddInMemoryExporter(spans).Build();
        await WarmAsync(corpus.DataSource);
        var embedding = await corpus.Embedder.EmbedQueryAsync(question, Ct);

        var (trace, hits) = await TracedAsync(() => embeds
            ? HybridSearch.SearchAsync(corpus.DataSource, corpus.Embedder, SearchMethod.Weighted, question, source: "blog", cancellationToken: Ct)
            : HybridSearch.SearchAsync(corpus.DataSource, SearchMethod.Weighted, question, embedding, source: "blog", cancellationToken: Ct));
        tracing.ForceFlush();

        var inTrace = spans.Where(s => s.TraceId == trace.TraceId).ToList();
        var search = Assert.Single(inTrace, s => s.ParentSpanId == trace.SpanId);
        var children = Children(inTrace, search).ToList();
        string[] sources = embeds ? [SearchTelemetry.SourceName, "Npgsql"] : ["Npgsql"];
        Assert.Equal(sources, children.Select(s => s.Source.Name));
        var batch = children[^1];
        Assert.Contains(SearchSql.Weighted.Trim(), Tag<string>(batch, "db.query.text"), StringComparison.Ordinal);
        Assert.Empty(Children(inTrace, batch));
        Assert.Equal(SearchTelemetry.OneStatement, Tag<string>(search, SearchTelemetry.FormTag));
        Assert.Equal("Weighted", Tag<string>(search, SearchTelemetry.MethodTag));
        Assert.Equal(HybridOptions.DefaultCandidates, Tag<int>(search, SearchTelemetry.EfSearchTag));
        Assert.Equal("relaxed_order", Tag<string>(search, SearchTelemetry.IterativeScanTag));
        Assert.True(Tag<bool>(search, SearchTelemetry.FilteredTag));
        Assert.Equal("blog", Tag<string>(search, SearchTelemetry.SourceTag));
        Assert.Equal(hits.Count, Tag<int>(search, SearchTelemetry.RowsTag));
        Assert.Equal(5, hits.Count);
    }

    [Fact]
    public async Task A_long_question_is_cut_to_64_characters_on_the_span_and_its_length_kept()
    {
        var question = string.Concat(Enumerable.Repeat("replica failover standby ", 40));
        var spans = new List<Activity>();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(SearchTelemetry.SourceName, TestSource.Name).AddInMemoryExporter(spans).Build();

        var (trace, _) = await TracedAsync(() => HybridSearch.KeywordAsync(corpus.DataSource, question, cancellationToken: Ct));
        tracing.ForceFlush();

        var search = Assert.Single(spans, s => s.TraceId == trace.TraceId && s.ParentSpanId == trace.SpanId);
        Assert.Equal(question[..SearchTelemetry.MaxQueryTagLength] + "…", Tag<string>(search, SearchTelemetry.QueryTag));
        Assert.Equal(question.Length, Tag<int>(search, SearchTelemetry.QueryLengthTag));
        Assert.False(Tag<bool>(search, SearchTelemetry.FilteredTag));
        Assert.Null(search.GetTagItem(SearchTelemetry.SourceTag));
    }

    [Fact]
    public async Task A_search_that_fails_marks_its_span_and_the_stage_that_failed_and_is_still_measured()
    {
        var spans = new List<Activity>();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(SearchTelemetry.SourceName, TestSource.Name).AddNpgsql().AddInMemoryExporter(spans).Build();
        var metrics = new List<Metric>();
        using var meters = Sdk.CreateMeterProviderBuilder().AddMeter(SearchTelemetry.SourceName).AddInMemoryExporter(metrics).Build();
        // A vector of the wrong dimension: the server refuses the vector leg (22000, different vector dimensions).
        var wrong = new Vector(new float[corpus.Embedder.Dimensions + 1]);
        Activity? trace;
        using (trace = TestSource.StartActivity("test"))
        {
            await Assert.ThrowsAsync<PostgresException>(() => StagedHybridSearch.SearchAsync(corpus.DataSource, SearchMethod.ReciprocalRankFusion, "42P01", wrong, cancellationToken: Ct));
        }

        tracing.ForceFlush();
        meters.ForceFlush();

        var inTrace = spans.Where(s => s.TraceId == trace!.TraceId).ToList();
        var search = Assert.Single(inTrace, s => s.DisplayName == SearchTelemetry.SearchSpan);
        var vectorLeg = Assert.Single(Children(inTrace, search));
        Assert.Equal(SearchTelemetry.VectorLegSpan, vectorLeg.DisplayName);
        Assert.All([search, vectorLeg], s => Assert.Equal(ActivityStatusCode.Error, s.Status));
        Assert.Contains(vectorLeg.Events, e => e.Name == "exception");
        Assert.Contains(Points(metrics), p => Tags(p).GetValueOrDefault(SearchTelemetry.ErrorTypeTag) == typeof(PostgresException).FullName
                                              && Tags(p)[SearchTelemetry.FormTag] == SearchTelemetry.Staged);
    }

    [Fact]
    public async Task Every_search_lands_in_the_duration_histogram_by_method_and_form_in_buckets_from_1_ms_to_250_ms()
    {
        var metrics = new List<Metric>();
        using var meters = Sdk.CreateMeterProviderBuilder().AddMeter(SearchTelemetry.SourceName).AddInMemoryExporter(metrics).Build();
        const string question = "42P01";

        for (var i = 0; i < 3; i++)
        {
            await StagedHybridSearch.SearchAsync(corpus.DataSource, corpus.Embedder, SearchMethod.ReciprocalRankFusion, question, cancellationToken: Ct);
        }

        await HybridSearch.SearchAsync(corpus.DataSource, corpus.Embedder, SearchMethod.ReciprocalRankFusion, question, cancellationToken: Ct);
        meters.ForceFlush();

        var metric = Assert.Single(metrics, m => m.Name == SearchTelemetry.DurationMetric);
        Assert.Equal(("s", MetricType.Histogram), (metric.Unit, metric.MetricType));
        MetricPoint Series(string form) => Assert.Single(Points([metric]), p =>
            Tags(p)[SearchTelemetry.FormTag] == form && Tags(p)[SearchTelemetry.MethodTag] == "ReciprocalRankFusion" && !Tags(p).ContainsKey(SearchTelemetry.ErrorTypeTag));
        // Other classes search at the same time and are measured too: at least this test's searches are in each series.
        var staged = Series(SearchTelemetry.Staged);
        var oneStatement = Series(SearchTelemetry.OneStatement);
        Assert.InRange(staged.GetHistogramCount(), 3, long.MaxValue);
        Assert.InRange(oneStatement.GetHistogramCount(), 1, long.MaxValue);
        Assert.True(staged.GetHistogramSum() > 0);
        var bounds = new List<double>();
        foreach (var bucket in staged.GetHistogramBuckets())
        {
            bounds.Add(bucket.ExplicitBound);
        }

        Assert.Equal([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, double.PositiveInfinity], bounds);
    }

    private static async Task WarmAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("SELECT 1");
        await command.ExecuteScalarAsync(Ct);
    }

    /// <summary>Runs a search under a span of the test's own, whose trace id picks this search's spans out of everyone's.</summary>
    private static async Task<(Activity Trace, IReadOnlyList<SearchHit> Hits)> TracedAsync(Func<Task<IReadOnlyList<SearchHit>>> search)
    {
        using var trace = TestSource.StartActivity("test") ?? throw new InvalidOperationException("No listener for the test's spans.");
        var hits = await search();
        return (trace, hits);
    }

    private static IEnumerable<Activity> Children(List<Activity> spans, Activity parent) =>
        spans.Where(s => s.ParentSpanId == parent.SpanId).OrderBy(s => s.StartTimeUtc);

    private static Activity Child(List<Activity> spans, Activity parent, int index) => Children(spans, parent).ElementAt(index);

    private static T Tag<T>(Activity activity, string name) =>
        activity.GetTagItem(name) is T value ? value : throw new Xunit.Sdk.XunitException($"{activity.DisplayName} has no {typeof(T).Name} tag {name}.");

    private static IEnumerable<MetricPoint> Points(IEnumerable<Metric> metrics)
    {
        var points = new List<MetricPoint>();
        foreach (var metric in metrics.Where(m => m.Name == SearchTelemetry.DurationMetric))
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                points.Add(point);
            }
        }

        return points;
    }

    private static Dictionary<string, string?> Tags(MetricPoint point)
    {
        var tags = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var tag in point.Tags)
        {
            tags[tag.Key] = tag.Value?.ToString();
        }

        return tags;
    }
}
