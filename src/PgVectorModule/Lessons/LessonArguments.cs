using PgVectorModule.Configuration;
using PgVectorModule.Input;

namespace PgVectorModule.Lessons;

/// <summary>
/// A lesson's command line: <c>--step</c>, <c>--verbose</c>, <c>--help</c>, and for the lessons that search, the question: the words
/// after the switches, or <c>--question-file PATH</c>, or <c>-</c> to read it from standard input. Read before the
/// lesson touches the database or loads a model, so a command line that cannot work is refused at once.
/// </summary>
/// <param name="Verbose">Show everything in full: whole statements and scripts, whole plans, every row (by default long
/// ones are shortened on the console; the transcript always holds them whole).</param>
public sealed record LessonArguments(bool Step, bool Help, string? Question, bool Verbose = false)
{
    /// <summary>
    /// The most text read from a question file or standard input. A question is not a document: what is read is cut
    /// to <c>SearchInput.MaxQueryLength</c> anyway, and this keeps a wrong file (a log, a dump) from filling memory.
    /// </summary>
    public const int MaxQuestionFileCharacters = 1_000_000;

    public static string Usage(LessonInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        var run = $"dotnet run --project lessons/{info.Folder} --";
        return info.TakesQuestion
            ? $"{run} [--step] [--verbose] [\"your question\" | --question-file PATH | -]"
            : $"{run} [--step] [--verbose]";
    }

    public static async Task<LessonArguments> ParseAsync(IReadOnlyList<string> args, LessonInfo info, TextReader standardInput, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(standardInput);
        bool step = false, help = false, verbose = false, fromStandardInput = false;
        string? file = null;
        var words = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--step":
                    step = true;
                    break;
                case "--verbose" or "-v":
                    verbose = true;
                    break;
                case "--help" or "-h":
                    help = true;
                    break;
                case "--question-file" when info.TakesQuestion:
                    file = i + 1 < args.Count ? args[++i] : throw Refuse(info, "--question-file needs a path after it");
                    break;
                case "-" when info.TakesQuestion:
                    fromStandardInput = true;
                    break;
                default:
                    words.Add(args[i]);
                    break;
            }
        }

        if (help)
        {
            return new LessonArguments(step, Help: true, Question: null, verbose);
        }

        if (!info.TakesQuestion && words.Count > 0)
        {
            throw Refuse(info, $"it takes no arguments, and was given {Describe(words)}");
        }

        if ((words.Count > 0 ? 1 : 0) + (file is null ? 0 : 1) + (fromStandardInput ? 1 : 0) > 1)
        {
            throw Refuse(info, "give the question one way only: as words, with --question-file, or on standard input with -");
        }

        var question = words.Count > 0 ? string.Join(' ', words)
            : file is not null ? await ReadFileAsync(file, cancellationToken)
            : fromStandardInput ? await ReadLimitedAsync(standardInput, "standard input", cancellationToken)
            : null;
        return new LessonArguments(step, Help: false, question, verbose);
    }

    private static async Task<string> ReadFileAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            using var reader = new StreamReader(path);
            return await ReadLimitedAsync(reader, $"'{path}'", cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new SetupException($"Cannot read the question file '{path}' ({e.Message.TrimEnd('.')}): give the path of a text file holding the question.", ExitCodes.InvalidInput, e);
        }
    }

    private static async Task<string> ReadLimitedAsync(TextReader reader, string what, CancellationToken cancellationToken)
    {
        var buffer = new char[MaxQuestionFileCharacters + 1];
        var read = 0;
        int n;
        while (read < buffer.Length && (n = await reader.ReadAsync(buffer.AsMemory(read), cancellationToken)) > 0)
        {
            read += n;
        }

        return read > MaxQuestionFileCharacters
            ? throw new SetupException($"The question in {what} is over {MaxQuestionFileCharacters:N0} characters: a question is not a document; put the question itself in the file.", ExitCodes.InvalidInput)
            : new string(buffer, 0, read);
    }

    private static SetupException Refuse(LessonInfo info, string why) =>
        new($"Lesson {info.Number} cannot run this way: {why}. Usage: {Usage(info)}", ExitCodes.Usage);

    /// <summary>The arguments as a user would recognise them, without printing a 100,000-character one whole.</summary>
    private static string Describe(IReadOnlyList<string> words)
    {
        var first = words[0].Length > 40 ? $"'{TextPrefix.Of(words[0], 40)}...' ({words[0].Length:N0} characters)" : $"'{words[0]}'";
        return words.Count == 1 ? first : $"{words.Count} ({first} first)";
    }
}
