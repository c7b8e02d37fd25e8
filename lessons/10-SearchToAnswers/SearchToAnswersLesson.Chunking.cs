using System.Text.RegularExpressions;

namespace PgVectorModule.Lessons.Lesson10;

/// <summary>One piece of a text, with its place in the text and its size in the model's word pieces.</summary>
public sealed record TextChunk(int Position, string Text, int Tokens);

/// <summary>
/// Three ways to cut a text into chunks, each measured in the embedding model's word pieces (what its 256-piece limit
/// counts). Words are never split: a window ends at the last whole word that fits.
/// </summary>
public sealed partial class SearchToAnswersLesson
{
    /// <summary>
    /// Fixed windows: words are added until the window holds <paramref name="size"/> word pieces; the next window
    /// starts far enough back to repeat the last <paramref name="overlap"/> pieces, so a sentence cut at a window's end
    /// is read whole by the next one. Cuts fall anywhere, mid-sentence included.
    /// </summary>
    public static IReadOnlyList<TextChunk> FixedWindows(string text, Func<string, int> pieces, int size, int overlap)
    {
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

            // Step back over the window's last words while they hold no more than the overlap.
            var (next, repeated) = (end, 0);
            while (next - 1 > start && repeated + counts[next - 1] <= overlap)
            {
                repeated += counts[--next];
            }

            start = next;
        }

        return chunks;
    }

    /// <summary>
    /// Sentence-aware packing: whole sentences are added to a chunk while it stays within <paramref name="budget"/> word
    /// pieces; a sentence longer than the budget alone is cut into fixed windows. Cuts fall between sentences.
    /// </summary>
    public static IReadOnlyList<TextChunk> SentencePacks(string text, Func<string, int> pieces, int budget)
    {
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

    /// <summary>One chunk per paragraph (text between blank lines), whatever its size: the author's own cuts.</summary>
    public static IReadOnlyList<TextChunk> Paragraphs(string text, Func<string, int> pieces) =>
        ParagraphBreak().Split(text)
            .Select(p => p.Trim())
            .Where(p => p.Length > 0)
            .Select((p, i) => new TextChunk(i, p, pieces(p)))
            .ToList();

    /// <summary>A sentence ends at . ! or ? followed by white space and a capital letter, a digit or a quote.</summary>
    public static IEnumerable<string> Sentences(string text) =>
        SentenceEnd().Split(text.Trim()).Select(s => s.Trim()).Where(s => s.Length > 0);

    [GeneratedRegex(@"(?<=[.!?])\s+(?=[A-Z0-9""“(])")]
    private static partial Regex SentenceEnd();

    [GeneratedRegex(@"\n\s*\n")]
    private static partial Regex ParagraphBreak();
}
