namespace PgVectorModule.Data;

/// <summary>Words are runs of non-whitespace, the same rule the AddWordCount migration uses in SQL.</summary>
public static class WordCounter
{
    public static int Count(string text) =>
        (text ?? "").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
}
