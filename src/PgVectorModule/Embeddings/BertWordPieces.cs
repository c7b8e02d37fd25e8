using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace PgVectorModule.Embeddings;

/// <summary>
/// A text as a BERT model reads it: Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> (the WordPiece vocabulary and
/// its greedy longest-match split, [UNK] for a word it cannot spell) over the model's vocab.txt or tokenizer.json, fed by
/// BERT's own text cleaning and word splitting, as the reference tokenizer the models were trained with does it
/// (<see cref="BertTextCleaner"/>, <see cref="BertWordSplitter"/>). BertTokenizer's own defaults differ from that
/// reference in a few places (docs/benchmarks.md, "The tokenizer"), and a model reads text as it was trained to.
/// </summary>
public sealed class BertWordPieces
{
    private readonly BertTokenizer _tokenizer;

    private BertWordPieces(BertTokenizer tokenizer, int vocabularySize, bool lowerCase)
    {
        _tokenizer = tokenizer;
        VocabularySize = vocabularySize;
        LowerCase = lowerCase;
    }

    /// <summary>Word pieces in the vocabulary: ids run from 0 to one below this.</summary>
    public int VocabularySize { get; }

    /// <summary>True for an uncased model: text is lower-cased and its accents stripped before it is split.</summary>
    public bool LowerCase { get; }

    public int ClassificationId => _tokenizer.ClassificationTokenId;

    public int SeparatorId => _tokenizer.SeparatorTokenId;

    public int PaddingId => _tokenizer.PaddingTokenId;

    public int UnknownId => _tokenizer.UnknownTokenId;

    /// <summary>
    /// From a vocab.txt (one word piece a line, its line number its id). <paramref name="lowerCase"/> null: lower-case
    /// unless the vocabulary itself holds capitalised words (a cased model's, such as bert-base-multilingual-cased).
    /// </summary>
    public static BertWordPieces FromVocabulary(Stream vocabulary, bool? lowerCase = null)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        using var reader = new StreamReader(vocabulary, Encoding.UTF8);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }

        return Create(lines, lowerCase ?? !IsCased(lines), stripAccents: null, splitCjk: true, unknown: "[UNK]", prefix: "##", maxCharsPerWord: 100);
    }

    /// <summary>
    /// From a Hugging Face tokenizer.json of a WordPiece model (what BERT, MiniLM, bge, e5 and gte ship): its vocabulary
    /// and its BertNormalizer's lowercase, strip_accents and handle_chinese_chars. Any other kind (SentencePiece,
    /// BPE) throws <see cref="FormatException"/> with the kind it found.
    /// </summary>
    public static BertWordPieces FromTokenizerJson(Stream json)
    {
        ArgumentNullException.ThrowIfNull(json);
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var model = root.GetProperty("model");
        var kind = model.TryGetProperty("type", out var type) ? type.GetString() : null;
        if (kind != "WordPiece")
        {
            throw new FormatException($"its model is {kind ?? "of no stated type"}, not WordPiece");
        }

        var vocabulary = model.GetProperty("vocab").EnumerateObject().Select(p => (Piece: p.Name, Id: p.Value.GetInt32())).OrderBy(p => p.Id).ToList();
        if (vocabulary.Where((p, i) => p.Id != i).Any())
        {
            throw new FormatException("its vocabulary's ids are not 0, 1, 2... without gaps");
        }

        bool? Flag(string name) =>
            root.TryGetProperty("normalizer", out var n) && n.ValueKind == JsonValueKind.Object && n.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? v.GetBoolean()
                : null;
        string Text(string name, string fallback) => model.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;
        var maxChars = model.TryGetProperty("max_input_chars_per_word", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt32() : 100;

        var lines = vocabulary.Select(p => p.Piece).ToList();
        return Create(lines, Flag("lowercase") ?? !IsCased(lines), Flag("strip_accents"), Flag("handle_chinese_chars") ?? true,
            Text("unk_token", "[UNK]"), Text("continuing_subword_prefix", "##"), maxChars);
    }

    /// <summary>The ids of a text's word pieces, without [CLS] and [SEP].</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _tokenizer.EncodeToIds(text, addSpecialTokens: false)];
    }

    private static BertWordPieces Create(IReadOnlyList<string> lines, bool lowerCase, bool? stripAccents, bool splitCjk, string unknown, string prefix, int maxCharsPerWord)
    {
        // BertTokenizer reads the vocab.txt form; a tokenizer.json's vocabulary is written out in it.
        using var vocabulary = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = lowerCase,
            Normalizer = new BertTextCleaner(lowerCase, stripAccents ?? lowerCase, splitCjk),
            PreTokenizer = BertWordSplitter.Instance,
            // User text is text: "[SEP]" typed in a question is five characters, not a separator.
            SplitOnSpecialTokens = false,
            UnknownToken = unknown,
            ContinuingSubwordPrefix = prefix,
            MaxInputCharsPerWord = maxCharsPerWord,
        };
        return new BertWordPieces(BertTokenizer.Create(vocabulary, options), lines.Count, lowerCase);
    }

    /// <summary>A vocabulary with capitalised whole words (not just the special tokens) belongs to a cased model.</summary>
    private static bool IsCased(IReadOnlyList<string> lines) =>
        lines.Count(l => l.Length > 1 && char.IsUpper(l[0]) && !l.StartsWith('[')) > 100;
}

/// <summary>
/// BERT's text cleaning, as the reference BasicTokenizer and Hugging Face's BertNormalizer do it, in this order: drop
/// NUL, U+FFFD and control and format characters (but not tab, line feed, carriage return), every whitespace character
/// to one space, a space either side of each CJK ideograph, then (uncased models) decompose, drop non-spacing marks
/// and lower-case. Microsoft.ML.Tokenizers' own BertNormalizer drops tab and line feed instead of spacing them ("a\nb"
/// becomes the one word "ab"), keeps format characters such as the zero-width space, also drops spacing marks (the vowel
/// signs of Indic scripts) and recomposes to NFC (Hangul syllables the vocabulary holds only as jamo); and both it and
/// string.Normalize leave accents on under the module's InvariantGlobalization (<see cref="CanonicalDecomposition"/>).
/// </summary>
internal sealed class BertTextCleaner(bool lowerCase, bool stripAccents, bool splitCjk) : Normalizer
{
    public override string Normalize(string original)
    {
        ArgumentNullException.ThrowIfNull(original);
        var cleaned = new StringBuilder(original.Length);
        foreach (var rune in original.EnumerateRunes())
        {
            if (rune.Value is 0 or 0xFFFD || IsControl(rune))
            {
                continue;
            }

            if (IsWhitespace(rune))
            {
                cleaned.Append(' ');
            }
            else if (splitCjk && IsCjk(rune.Value))
            {
                cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            }
            else
            {
                cleaned.Append(rune.ToString());
            }
        }

        var text = cleaned.ToString();
        if (stripAccents)
        {
            var decomposed = CanonicalDecomposition.Decompose(text);
            var kept = new StringBuilder(decomposed.Length);
            foreach (var rune in decomposed.EnumerateRunes())
            {
                if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark)
                {
                    kept.Append(rune.ToString());
                }
            }

            text = kept.ToString();
        }

        return lowerCase ? text.ToLowerInvariant() : text;
    }

    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

    /// <summary>Whitespace as BERT counts it: space, tab, line feed, carriage return, and the space separators (Zs).</summary>
    internal static bool IsWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(rune) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune rune) =>
        rune.Value is not ('\t' or '\n' or '\r') && Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;

    /// <summary>The CJK Unified Ideographs blocks BERT splits character by character (not Hangul, Hiragana or Katakana).</summary>
    private static bool IsCjk(int c) =>
        c is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F)
            or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B820 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}

/// <summary>
/// BERT's word splitting (the reference BasicTokenizer, Hugging Face's BertPreTokenizer): words end at whitespace, and
/// every punctuation character is a word of its own, punctuation being any ASCII symbol or punctuation mark
/// (<c>$ + &lt; = &gt; ^ ` | ~</c> included) and any Unicode punctuation (category P). Microsoft.ML.Tokenizers' default
/// for BERT matches <c>\w+|\p{P}</c> instead, which drops ASCII symbols ("$5" reads as "5", "a+b" as "a b") and keeps
/// an underscore inside a word ("ef_search" is one word there, three here).
/// </summary>
internal sealed class BertWordSplitter : PreTokenizer
{
    public static BertWordSplitter Instance { get; } = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Split(text);
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text.ToString());

    private static List<(int Offset, int Length)> Split(string text)
    {
        var words = new List<(int Offset, int Length)>();
        var start = -1;
        var index = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            var width = rune.Utf16SequenceLength;
            if (Rune.IsWhiteSpace(rune) || BertTextCleaner.IsWhitespace(rune))
            {
                Close(index);
            }
            else if (IsPunctuation(rune))
            {
                Close(index);
                words.Add((index, width));
            }
            else if (start < 0)
            {
                start = index;
            }

            index += width;
        }

        Close(index);
        return words;

        void Close(int end)
        {
            if (start >= 0)
            {
                words.Add((start, end - start));
                start = -1;
            }
        }
    }

    private static bool IsPunctuation(Rune rune) =>
        rune.Value is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126)
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
}
