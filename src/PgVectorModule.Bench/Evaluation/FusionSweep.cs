using System.Globalization;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench.Evaluation;

/// <summary>
/// eval --sweep: the settings of BM25 and of both fusions over a grid, each scored on the same queries through the
/// library's SQL, so defaults are chosen from measurements on the judgments given (choose them on a train split only).
/// </summary>
public static class FusionSweep
{
    public static IReadOnlyList<(double K1, double B)> Bm25Grid { get; } =
        [.. from k1 in new[] { 0.9, 1.2, 1.5 } from b in new[] { 0.4, 0.75, 0.9 } select (k1, b)];

    public static IReadOnlyList<int> CandidateGrid { get; } = [40, 100, 200];
    public static IReadOnlyList<double> VectorWeightGrid { get; } = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    public static IReadOnlyList<int> RrfKGrid { get; } = [10, 20, 40, 60, 100];

    public static async Task<IReadOnlyList<SweepResult>> RunAsync(BenchContext context, NpgsqlDataSource dataSource, IReadOnlyList<BeirQuery> queries,
        IReadOnlyList<float[]> queryVectors, IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> judgments, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var depth = EvalCommand.Depth;
        var methods = new List<(string Family, string Setting, EvalCommand.Method Method)>();
        foreach (var (k1, b) in Bm25Grid)
        {
            var bm25 = new Bm25Parameters(k1, b);
            methods.Add(("bm25", $"k1 {k1:0.0#}, b {b:0.0#}", new($"bm25 k1={k1} b={b}", async (text, _, ct) =>
                Ids(await HybridSearch.KeywordAsync(dataSource, text, depth, bm25: bm25, cancellationToken: ct)))));
        }

        foreach (var candidates in CandidateGrid)
        {
            foreach (var weight in VectorWeightGrid)
            {
                var options = new HybridOptions { Candidates = candidates, VectorWeight = weight };
                methods.Add(("weighted", $"candidates {candidates}, vector weight {weight:0.0}", new($"weighted c={candidates} w={weight}", async (text, embedding, ct) =>
                    Ids(await HybridSearch.WeightedAsync(dataSource, text, embedding, depth, options: options, cancellationToken: ct)))));
            }

            foreach (var k in RrfKGrid)
            {
                var options = new HybridOptions { Candidates = candidates, RrfK = k };
                methods.Add(("rrf", $"candidates {candidates}, k {k}", new($"rrf c={candidates} k={k}", async (text, embedding, ct) =>
                    Ids(await HybridSearch.ReciprocalRankFusionAsync(dataSource, text, embedding, depth, options: options, cancellationToken: ct)))));
            }
        }

        var results = new List<SweepResult>();
        await context.Progress().StartAsync(async progress =>
        {
            foreach (var (family, setting, method) in methods)
            {
                var task = progress.AddTask($"sweep {method.Name}", maxValue: queries.Count);
                var scored = await EvalCommand.ScoreAsync(method, queries, queryVectors, judgments, task, cancellationToken);
                results.Add(new SweepResult(family, setting, scored.NdcgAt10, scored.RecallAt100, scored.MrrAt10, scored.P50Ms));
            }
        });

        foreach (var family in results.GroupBy(r => r.Family))
        {
            var best = family.MaxBy(r => r.NdcgAt10)!;
            var table = new Table().Title($"sweep: {family.Key} (best nDCG@10 marked)").AddColumns("setting", "nDCG@10", "Recall@100", "MRR@10", "p50 ms");
            foreach (var r in family)
            {
                var mark = r == best ? " *" : "";
                table.AddRow(r.Setting + mark, F(r.NdcgAt10), F(r.RecallAt100), F(r.MrrAt10), r.P50Ms.ToString("F2", CultureInfo.InvariantCulture));
            }

            context.Console.Write(table);
        }

        context.Saved(
            await ResultFiles.WriteJsonAsync(context.OutputFolder, "eval-sweep", results, cancellationToken),
            await ResultFiles.WriteCsvAsync(context.OutputFolder, "eval-sweep", ["family", "setting", "ndcg_at_10", "recall_at_100", "mrr_at_10", "p50_ms"],
                results.Select(r => (IReadOnlyList<object?>)[r.Family, r.Setting, r.NdcgAt10, r.RecallAt100, r.MrrAt10, r.P50Ms]), cancellationToken));
        return results;
    }

    private static string F(double value) => value.ToString("F3", CultureInfo.InvariantCulture);

    private static List<string> Ids(IReadOnlyList<SearchHit> hits) => hits.Select(h => h.Source!).ToList();
}

public sealed record SweepResult(string Family, string Setting, double NdcgAt10, double RecallAt100, double MrrAt10, double P50Ms);
