using System.Globalization;
using System.Text.Json;
using PgVectorModule.Problems;

namespace PgVectorModule.Bench.Evaluation;

public sealed record BeirDocument(string Id, string Title, string Text);

public sealed record BeirQuery(string Id, string Text);

/// <summary>
/// A BEIR-format folder: corpus.jsonl (_id, title, text), queries.jsonl (_id, text) and qrels/*.tsv
/// (header, then query-id, corpus-id, score, tab-separated). A malformed line stops the read with the file and line.
/// </summary>
public sealed record BeirDataset(
    string Folder,
    IReadOnlyList<BeirDocument> Corpus,
    IReadOnlyList<BeirQuery> Queries,
    string QrelsFile,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Judgments)
{
    /// <summary>Reads the folder; <paramref name="qrelsFile"/> defaults to qrels/test.tsv, else the only or first .tsv there.</summary>
    public static BeirDataset Read(string folder, string? qrelsFile = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
        {
            throw new SetupException($"The dataset folder '{folder}' does not exist; pass a BEIR folder with corpus.jsonl, queries.jsonl and qrels/ (for example --dataset ../shared/datasets/scifact).", ExitCodes.InvalidInput);
        }

        var corpus = ReadJsonLines(Path.Combine(folder, "corpus.jsonl"), (json, where) =>
            new BeirDocument(RequiredString(json, "_id", where), OptionalString(json, "title", where), RequiredString(json, "text", where)));
        var queries = ReadJsonLines(Path.Combine(folder, "queries.jsonl"), (json, where) =>
            new BeirQuery(RequiredString(json, "_id", where), RequiredString(json, "text", where)));
        var qrels = qrelsFile ?? DefaultQrels(folder);
        return new BeirDataset(folder, corpus, queries, qrels, ReadQrels(qrels));
    }

    private static string DefaultQrels(string folder)
    {
        var qrelsFolder = Path.Combine(folder, "qrels");
        var files = Directory.Exists(qrelsFolder) ? Directory.GetFiles(qrelsFolder, "*.tsv").Order(StringComparer.Ordinal).ToList() : [];
        return files.FirstOrDefault(f => Path.GetFileName(f) == "test.tsv") ?? files.FirstOrDefault()
            ?? throw new SetupException($"No judgments found: {qrelsFolder} holds no .tsv file; pass one with --qrels FILE.", ExitCodes.InvalidInput);
    }

    internal static List<T> ReadJsonLines<T>(string path, Func<JsonElement, string, T> map)
    {
        if (!File.Exists(path))
        {
            throw new SetupException($"{path} is missing: a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/*.tsv.", ExitCodes.InvalidInput);
        }

        var items = new List<T>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var where = $"{path} line {lineNumber}";
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                throw new SetupException($"{where} is not valid JSON ({e.Message.Split('.')[0]}); each line must be one JSON object.", ExitCodes.InvalidInput, e);
            }

            using (document)
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new SetupException($"{where} is JSON but not an object; each line must be one JSON object.", ExitCodes.InvalidInput);
                }

                var item = map(document.RootElement, where);
                items.Add(item);
                var id = item switch { BeirDocument d => d.Id, BeirQuery q => q.Id, _ => null };
                if (id is not null && !ids.Add(id))
                {
                    throw new SetupException($"{where} repeats _id '{id}'; ids must be unique.", ExitCodes.InvalidInput);
                }
            }
        }

        return items;
    }

    internal static Dictionary<string, IReadOnlyDictionary<string, int>> ReadQrels(string path)
    {
        if (!File.Exists(path))
        {
            throw new SetupException($"The judgments file {path} does not exist.", ExitCodes.InvalidInput);
        }

        var judgments = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var fields = line.Split('\t');
            if (lineNumber == 1 && fields.Length >= 3 && !int.TryParse(fields[2], CultureInfo.InvariantCulture, out _))
            {
                continue; // the header: query-id, corpus-id, score
            }

            if (fields.Length != 3 || fields[0].Length == 0 || fields[1].Length == 0)
            {
                throw new SetupException($"{path} line {lineNumber} has {fields.Length} tab-separated field{(fields.Length == 1 ? "" : "s")}; expected query-id, corpus-id and score.", ExitCodes.InvalidInput);
            }

            if (!int.TryParse(fields[2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var score))
            {
                throw new SetupException($"{path} line {lineNumber}: the score '{fields[2]}' is not a whole number.", ExitCodes.InvalidInput);
            }

            if (!judgments.TryGetValue(fields[0], out var forQuery))
            {
                judgments[fields[0]] = forQuery = new Dictionary<string, int>(StringComparer.Ordinal);
            }

            forQuery[fields[1]] = score;
        }

        return judgments.ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, int>)p.Value, StringComparer.Ordinal);
    }

    private static string RequiredString(JsonElement json, string name, string where) =>
        json.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : json.TryGetProperty(name, out value) && value.ValueKind == JsonValueKind.Number && name == "_id"
                ? value.GetRawText()
                : throw new SetupException($"{where} has no string \"{name}\".", ExitCodes.InvalidInput);

    private static string OptionalString(JsonElement json, string name, string where) =>
        !json.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? ""
        : value.ValueKind == JsonValueKind.String ? value.GetString()!
        : throw new SetupException($"{where}: \"{name}\" is not a string.", ExitCodes.InvalidInput);
}
