using PgVectorModule.Bench;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>The bench's command line before any database is touched: the help System.CommandLine writes, and bad input refused in one sentence.</summary>
public sealed class BenchCommandLineTests
{
    private static async Task<(int Exit, string Output)> BenchAsync(params string[] args)
    {
        var console = new TestConsole().Width(200);
        // Settings that point nowhere: a run that got past the command line would fail on them, not pass.
        var settings = ModuleSettings.From(name => name == "DATABASE_URL" ? "postgresql://nobody:none@127.0.0.1:1/none" : null);
        var exit = await BenchApp.RunAsync(args, new BenchHostOptions { Console = console, Settings = settings }, TestContext.Current.CancellationToken);
        return (exit, console.Output);
    }

    [Theory]
    [InlineData]
    [InlineData("help")]
    [InlineData("--help")]
    public async Task Help_lists_every_command_and_succeeds(params string[] args)
    {
        var (exit, output) = await BenchAsync(args);
        Assert.Equal(ExitCodes.Success, exit);
        foreach (var command in new[] { "eval", "chunks", "ingest", "ann", "scale", "writes" })
        {
            Assert.Matches($@"(?m)^\s+{command}\s+\S", output);
        }

        Assert.Contains("--output <DIR>", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ann", "--ef-construction <N>", "[default: 64]")]
    [InlineData("ingest", "--maintenance-work-mem <SIZE>", "[default: 512MB]")]
    [InlineData("eval", "--dataset <DIR>", "--sweep")]
    [InlineData("chunks", "--chunkings <N>", "--index-sizes")]
    public async Task A_commands_help_shows_its_options_and_defaults(string command, string option, string more)
    {
        foreach (var args in new[] { new[] { "help", command }, [command, "--help"] })
        {
            var (exit, output) = await BenchAsync(args);
            Assert.Equal(ExitCodes.Success, exit);
            Assert.Contains($"bench {command} [options]", output, StringComparison.Ordinal);
            Assert.Contains(option, output, StringComparison.Ordinal);
            Assert.Contains(more, output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("evaluate", "Unknown command 'evaluate'; the commands are eval, chunks, ingest, ann, scale, writes and learners.")]
    [InlineData("--rows 5", "A command comes first; the commands are eval, chunks, ingest, ann, scale, writes and learners")]
    [InlineData("ann --rows", "--rows needs a value.")]
    [InlineData("ann --rows 0", "--rows is '0'; it must be a whole number of at least 1.")]
    [InlineData("ann --m=1", "--m is '1'; it must be a whole number of at least 2.")]
    [InlineData("ingest --seed -3", "--seed is '-3'; it must be a whole number of at least 0.")]
    [InlineData("eval --vector-weight 0,7", "--vector-weight is '0,7'; it must be a number such as 0.7 (with a point, not a comma).")]
    [InlineData("ann --rows 10 --rowz 5 --fast", "Unknown options --rowz, --fast for 'ann'; run without arguments to see the usage.")]
    [InlineData("ann 5", "'5' is not an option; options look like --name value.")]
    public async Task Bad_input_ends_in_one_sentence_exit_8(string line, string sentence)
    {
        var (exit, output) = await BenchAsync(line.Split(' '));
        Assert.True(exit == ExitCodes.InvalidInput, output);
        Assert.Contains(sentence, OneSentence.Flat(output), StringComparison.Ordinal);
        Assert.DoesNotContain("Usage:", output, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(output);
    }
}
