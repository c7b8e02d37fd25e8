using PgVectorModule.Input;
using PgVectorModule.Problems;

namespace PgVectorModule.Search;

/// <summary>Checks a user's query text before any work is done with it.</summary>
public static class SearchInput
{
    /// <summary>
    /// Longer queries are cut here (and the caller is told): a search box is not a document. Counted in UTF-16 code units,
    /// and cut between characters: an emoji or a letter with its accents is kept whole or left out.
    /// </summary>
    public const int MaxQueryLength = 2000;

    public static string Validate(string? query, out bool truncated)
    {
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new SetupException("The search query is empty: pass a question in quotes, for example \"how do vector indexes work?\".", ExitCodes.InvalidInput);
        }

        var trimmed = query.Trim();
        truncated = trimmed.Length > MaxQueryLength;
        return truncated ? TextPrefix.Of(trimmed, MaxQueryLength) : trimmed;
    }
}
