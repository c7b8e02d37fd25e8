using Spectre.Console;

namespace PgVectorModule.Lessons;

/// <summary>
/// A writer that keeps nothing but how many lines were written to it: where a lesson renders what it folds, so it can
/// say how many lines <c>--verbose</c> shows in their place.
/// </summary>
internal sealed class LineCounter : TextWriter
{
    private int _lines;

    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    /// <summary>A console as wide as <paramref name="width"/> that renders into a line count, without colour or cursor codes.</summary>
    public static (IAnsiConsole Console, LineCounter Lines) Console(int width)
    {
        var lines = new LineCounter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(lines),
        });
        console.Profile.Width = width;
        return (console, lines);
    }

    /// <summary>The lines written since the last call.</summary>
    public int Take() => Interlocked.Exchange(ref _lines, 0);

    public override void Write(char value)
    {
        if (value == '\n')
        {
            Interlocked.Increment(ref _lines);
        }
    }

    public override void Write(string? value)
    {
        if (value is not null)
        {
            Interlocked.Add(ref _lines, value.AsSpan().Count('\n'));
        }
    }

    public override void Write(char[] buffer, int index, int count) =>
        Interlocked.Add(ref _lines, buffer.AsSpan(index, count).Count('\n'));
}
