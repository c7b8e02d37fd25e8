using System.CommandLine;
using System.Globalization;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Data;
using PgVectorModule.Problems;
using Spectre.Console;

namespace PgVectorModule.Bench;

/// <summary>
/// learners: the instructor's view of a class server (<c>scripts/learners.sh</c>). <c>list</c> shows every learner's
/// schemas (<see cref="Learner"/>) with their owner, tables and size; <c>reset ROLE</c> drops the schemas that role owns,
/// <c>reset --all</c> every learner's, skipping (and naming) any whose lesson is running right now. Writes no result files.
/// </summary>
public static class LearnersCommand
{
    public const string Name = "learners";

    internal static Command Definition()
    {
        var command = new Command(Name,
            "for an instructor: list the learners' schemas (list), or drop those of one role (reset ROLE) or of everyone (reset --all); the next run makes them again")
        {
            new Argument<string>("action") { Description = "list or reset" },
            new Argument<string?>("role") { Description = "reset: the login role whose schemas go", Arity = ArgumentArity.ZeroOrOne },
            BenchOptions.Flag("--all", "reset: every learner's schemas"),
        };
        return command;
    }

    public static async Task<int> RunAsync(IAnsiConsole console, ModuleSettings settings, ParseResult args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(args);
        var action = args.GetValue<string>("action");
        var role = args.GetValue<string?>("role");
        var all = args.GetValue<bool>("--all");
        if (action is not ("list" or "reset") || (action == "list" && (role is not null || all)) || (action == "reset" && (role is null) == !all))
        {
            throw new SetupException("Usage: learners list | learners reset ROLE | learners reset --all.", ExitCodes.InvalidInput);
        }

        await DatabaseProblems.PreflightAsync(settings.DatabaseTarget(), needsVector: false, cancellationToken);
        await using var dataSource = ModuleDataSource.Create(settings.ConnectionString());
        if (action == "list")
        {
            var schemas = await LearnerSchemas.ListAsync(dataSource, cancellationToken);
            // Plain lines, one schema each, so the list can be read, grepped and piped whatever the terminal's width.
            foreach (var s in schemas)
            {
                console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{s.Schema}  learner {s.Learner}, owner {s.Owner}, {s.Tables} table{(s.Tables == 1 ? "" : "s")}, {s.Bytes / 1024.0:N0} kB"));
            }

            console.WriteLine($"{schemas.Count} schema{(schemas.Count == 1 ? "" : "s")} of {schemas.Select(s => s.Learner).Distinct(StringComparer.Ordinal).Count()} learner(s).");
            return ExitCodes.Success;
        }

        var (dropped, busy) = await LearnerSchemas.ResetAsync(dataSource, all ? null : role, cancellationToken);
        foreach (var schema in dropped)
        {
            console.WriteLine($"dropped {schema}");
        }

        foreach (var schema in busy)
        {
            console.WriteLine($"skipped {schema}: a lesson is running in it; reset again when it has finished");
        }

        console.WriteLine($"{dropped.Count} schema{(dropped.Count == 1 ? "" : "s")} dropped{(all ? "" : $" of role {role}")}, {busy.Count} in use.");
        return busy.Count == 0 ? ExitCodes.Success : ExitCodes.Failed;
    }
}
