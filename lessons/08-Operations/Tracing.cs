using System.Diagnostics;
using System.Globalization;
using OpenTelemetry;
using OpenTelemetry.Trace;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson08;

public sealed partial class OperationsLesson
{
    // ---------------------------------------------------------------- tracing

    /// <summary>
    /// The lesson's own spans: one root over the traced searches. Its trace id also picks this lesson's spans out of
    /// everything else the process may trace at the same time.
    /// </summary>
    private static readonly ActivitySource LessonTraces = new("PgVectorModule.Lessons.Lesson08");

    /// <summary>Tags worth a column in class, with a short label each; the spans' other tags stay in the trace.</summary>
    private static readonly (string Tag, string Label)[] ShownTags =
    [
        (SearchTelemetry.RowsTag, "rows"), (SearchTelemetry.EfSearchTag, "ef_search"), (SearchTelemetry.IterativeScanTag, "iterative scan"),
        (SearchTelemetry.DimensionsTag, "dimensions"), (SearchTelemetry.FusedCandidatesTag, "candidates"),
    ];

    private static async Task TraceSearchAsync(Lesson lesson, TextEmbedder embedder, CancellationToken cancellationToken)
    {
        lesson.DeepDive("tracing", "Tracing: where a hybrid search's time goes",
            "OpenTelemetry collects spans from any ActivitySource you name: the library's (one per search, and per stage in the staged form) and Npgsql's (AddNpgsql: one per command). " +
            "The staged search runs each leg as a statement of its own, then the fusion; the one statement is one round trip, so one database span.");

        // Once untraced: the first search of a process also pays for JIT compilation and the statements' first planning.
        await StagedHybridSearch.SearchAsync(lesson.DataSource, embedder, SearchMethod.ReciprocalRankFusion, Question, cancellationToken: cancellationToken);

        var spans = new List<Activity>();
        var traceId = default(ActivityTraceId);
        using (var tracing = Sdk.CreateTracerProviderBuilder()
                   .AddSource(LessonTraces.Name, SearchTelemetry.SourceName)
                   .AddNpgsql()
                   .AddInMemoryExporter(spans)
                   .Build())
        {
            // Twice: the first pair also pays for compiling the tracing code paths; the table shows the second.
            for (var run = 0; run < 2; run++)
            {
                using var root = LessonTraces.StartActivity("two searches");
                traceId = root!.TraceId;
                await StagedHybridSearch.SearchAsync(lesson.DataSource, embedder, SearchMethod.ReciprocalRankFusion, Question, cancellationToken: cancellationToken);
                await HybridSearch.SearchAsync(lesson.DataSource, embedder, SearchMethod.ReciprocalRankFusion, Question, cancellationToken: cancellationToken);
            }
        }

        var trace = spans.Where(s => s.TraceId == traceId).ToList();
        var rows = new List<(Activity Span, int Depth)>();
        void Walk(Activity span, int depth)
        {
            rows.Add((span, depth));
            foreach (var child in trace.Where(s => s.ParentSpanId == span.SpanId).OrderBy(s => s.StartTimeUtc))
            {
                Walk(child, depth + 1);
            }
        }

        Walk(trace.Single(s => s.Source.Name == LessonTraces.Name), 0);
        // Npgsql names its spans after the database; the parent column says which statement it was.
        string Name(Activity span) =>
            span.Source.Name == "Npgsql" ? "Npgsql command"
            : span.GetTagItem(SearchTelemetry.FormTag) is string form ? $"{span.DisplayName} ({form})"
            : span.DisplayName;
        lesson.Table(rows,
            ("span", r => new string(' ', 2 * r.Depth) + Name(r.Span)),
            ("ms", r => r.Span.Duration.TotalMilliseconds.ToString("N1", CultureInfo.InvariantCulture)),
            ("parent", r => trace.FirstOrDefault(s => s.SpanId == r.Span.ParentSpanId) is { } parent ? Name(parent) : ""),
            ("tags", r => string.Join(", ", ShownTags.Where(t => r.Span.GetTagItem(t.Tag) is not null).Select(t => $"{t.Label} {r.Span.GetTagItem(t.Tag)}"))));

        var searches = trace.Where(s => s.DisplayName == SearchTelemetry.SearchSpan).ToDictionary(s => (string)s.GetTagItem(SearchTelemetry.FormTag)!);
        double Ms(Activity parent, string name) =>
            trace.Single(s => s.ParentSpanId == parent.SpanId && s.DisplayName == name).Duration.TotalMilliseconds;
        int DatabaseSpansUnder(Activity parent) =>
            trace.Count(s => s.Source.Name == "Npgsql" && trace.Any(p => p.SpanId == s.ParentSpanId && p.ParentSpanId == parent.SpanId));
        var staged = searches[SearchTelemetry.Staged];
        var oneStatement = searches[SearchTelemetry.OneStatement];
        lesson.Say(string.Create(CultureInfo.InvariantCulture,
            $"Staged search: {staged.Duration.TotalMilliseconds:N1} ms = embed {Ms(staged, SearchTelemetry.EmbedSpan):N1} + vector leg {Ms(staged, SearchTelemetry.VectorLegSpan):N1} + " +
            $"keyword leg {Ms(staged, SearchTelemetry.KeywordLegSpan):N1} + fuse {Ms(staged, SearchTelemetry.FuseSpan):N2} ms; one statement: {oneStatement.Duration.TotalMilliseconds:N1} ms."));
        lesson.Say($"Npgsql's command spans: {DatabaseSpansUnder(staged)} under the staged search's stages (one per leg and one for the fusion), " +
                   $"{trace.Count(s => s.Source.Name == "Npgsql" && s.ParentSpanId == oneStatement.SpanId)} right under the one statement's search span.");
    }
}
