using PgVectorModule.Hosting;
using PgVectorModule.Problems;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Library;

/// <summary>How every program of the course ends, lessons and bench alike: its own exit code, a stop, a fixable failure, a bug.</summary>
public sealed class ConsoleHostTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_work_s_own_exit_code_is_the_program_s()
    {
        var console = new TestConsole();

        var exit = await ConsoleHost.RunAsync(console, () => null, _ => Task.FromResult(ExitCodes.Success), hookSignals: false, cancellationToken: Ct);

        Assert.Equal(ExitCodes.Success, exit);
        Assert.Equal("", console.Output);
    }

    [Fact]
    public async Task A_stop_asked_for_is_one_line_and_exit_130_whatever_the_work_threw()
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var console = new TestConsole();

        var exit = await ConsoleHost.RunAsync(console, () => null, async cancellation =>
            {
                await stop.CancelAsync();
                // A client that wraps the cancellation in an exception of its own.
                throw new InvalidOperationException("the command was cancelled", new OperationCanceledException(cancellation));
            },
            hookSignals: false, cancelled: "Cancelled. Nothing half-done was committed.", cancellationToken: stop.Token);

        Assert.Equal(ExitCodes.Cancelled, exit);
        Assert.Equal("Cancelled. Nothing half-done was committed.", console.Output.Trim());
    }

    [Fact]
    public async Task A_failure_a_user_can_fix_is_one_sentence_and_its_exit_code()
    {
        var console = new TestConsole().Width(200);

        var exit = await ConsoleHost.RunAsync(console, () => null,
            _ => throw new SetupException("The sample is missing: run it again.", ExitCodes.InvalidInput), hookSignals: false, cancellationToken: Ct);

        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Equal("The sample is missing: run it again.", console.Output.Trim());
    }

    [Fact]
    public async Task A_bug_keeps_its_exception()
    {
        var console = new TestConsole();

        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            ConsoleHost.RunAsync(console, () => null, _ => throw new InvalidOperationException("a bug"), hookSignals: false, cancellationToken: Ct));

        Assert.Equal("", console.Output);
    }
}
