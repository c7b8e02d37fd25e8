using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace PgVectorModule.Lessons;

/// <summary>
/// What a lesson did, recorded as it happened: each numbered step with the SQL it sent (shown or quiet), the SQL
/// and code it only displayed, its result tables by column name, its plans and its narration.
/// Tests read this instead of the rendered console, whose borders and line wrapping are for people.
/// </summary>
public sealed partial class LessonTranscript
{
    /// <summary>The environment variable naming a file the lesson writes its transcript to as JSON when it ends.</summary>
    public const string FileVariable = "LESSON_TRANSCRIPT";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private readonly Lock _gate = new();

    /// <summary>What happened before the first step (loading, checks).</summary>
    public TranscriptStep Preamble { get; init; } = new() { Number = 0, Id = "", Title = "", Why = "" };

    public List<TranscriptStep> Steps { get; init; } = [];

    /// <summary>True once the lesson's last step returned.</summary>
    public bool Completed { get; set; }

    [JsonIgnore]
    public TranscriptStep Current => Steps.Count == 0 ? Preamble : Steps[^1];

    /// <summary>Every entry of every step, the preamble first, in the order they happened.</summary>
    [JsonIgnore]
    public IEnumerable<TranscriptEntry> Entries => new[] { Preamble }.Concat(Steps).SelectMany(s => s.Entries);

    /// <summary>Every statement sent to the database, shown or quiet.</summary>
    [JsonIgnore]
    public IEnumerable<SqlEntry> SqlSent => Entries.OfType<SqlEntry>().Where(s => s.Sent);

    /// <summary>Every statement or code panel a reader saw.</summary>
    [JsonIgnore]
    public IEnumerable<string> Shown => Entries.Select(e => e switch
    {
        SqlEntry { Shown: true } s => s.Text,
        CodeEntry c => c.Text,
        PlanEntry p => p.Plan,
        _ => null,
    }).OfType<string>();

    [JsonIgnore]
    public IEnumerable<PlanEntry> Plans => Entries.OfType<PlanEntry>();

    [JsonIgnore]
    public IEnumerable<string> Notes => Entries.OfType<NoteEntry>().Select(n => n.Text);

    /// <summary>The step with this id (<c>lesson.Step(id, title, why)</c>); the ids there are when none has it.</summary>
    public TranscriptStep Step(string id) =>
        Steps.SingleOrDefault(s => s.Id == id)
        ?? throw new KeyNotFoundException($"No step has the id \"{id}\". The steps: {string.Join(" | ", Steps.Select(s => $"{s.Id} ({s.Title})"))}");

    internal void BeginStep(string id, string title, string why, bool deepDive = false)
    {
        if (!StepId().IsMatch(id))
        {
            throw new ArgumentException($"A step's id is lower-case letters and digits in words joined by hyphens (\"load-corpus\"), not \"{id}\".", nameof(id));
        }

        lock (_gate)
        {
            if (Steps.Any(s => s.Id == id))
            {
                throw new ArgumentException($"The lesson has a step with the id \"{id}\" already: each step's id is its own.", nameof(id));
            }

            Steps.Add(new TranscriptStep { Number = Steps.Count + 1, Id = id, Title = title, Why = why, DeepDive = deepDive });
        }
    }

    [GeneratedRegex("^[a-z0-9]+(-[a-z0-9]+)*$")]
    private static partial Regex StepId();

    internal T Add<T>(T entry) where T : TranscriptEntry
    {
        lock (_gate)
        {
            Current.Entries.Add(entry);
        }

        return entry;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static LessonTranscript FromJson(string json) =>
        JsonSerializer.Deserialize<LessonTranscript>(json, Json) ?? throw new InvalidDataException("The transcript file is empty.");
}

public sealed class TranscriptStep
{
    public required int Number { get; init; }

    /// <summary>The step's name for good, as the lesson gives it: what tests look it up by (its number and title may change).</summary>
    public required string Id { get; init; }

    public required string Title { get; init; }
    public required string Why { get; init; }

    /// <summary>Whether the step is a deep dive: by default the console folds its SQL, code, plans and tables (<c>--verbose</c> shows them).</summary>
    public bool DeepDive { get; init; }

    public List<TranscriptEntry> Entries { get; init; } = [];

    [JsonIgnore]
    public IEnumerable<SqlEntry> Sql => Entries.OfType<SqlEntry>();

    [JsonIgnore]
    public IEnumerable<SqlEntry> SqlSent => Sql.Where(s => s.Sent);

    [JsonIgnore]
    public IReadOnlyList<TableEntry> Tables => Entries.OfType<TableEntry>().ToList();

    [JsonIgnore]
    public IReadOnlyList<PlanEntry> Plans => Entries.OfType<PlanEntry>().ToList();

    [JsonIgnore]
    public IReadOnlyList<string> Notes => Entries.OfType<NoteEntry>().Select(n => n.Text).ToList();

    [JsonIgnore]
    public IReadOnlyList<CodeEntry> Code => Entries.OfType<CodeEntry>().ToList();

    /// <summary>The one table of this step (most steps show one).</summary>
    [JsonIgnore]
    public TableEntry Table => Tables.Count == 1
        ? Tables[0]
        : throw new InvalidOperationException($"Step {Number} \"{Title}\" shows {Tables.Count} tables.");

    /// <summary>The narration line that starts with <paramref name="prefix"/>.</summary>
    public string Note(string prefix) =>
        Notes.FirstOrDefault(n => n.StartsWith(prefix, StringComparison.Ordinal))
        ?? throw new KeyNotFoundException($"Step {Number} \"{Title}\" has no note starting \"{prefix}\". Its notes: {string.Join(" | ", Notes)}");
}

[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(SqlEntry), "sql")]
[JsonDerivedType(typeof(TableEntry), "table")]
[JsonDerivedType(typeof(NoteEntry), "note")]
[JsonDerivedType(typeof(PlanEntry), "plan")]
[JsonDerivedType(typeof(CodeEntry), "code")]
public abstract class TranscriptEntry;

/// <summary>A statement: sent to the server (<see cref="Sent"/>), shown to the reader (<see cref="Shown"/>), or both.</summary>
public sealed class SqlEntry : TranscriptEntry
{
    public required string Text { get; init; }
    public IReadOnlyList<string> Parameters { get; init; } = [];
    public bool Sent { get; init; }
    public bool Shown { get; init; }

    /// <summary>The rows a query sent through the lesson returned (column name to value as displayed); null for other statements.</summary>
    public List<Dictionary<string, string>>? Rows { get; set; }
}

/// <summary>A table as the reader saw it, each row by column header; cell text in full (the console wraps it).</summary>
public sealed class TableEntry : TranscriptEntry
{
    public required IReadOnlyList<string> Columns { get; init; }
    public required List<Dictionary<string, string>> Rows { get; init; }

    public IReadOnlyList<string> Column(string name) =>
        Columns.Contains(name)
            ? Rows.Select(r => r[name]).ToList()
            : throw new KeyNotFoundException($"No column \"{name}\". The columns: {string.Join(" | ", Columns)}");

    /// <summary>The row whose <paramref name="column"/> is <paramref name="value"/>.</summary>
    public Dictionary<string, string> Row(string column, string value) =>
        Rows.SingleOrDefault(r => r.TryGetValue(column, out var v) && v == value)
        ?? throw new KeyNotFoundException($"No row with {column} = \"{value}\". That column holds: {string.Join(" | ", Column(column))}");
}

/// <summary>A line of narration, as plain text, and what kind of line it is.</summary>
public sealed class NoteEntry : TranscriptEntry
{
    public required string Text { get; init; }

    [JsonConverter(typeof(JsonStringEnumConverter<Tone>))]
    public Tone Tone { get; init; }
}

/// <summary>A query plan from EXPLAIN, with the query it explains.</summary>
public sealed class PlanEntry : TranscriptEntry
{
    public required string Sql { get; init; }
    public required string Plan { get; init; }
}

/// <summary>Code shown to the reader that is not SQL (C#, a shell command).</summary>
public sealed class CodeEntry : TranscriptEntry
{
    public required string Language { get; init; }
    public required string Text { get; init; }
}
