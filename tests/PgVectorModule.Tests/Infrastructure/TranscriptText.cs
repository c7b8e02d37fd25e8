using PgVectorModule.Lessons;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>A lesson transcript's parts as plain text, for assertions that look for a statement or a sentence anywhere in a run.</summary>
public static class TranscriptText
{
    /// <summary>Every statement the lesson sent, each followed by its parameters ("@name = value"), in order.</summary>
    public static string SentSql(this LessonTranscript transcript) =>
        string.Join("\n", transcript.SqlSent.Select(s => string.Join("\n", [s.Text, .. s.Parameters])));

    /// <summary>The statements one step sent, each followed by its parameters.</summary>
    public static string SentSql(this TranscriptStep step) =>
        string.Join("\n", step.SqlSent.Select(s => string.Join("\n", [s.Text, .. s.Parameters])));

    /// <summary>Every statement and code panel the reader saw, sent or not, with parameters.</summary>
    public static string ShownSql(this LessonTranscript transcript) =>
        string.Join("\n", transcript.Entries.Select(e => e switch
        {
            SqlEntry { Shown: true } s => string.Join("\n", [s.Text, .. s.Parameters]),
            CodeEntry c => c.Text,
            _ => null,
        }).OfType<string>());

    /// <summary>Every line of narration, markup removed.</summary>
    public static string AllNotes(this LessonTranscript transcript) => string.Join("\n", transcript.Notes);
}
