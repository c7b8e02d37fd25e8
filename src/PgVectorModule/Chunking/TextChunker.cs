using System.Text.RegularExpressions;

namespace PgVectorModule.Chunking;

/// <summary>One piece of a text, with its place in the text and its size in the model's word pieces.</summary>
public sealed record TextChunk(int Position, string Text, int Tokens);

/// <summary>How a text is cut: fixed word-piece windows (with an overlap), or whole sentences packed up to a budget.</summary>
public enum ChunkStrategy
{
    Windows,
    Sentences,
}

/// <summary>A way to cut texts: <see cref="TextChunker.Cut"/> applies it.</summary>
public sealed record ChunkSettings(ChunkStrategy Strategy, int Size, int Overlap = 0)
{
    public override string ToString() => Strategy == ChunkStrategy.Sentences
        ? $"sentences up to {Size}"
        : Overlap == 0 ? $"windows of {Size}" : $"windows of {Size}, overlap {Overlap}";
}

/// <summary>
/// Lesson 10's chunking strategies (taught in its SearchToAnswersLesson.Chunking.cs), for the bench: the same cuts,
/// measured in a model's word pieces, words never split. A test holds the two to the same chunks.
/// </summary>
public static partial class TextChunker
{
    public static IReadOnlyList<TextChunk> Cut(string text, Func<string, int> pieces, ChunkSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings.Strategy == ChunkStrategy.Sentences
            ? SentencePacks(text, pieces, settings.Size)
            : FixedWindows(text, pieces, settings.Size, settings.Overlap);
    }

    /// <summary>Words added until a window holds <paramref name="size"/> word pieces; the next window repeats the last <paramref name="overlap"/>.</summary>
    public static IReadOnlyList<TextChunk> FixedWindows(string text, Func<string, int> pieces, int size, int overlap)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(overlap);
        var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var counts = words.Select(pieces).ToArray();
        var chunks = new List<TextChunk>();
        var start = 0;
        while (start < words.Length)
        {
            var (end, tokens) = (start, 0);
            while (end < words.Length && (tokens + counts[end] <= size || end == start))
            {
                tokens += counts[end++];
            }

            chunks.Add(new TextChunk(chunks.Count, string.Join(' ', words[start..end]), tokens));
            if (end == words.Length)
            {
                break;
            }

            var (next, repeated) = (end, 0);
            while (next - 1 > start && repeated + counts[next - 1] <= overlap)
            {
                repeated += counts[--next];
            }

            start = next;
        }

        return chunks;
    }

    /// <summary>Whole sentences added while a chunk stays within <paramref name="budget"/>; a longer sentence is cut into windows.</summary>
    public static IReadOnlyList<TextChunk> SentencePacks(string text, Func<string, int> pieces, int budget)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentOutOfRangeException.ThrowIfLessThan(budget, 1);
        var chunks = new List<TextChunk>();
        var (current, tokens) = (new List<string>(), 0);
        void Flush()
        {
            if (current.Count > 0)
            {
                chunks.Add(new TextChunk(chunks.Count, string.Join(' ', current), tokens));
                (current, tokens) = (new List<string>(), 0);
            }
        }

        foreach (var sentence in Sentences(text))
        {
            var count = pieces(sentence);
            if (count > budget)
            {
                Flush();
                var offset = chunks.Count;
                chunks.AddRange(FixedWindows(sentence, pieces, budget, overlap: 0).Select(w => w with { Position = offset + w.Position }).ToList());
                continue;
            }

            if (tokens + count > budget)
            {
                Flush();
            }

            current.Add(sentence);
            tokens += count;
        }

        Flush();
        return chunks;
    }

    /// <summary>A sentence ends at . ! or ? followed by white space and a capital letter, a digit or a quote.</summary>
    public static IEnumerable<string> Sentences(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SentenceEnd().Split(text.Trim()).Select(s => s.Trim()).Where(s => s.Length > 0);
    }

    [GeneratedRegex(@"(?<=[.!?])\s+(?=[A-Z0-9""“(])")]
    private static partial Regex SentenceEnd();
}
