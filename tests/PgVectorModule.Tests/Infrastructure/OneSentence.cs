using System.Text.RegularExpressions;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>What every user-caused failure must look like: one paragraph, never a crash report.</summary>
public static partial class OneSentence
{
    /// <summary>The output with line wrapping undone (Spectre wraps at the console's width), for matching a sentence.</summary>
    public static string Flat(string output) => Whitespace().Replace(output, " ");

    public static void AssertNoCrash(string output)
    {
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotMatch(StackFrame(), output);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"(?m)^\s+at \S+\(")]
    private static partial Regex StackFrame();
}
