using System.Globalization;
using System.Text;

namespace PgVectorModule.Input;

/// <summary>How the length of a piece of text is counted against a limit.</summary>
public enum TextMeasure
{
    /// <summary>UTF-16 code units: what <see cref="string.Length"/> counts.</summary>
    Utf16,

    /// <summary>Unicode scalar values: what PostgreSQL counts as characters in varchar(n) and length().</summary>
    CodePoints,

    /// <summary>UTF-8 bytes: what PostgreSQL counts in an identifier (63 at most) and on the wire.</summary>
    Utf8Bytes,
}

/// <summary>
/// Cuts text a user gave to a limit without breaking a character: at the end of the last whole text element (a grapheme
/// cluster: a letter with its accents, an emoji with its modifiers) that fits. <c>text[..n]</c> would split a surrogate
/// pair, which no encoder accepts (Npgsql throws EncoderFallbackException, System.Text.Json refuses the string).
/// </summary>
public static class TextPrefix
{
    /// <summary>
    /// The longest prefix of <paramref name="text"/> made of whole text elements that measures at most
    /// <paramref name="limit"/>. A single text element longer than the limit (a letter under thousands of combining
    /// marks) is cut between Unicode scalar values instead, so the result is never empty when one scalar fits.
    /// </summary>
    public static string Of(string text, int limit, TextMeasure measure = TextMeasure.Utf16)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (Measure(text, measure) <= limit)
        {
            return text;
        }

        var end = 0;
        var used = 0;
        while (end < text.Length)
        {
            var length = StringInfo.GetNextTextElementLength(text, end);
            var size = Measure(text.AsSpan(end, length), measure);
            if (used + size > limit)
            {
                break;
            }

            used += size;
            end += length;
        }

        if (end == 0)
        {
            // Not even the first text element fits: keep its whole scalar values that do.
            foreach (var rune in text.EnumerateRunes())
            {
                var size = Measure(rune, measure);
                if (used + size > limit)
                {
                    break;
                }

                used += size;
                end += rune.Utf16SequenceLength;
            }
        }

        return text[..end];
    }

    /// <summary>The size of <paramref name="text"/> in <paramref name="measure"/>'s unit. Lone surrogates count as one scalar (U+FFFD).</summary>
    public static int Measure(ReadOnlySpan<char> text, TextMeasure measure) => measure switch
    {
        TextMeasure.Utf16 => text.Length,
        TextMeasure.CodePoints => CountRunes(text),
        TextMeasure.Utf8Bytes => Encoding.UTF8.GetByteCount(text),
        _ => throw new ArgumentOutOfRangeException(nameof(measure)),
    };

    private static int Measure(Rune rune, TextMeasure measure) => measure switch
    {
        TextMeasure.Utf16 => rune.Utf16SequenceLength,
        TextMeasure.CodePoints => 1,
        _ => rune.Utf8SequenceLength,
    };

    private static int CountRunes(ReadOnlySpan<char> text)
    {
        var count = 0;
        foreach (var _ in text.EnumerateRunes())
        {
            count++;
        }

        return count;
    }
}
