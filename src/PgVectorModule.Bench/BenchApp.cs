using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Configuration;
using PgVectorModule.Lessons;
using Spectre.Console;

namespace PgVectorModule.Bench;

public sealed class BenchHostOptions
{
    public IAnsiConsole? Console { get; init; }
    public ModuleSettings? Settings { get; init; }
}

/// <summary>The benchmark tool's entry point: picks the command, runs it, and turns user-fixable failures into one sentence.</summary>
public static class BenchApp
{
    public const string DefaultOutput = "artifacts/bench";

    public static async Task<int> RunAsync(string[] args, BenchHostOptions? options = null, CancellationToken cancellationToken = default)
    {
        var console = options?.Console ?? AnsiConsole.Console;
        ModuleSettings? settings = options?.Settings;
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cancellation.Cancel();
        };
        System.Console.CancelKeyPress += onCancel;
        try
        {
            var parsed = BenchArguments.Parse(args);
            if (parsed.Command is null or "help" || parsed.Flag("help"))
            {
                Usage(console);
                return parsed.Command is null && args.Length > 0 ? ExitCodes.InvalidInput : ExitCodes.Success;
            }

            settings ??= ModuleSettings.Load();
            var context = new BenchContext(console, settings, parsed.Text("output") ?? DefaultOutput);
            context.EnsureOutputWritable();
            console.Write(new Rule($"[bold green]bench {Markup.Escape(parsed.Command)}[/]").LeftJustified().RuleStyle("green"));
            return parsed.Command switch
            {
                "eval" => await EvalCommand.RunAsync(context, parsed, cancellation.Token),
                "ingest" => await IngestCommand.RunAsync(context, parsed, cancellation.Token),
                "ann" => await AnnCommand.RunAsync(context, parsed, cancellation.Token),
                "scale" => await ScaleCommand.RunAsync(context, parsed, cancellation.Token),
                _ => throw new SetupException($"Unknown command '{parsed.Command}'; the commands are eval, ingest, ann and scale.", ExitCodes.InvalidInput),
            };
        }
        catch (Exception) when (cancellation.IsCancellationRequested)
        {
            console.MarkupLine("[yellow]Cancelled.[/]");
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when (UserProblems.Explain(e, settings) is { } problem)
        {
            console.MarkupLine($"[red]{Markup.Escape(problem.Message)}[/]");
            return problem.ExitCode;
        }
        finally
        {
            System.Console.CancelKeyPress -= onCancel;
        }
    }

    private static void Usage(IAnsiConsole console)
    {
        console.MarkupLine("[bold]Usage:[/] dotnet run -c Release --project src/PgVectorModule.Bench -- <command> [[options]]");
        console.MarkupLine("");
        console.MarkupLine("  [bold]eval[/] --dataset DIR [[--qrels FILE]] [[--limit-queries N]] [[--vector-weight W]] [[--cache DIR]] [[--throughput-sample N]] [[--sweep]]");
        console.MarkupLine("       retrieval quality (nDCG@10, Recall@100, MRR@10) and latency of keyword, vector and hybrid search on a BEIR folder;");
        console.MarkupLine("       --sweep also scores BM25's k1 and b and both fusions' settings over a grid");
        console.MarkupLine("  [bold]ingest[/] [[--rows N]] [[--per-row-sample N]] [[--batch N]] [[--seed S]]");
        console.MarkupLine("       rows/s of SaveChanges per row, AddRange per batch, multi-row INSERT and binary COPY; HNSW and IVFFlat build time and size");
        console.MarkupLine("  [bold]ann[/] [[--rows N]] [[--queries Q]] [[--seed S]] [[--clusters C]] [[--spread S]] [[--m M]] [[--ef-construction E]]");
        console.MarkupLine("      [[--vectors FILE | --texts FILE | --sdk-docs]] [[--cache DIR]]");
        console.MarkupLine("       recall@10, QPS, p50/p95 (LINQ, compiled and prepared, inside the server) of HNSW (ef_search) and IVFFlat (probes)");
        console.MarkupLine("       against the exact top 10, on a seeded mixture or on real embeddings: a file eval wrote (artifacts/cache/*.bin),");
        console.MarkupLine("       texts one per line, or the installed .NET SDK's API documentation, embedded once and cached");
        console.MarkupLine("  [bold]scale[/] [[--sdk-docs | --texts FILE]] [[--rows N]] [[--queries Q]] [[--seed S]] [[--cache DIR]]");
        console.MarkupLine("       p50/p95 of BM25, HNSW, weighted and RRF search on ~100,000 real passages, and how many documents the keyword leg scores");
        console.MarkupLine("");
        console.MarkupLine($"Every command works in its own schema of DATABASE_URL's database and writes JSON and CSV to --output (default {DefaultOutput}).");
    }
}
