using System.Text.Json;

namespace PgVectorModule.Search;

/// <summary>One document of the module's sample corpus (src/PgVectorModule/Data/corpus.jsonl).</summary>
public sealed record CorpusDocument(string Title, string Content, string Source)
{
    /// <summary>What gets embedded: the title carries meaning the content may only imply.</summary>
    public string TextToEmbed => $"{Title}. {Content}";
}

/// <summary>The sample corpus shipped inside the library: documents on AI, databases and software, from three sources.</summary>
public static class SampleCorpus
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private static readonly Lazy<IReadOnlyList<CorpusDocument>> Documents = new(Read);

    public static IReadOnlyList<CorpusDocument> All => Documents.Value;

    private static IReadOnlyList<CorpusDocument> Read()
    {
        using var stream = typeof(SampleCorpus).Assembly.GetManifestResourceStream("PgVectorModule.corpus.jsonl")
            ?? throw new InvalidOperationException("The corpus resource is missing from the library.");
        using var reader = new StreamReader(stream);
        var documents = new List<CorpusDocument>();
        var lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }

            documents.Add(JsonSerializer.Deserialize<CorpusDocument>(line, Json)
                ?? throw new InvalidDataException($"corpus.jsonl line {lineNumber} is empty JSON."));
        }

        return documents;
    }
}
