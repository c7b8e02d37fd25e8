using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Data;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Performance: the hot path (compiled query, prepared statements).</summary>
public sealed partial class ProductionLesson
{
    /// <summary>Searches per way in the hot-path step: enough for a steady median.</summary>
    public const int HotPathSearches = 100;

    private static async Task HotPathAsync(Lesson lesson, VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("hot-path", "The hot path: compiled query, prepared statement",
            "The same nearest-neighbour SQL three ways. EF.CompileAsyncQuery skips a LINQ query's per-call cache lookup; " +
            "a prepared statement skips the server's parse and plan (with Max Auto Prepare, after 5 runs).");
        lesson.Code("""
            // once, for the application's lifetime
            static readonly Func<SearchDbContext, Vector, int, IAsyncEnumerable<VectorHit>> Nearest =
                EF.CompileAsyncQuery((SearchDbContext db, Vector q, int k) => db.Documents
                    .Select(d => new { d.Id, d.Title, d.Source, Distance = d.Embedding!.CosineDistance(q) })
                    .OrderBy(h => h.Distance).Take(k)
                    .Select(h => new VectorHit(h.Id, h.Title, h.Source, h.Distance)));
            // connection string: ...;Max Auto Prepare=20
            """);
        var preparing = lesson.Settings.ConnectionString();
        preparing.MaxAutoPrepare = 20;
        await using var preparingSource = ModuleDataSource.Create(preparing, lesson.Schema);
        await using var linqDb = new SearchDbContext(SearchDbContext.CreateOptions(lesson.DataSource), shape);
        await using var compiledDb = new SearchDbContext(SearchDbContext.CreateOptions(lesson.DataSource), shape);
        await using var preparedDb = new SearchDbContext(SearchDbContext.CreateOptions(preparingSource), shape);
        var ways = new (string Name, SearchDbContext Db, Func<SearchDbContext, IAsyncEnumerable<VectorHit>> Search)[]
        {
            ("LINQ (VectorSearch.Nearest)", linqDb, db => VectorSearch.Nearest(db, question, limit: 5).AsAsyncEnumerable()),
            ("compiled", compiledDb, db => VectorSearch.NearestCosineCompiled(db, question, 5)),
            ("compiled + Max Auto Prepare", preparedDb, db => VectorSearch.NearestCosineCompiled(db, question, 5)),
        };
        var rows = new List<(string Way, double P50, string Top)>();
        foreach (var (name, db, search) in ways)
        {
            // One open connection per way, warmed past the 5 runs after which Npgsql prepares.
            await db.Database.OpenConnectionAsync(cancellationToken);
            for (var i = 0; i < 10; i++)
            {
                await search(db).ToListAsync(cancellationToken);
            }

            var timings = new List<double>(HotPathSearches);
            List<VectorHit> hits = [];
            for (var i = 0; i < HotPathSearches; i++)
            {
                var watch = Stopwatch.StartNew();
                hits = await search(db).ToListAsync(cancellationToken);
                timings.Add(watch.Elapsed.TotalMilliseconds);
            }

            timings.Sort();
            rows.Add((name, timings[timings.Count / 2], string.Join(", ", hits.Select(h => h.Id))));
        }

        lesson.Table(rows, ("way", r => r.Way), ($"median of {HotPathSearches} searches, ms", r => r.P50.ToString("F3", CultureInfo.InvariantCulture)), ("ids found", r => r.Top));
        lesson.Say(rows.Select(r => r.Top).Distinct().Count() == 1
            ? ("The same rows all three ways: only the work around the SQL differs (docs/benchmarks.md measures it at 100,000 rows).", Tone.Key)
            : ("The three ways found different rows.", Tone.Warning));
    }
}
