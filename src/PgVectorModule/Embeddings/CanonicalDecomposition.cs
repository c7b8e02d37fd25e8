using System.Globalization;
using System.Text;

namespace PgVectorModule.Embeddings;

/// <summary>
/// Unicode canonical decomposition (NFD) from a table the library carries (canonical-decompositions.txt), for stripping
/// accents as BERT does: "é" becomes "e" and a combining acute, which is then dropped. string.Normalize cannot do it
/// here: the module runs with InvariantGlobalization (Directory.Build.props), where .NET loads no ICU and leaves
/// non-ASCII text as it is, so "café" stayed "café" and became [UNK]. Hangul syllables decompose by arithmetic
/// (Unicode's Hangul syllable decomposition), as the vocabulary holds their jamo.
/// </summary>
internal static class CanonicalDecomposition
{
    private const int HangulBase = 0xAC00, HangulCount = 11_172, LeadBase = 0x1100, VowelBase = 0x1161, TrailBase = 0x11A7, VowelCount = 21, TrailCount = 28;

    private static readonly Lazy<Dictionary<int, string>> Table = new(Read);

    public static string Decompose(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var table = Table.Value;
        var result = new StringBuilder(text.Length + 8);
        foreach (var rune in text.EnumerateRunes())
        {
            var value = rune.Value;
            if (value is >= HangulBase and < HangulBase + HangulCount)
            {
                var index = value - HangulBase;
                result.Append((char)(LeadBase + index / (VowelCount * TrailCount)));
                result.Append((char)(VowelBase + index % (VowelCount * TrailCount) / TrailCount));
                if (index % TrailCount != 0)
                {
                    result.Append((char)(TrailBase + index % TrailCount));
                }
            }
            else if (value > 0x7F && table.TryGetValue(value, out var decomposed))
            {
                result.Append(decomposed);
            }
            else
            {
                result.Append(rune.ToString());
            }
        }

        return result.ToString();
    }

    private static Dictionary<int, string> Read()
    {
        using var stream = typeof(CanonicalDecomposition).Assembly.GetManifestResourceStream("PgVectorModule.canonical-decompositions.txt")
            ?? throw new InvalidOperationException("The library's canonical-decompositions.txt resource is missing.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var table = new Dictionary<int, string>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var fields = line.Split(' ');
            table[int.Parse(fields[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture)] =
                string.Concat(fields.Skip(1).Select(f => char.ConvertFromUtf32(int.Parse(f, NumberStyles.HexNumber, CultureInfo.InvariantCulture))));
        }

        return table;
    }
}
