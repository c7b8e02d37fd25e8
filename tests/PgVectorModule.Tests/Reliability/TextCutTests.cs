using System.Text;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson08;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Input;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// Every place the project cuts text a user gave (the question, an argument it describes, a parameter it shows, a
/// database name it extends) cuts between characters, never inside one: half a surrogate pair is text no encoder
/// takes (Npgsql throws EncoderFallbackException, System.Text.Json refuses it).
/// </summary>
public class TextCutTests
{
    private const string Elephant = "🐘";

    /// <summary>A family emoji: seven scalar values joined by zero-width joiners, one character as a reader sees it.</summary>
    private const string Family = "👩‍👩‍👧‍👦";

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Encodes as Npgsql does (strict UTF-8): throws on a lone surrogate.</summary>
    private static void AssertWhole(string text) => Assert.Equal(text, Strict.GetString(Strict.GetBytes(text)));

    [Fact]
    public void A_question_cut_at_the_limit_keeps_a_surrogate_pair_whole_or_leaves_it_out()
    {
        var question = new string('a', SearchInput.MaxQueryLength - 1) + Elephant;

        var searched = SearchInput.Validate(question, out var truncated);

        Assert.True(truncated);
        AssertWhole(searched);
        Assert.Equal(new string('a', SearchInput.MaxQueryLength - 1), searched);
    }

    [Fact]
    public void A_question_cut_at_the_limit_never_splits_a_grapheme_cluster()
    {
        var question = new string('a', SearchInput.MaxQueryLength - 5) + Family;

        var searched = SearchInput.Validate(question, out var truncated);

        Assert.True(truncated);
        Assert.Equal(new string('a', SearchInput.MaxQueryLength - 5), searched);
    }

    [Fact]
    public async Task An_argument_described_in_the_usage_sentence_keeps_its_characters_whole()
    {
        var argument = new string('a', 39) + Elephant + new string('b', 20);

        var refused = await Assert.ThrowsAsync<SetupException>(() => LessonArguments.ParseAsync([argument], LessonCatalog.Get("01"), TextReader.Null, TestContext.Current.CancellationToken));

        AssertWhole(refused.Message);
        Assert.Contains($"was given '{new string('a', 39)}...' (61 characters)", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_long_text_parameter_in_the_SQL_echo_keeps_its_characters_whole()
    {
        var value = new string('a', 56) + Elephant + new string('b', 10);

        var shown = SqlEcho.Describe(value);

        AssertWhole(shown);
        Assert.Equal($"'{new string('a', 56)}...'", shown);
    }

    [Theory]
    [InlineData("é")]
    [InlineData(Elephant)]
    [InlineData("e\u0301")]
    public void The_restored_database_name_fits_PostgreSQLs_63_bytes_without_breaking_a_character(string unit)
    {
        var database = string.Concat(Enumerable.Repeat(unit, 40));

        var restored = OperationsLesson.RestoredDatabaseName(database);

        AssertWhole(restored);
        Assert.EndsWith("_lesson08_restore", restored, StringComparison.Ordinal);
        Assert.InRange(Encoding.UTF8.GetByteCount(restored), 1, 63);
        Assert.StartsWith(unit, restored, StringComparison.Ordinal);
        Assert.Equal(0, (restored.Length - "_lesson08_restore".Length) % unit.Length);
    }

    [Fact]
    public void A_prefix_counts_in_the_unit_asked_for_and_ends_between_text_elements()
    {
        var text = "ab" + Family + "c" + Elephant + "d";

        Assert.Equal(text, TextPrefix.Of(text, text.Length));
        Assert.Equal("ab", TextPrefix.Of(text, 5));
        Assert.Equal("ab" + Family + "c", TextPrefix.Of(text, 2 + Family.Length + 2));
        Assert.Equal("ab" + Family + "c" + Elephant, TextPrefix.Of(text, 11, TextMeasure.CodePoints));
        Assert.Equal("ab" + Family + "c", TextPrefix.Of(text, 2 + 25 + 1 + 3, TextMeasure.Utf8Bytes));
        Assert.Equal("", TextPrefix.Of(text, 0));
    }

    [Fact]
    public void One_text_element_longer_than_the_limit_is_cut_between_scalar_values()
    {
        // A letter under 3,000 combining marks is one text element of 3,001 code units.
        var zalgo = "a" + new string('\u0301', 3_000);

        var cut = TextPrefix.Of(zalgo, 100);

        Assert.Equal(100, cut.Length);
        Assert.Equal(zalgo[..100], cut);
        Assert.Equal("", TextPrefix.Of(Elephant, 1));
    }
}
