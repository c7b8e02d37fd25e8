using System.CommandLine.Help;
using PgVectorModule.Bench.Ann;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Hosting;
using PgVectorModule.Problems;
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
    public static async Task<int> RunAsync(string[] args, BenchHostOptions? options = null, CancellationToken cancellationToken = default)
    {
        var console = options?.Console ?? AnsiConsole.Console;
        ModuleSettings? settings = options?.Settings;
        // Ctrl+C, SIGTERM and SIGHUP stop the run the same way: it unwinds, and nothing half-loaded is committed.
        return await ConsoleHost.RunAsync(console, () => settings, async cancellation =>
            {
                var commandLine = BenchCommandLine.Create();
                // No arguments, "help" or --help: the usage, and success; "help ann" is ann's.
                if (args.Length == 0 || args[0] == "help")
                {
                    var command = args.Length > 1 && commandLine.Subcommands.Any(c => c.Name == args[1]) ? args[1] : null;
                    console.Write(new Text(BenchCommandLine.Help(commandLine, command, console.Profile.Width)));
                    return ExitCodes.Success;
                }

                var parsed = commandLine.Parse(args);
                if (BenchCommandLine.Problem(parsed) is { } problem)
                {
                    throw problem;
                }

                if (parsed.Action is HelpAction)
                {
                    var command = parsed.CommandResult.Command == commandLine ? null : parsed.CommandResult.Command.Name;
                    console.Write(new Text(BenchCommandLine.Help(commandLine, command, console.Profile.Width)));
                    return ExitCodes.Success;
                }

                var name = parsed.CommandResult.Command.Name;
                settings ??= ModuleSettings.Load();
                if (name == LearnersCommand.Name)
                {
                    // Not a benchmark: nothing to write to --output, no schema of its own.
                    return await LearnersCommand.RunAsync(console, settings, parsed, cancellation);
                }

                var context = new BenchContext(console, settings, parsed.GetValue<string>(BenchCommandLine.OutputOption) ?? BenchCommandLine.DefaultOutput);
                context.EnsureOutputWritable();
                console.Write(new Rule($"[bold green]bench {Markup.Escape(name)}[/]").LeftJustified().RuleStyle("green"));
                return name switch
                {
                    EvalCommand.Name => await EvalCommand.RunAsync(context, parsed, cancellation),
                    ChunksCommand.Name => await ChunksCommand.RunAsync(context, parsed, cancellation),
                    IngestCommand.Name => await IngestCommand.RunAsync(context, parsed, cancellation),
                    AnnCommand.Name => await AnnCommand.RunAsync(context, parsed, cancellation),
                    WritesCommand.Name => await WritesCommand.RunAsync(context, parsed, cancellation),
                    _ => await ScaleCommand.RunAsync(context, parsed, cancellation),
                };
            },
            hookSignals: options?.Console is null,
            cancellationToken: cancellationToken);
    }
}
