using System.CommandLine;
using System.CommandLine.Help;
using PgVectorModule.Bench.Ann;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Problems;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>
/// The bench's command line on System.CommandLine: the commands and their options (each command declares its own), the
/// help text, and a parse error turned into one sentence with exit code <see cref="ExitCodes.InvalidInput"/>.
/// </summary>
public static class BenchCommandLine
{
    public const string DefaultOutput = "artifacts/bench";
    public const string OutputOption = "--output";

    /// <summary>A new tree per parse: options carry no state between runs, so tests can run the bench side by side.</summary>
    public static Command Create()
    {
        // Not RootCommand: it names itself after the executable, which is testhost under the tests.
        var root = new Command("bench",
            "Benchmarks and retrieval-quality evaluation of the module's search. Run it with: dotnet run -c Release --project src/PgVectorModule.Bench -- <command> [options]. " +
            "Every benchmark works in its own schema of DATABASE_URL's database and writes JSON and CSV to --output; learners, for an instructor, writes nothing.")
        {
            EvalCommand.Definition(),
            ChunksCommand.Definition(),
            IngestCommand.Definition(),
            AnnCommand.Definition(),
            ScaleCommand.Definition(),
            WritesCommand.Definition(),
            LearnersCommand.Definition(),
        };
        root.Options.Add(new HelpOption());
        var output = BenchOptions.Text(OutputOption, "DIR", "the folder the results go to", DefaultOutput);
        output.Recursive = true;
        root.Options.Add(output);
        return root;
    }

    /// <summary>Help for the whole tool or one command, as System.CommandLine writes it, <paramref name="width"/> columns wide.</summary>
    public static string Help(Command root, string? command, int width)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var help in root.Options.OfType<HelpOption>())
        {
            ((HelpAction)help.Action!).MaxWidth = width;
        }

        using var writer = new StringWriter();
        root.Parse(command is null ? ["--help"] : [command, "--help"]).Invoke(new InvocationConfiguration { Output = writer });
        return writer.ToString();
    }

    /// <summary>The first thing wrong with a parse, in the bench's words; null when nothing is.</summary>
    public static SetupException? Problem(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (parse.Errors.Count == 0)
        {
            return null;
        }

        var command = parse.CommandResult.Command;
        var unknownOptions = parse.UnmatchedTokens.Where(t => t.StartsWith('-')).ToList();
        string message;
        if (command == parse.RootCommandResult.Command)
        {
            message = parse.UnmatchedTokens.FirstOrDefault() is { } name && !name.StartsWith('-')
                ? $"Unknown command '{name}'; the commands are {Names(command)}."
                : $"A command comes first; the commands are {Names(command)} (run without arguments to see the usage).";
        }
        else if (unknownOptions.Count > 0)
        {
            message = $"Unknown option{(unknownOptions.Count > 1 ? "s" : "")} {string.Join(", ", unknownOptions)} for '{command.Name}'; run without arguments to see the usage.";
        }
        else if (parse.UnmatchedTokens.Count > 0)
        {
            message = $"'{parse.UnmatchedTokens[0]}' is not an option; options look like --name value.";
        }
        else
        {
            message = parse.Errors[0].Message;
        }

        return new SetupException(message, ExitCodes.InvalidInput);
    }

    private static string Names(Command root)
    {
        var names = root.Subcommands.Select(c => c.Name).ToList();
        return string.Join(", ", names[..^1]) + " and " + names[^1];
    }
}
