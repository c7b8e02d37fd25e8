using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using PgVectorModule.Input;
using PgVectorModule.Problems;

namespace PgVectorModule.Lessons;

/// <summary>
/// A lesson's command line, parsed by System.CommandLine: <c>--step</c>, <c>--verbose</c>, <c>--help</c>, and for the
/// lessons that search, the question: the words after the switches, or <c>--question-file PATH</c>, or <c>-</c> to read
/// it from standard input. Read before the lesson touches the database or loads a model, so a command line that cannot
/// work is refused at once, in one sentence that ends with the usage and exit code <see cref="ExitCodes.Usage"/>.
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

    private const string StepOption = "--step";
    private const string VerboseOption = "--verbose";
    private const string QuestionFileOption = "--question-file";
    private const string StandardInput = "-";

    /// <summary>
    /// No response files: a question such as "@mentions in PostgreSQL" is a question, not the name of a file of arguments.
    /// </summary>
    private static readonly ParserConfiguration Parser = new() { ResponseFileTokenReplacer = null };

    public static string Usage(LessonInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        var run = $"dotnet run --project lessons/{info.Folder} --";
        return info.TakesQuestion
            ? $"{run} [--step] [--verbose] [\"your question\" | --question-file PATH | -]"
            : $"{run} [--step] [--verbose]";
    }

    /// <summary>
    /// The lesson's command, under a parent named after the script that runs it, so the help's usage line reads as the
    /// learner types it (<c>scripts/lesson.sh 05 [&lt;question&gt;...] [options]</c>). A new tree per call: options carry no
    /// state between parses, so tests run lessons side by side.
    /// </summary>
    private sealed class Grammar
    {
        public Grammar(LessonInfo info)
        {
            var lesson = new Command(info.Number,
                $"Lesson {info.Number}: {info.Title}. It also runs as: dotnet run --project lessons/{info.Folder} -- [options]")
            {
                Step,
                Verbose,
                new HelpOption("--help", "-h"),
            };
            if (info.TakesQuestion)
            {
                Words = new Argument<string[]>("question")
                {
                    Description = "What to search for (default: the lesson's own question); - reads it from standard input; put -- before a question that starts with -.",
                    Arity = ArgumentArity.ZeroOrMore,
                };
                File = new Option<string>(QuestionFileOption)
                {
                    Description = "Read the question from a file (for a long one).",
                    HelpName = "PATH",
                };
                lesson.Arguments.Add(Words);
                lesson.Options.Add(File);
            }

            Root = new Command("scripts/lesson.sh") { lesson };
        }

        public Command Root { get; }

        public Option<bool> Step { get; } = new(StepOption)
        {
            Description = "Pause before each step (for walking a class through it; ignored when input is redirected).",
            Arity = ArgumentArity.Zero,
        };

        public Option<bool> Verbose { get; } = new(VerboseOption, "-v")
        {
            Description = "Show everything in full: whole scripts and function bodies, whole plans, every row.",
            Arity = ArgumentArity.Zero,
        };

        /// <summary>The words of the question; null for a lesson that takes none.</summary>
        public Argument<string[]>? Words { get; }

        public Option<string>? File { get; }

        public ParseResult Parse(LessonInfo info, IEnumerable<string> args) => Root.Parse([info.Number, .. args], Parser);
    }

    /// <summary>The lesson's help, as System.CommandLine writes it, <paramref name="width"/> columns wide.</summary>
    public static string HelpText(LessonInfo info, int width)
    {
        ArgumentNullException.ThrowIfNull(info);
        var parse = new Grammar(info).Parse(info, ["--help"]);
        if (parse.Action is HelpAction help)
        {
            help.MaxWidth = width;
        }

        using var writer = new StringWriter();
        parse.Invoke(new InvocationConfiguration { Output = writer });
        return writer.ToString();
    }

    public static async Task<LessonArguments> ParseAsync(IReadOnlyList<string> args, LessonInfo info, TextReader standardInput, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(standardInput);
        var grammar = new Grammar(info);
        var parse = grammar.Parse(info, args);
        var step = parse.GetValue(grammar.Step);
        var verbose = parse.GetValue(grammar.Verbose);
        if (parse.Action is HelpAction)
        {
            return new LessonArguments(step, Help: true, Question: null, verbose);
        }

        if (SwitchWithValue(args) is { } given)
        {
            throw Refuse(info, $"{given[..given.IndexOf('=', StringComparison.Ordinal)]} is a switch and takes no value, and was given '{given}' (write it alone)");
        }

        if (UnknownOption(parse) is { } unknown)
        {
            throw Refuse(info, info.TakesQuestion
                ? $"{Describe([unknown])} is not one of its options (a question that starts with - goes after --)"
                : $"{Describe([unknown])} is not one of its options");
        }

        if (parse.UnmatchedTokens.Count > 0)
        {
            throw Refuse(info, $"it takes no arguments, and was given {Describe(parse.UnmatchedTokens)}");
        }

        if (parse.Errors.Count > 0)
        {
            throw Refuse(info, (grammar.File is null ? null : parse.GetResult(grammar.File)) switch
            {
                { Tokens.Count: 0 } => $"{QuestionFileOption} needs a path after it",
                { Tokens.Count: > 1 } => $"{QuestionFileOption} takes one path",
                _ => parse.Errors[0].Message.TrimEnd('.'),
            });
        }

        if (grammar.Words is null || grammar.File is null)
        {
            return new LessonArguments(step, Help: false, Question: null, verbose);
        }

        var words = parse.GetValue(grammar.Words) ?? [];
        var fromStandardInput = words.Contains(StandardInput);
        words = [.. words.Where(w => w != StandardInput)];
        var file = parse.GetValue(grammar.File);
        if ((words.Length > 0 ? 1 : 0) + (file is null ? 0 : 1) + (fromStandardInput ? 1 : 0) > 1)
        {
            throw Refuse(info, "give the question one way only: as words, with --question-file, or on standard input with -");
        }

        var question = words.Length > 0 ? string.Join(' ', words)
            : file is not null ? await ReadFileAsync(file, cancellationToken)
            : fromStandardInput ? await ReadLimitedAsync(standardInput, "standard input", cancellationToken)
            : null;
        return new LessonArguments(step, Help: false, question, verbose);
    }

    /// <summary>
    /// A switch written with a value before <c>--</c> (<c>--step=true</c>, <c>-v=yes</c>): the parser would read the value
    /// as a word of the question, and run the lesson for a question it was never asked.
    /// </summary>
    private static string? SwitchWithValue(IReadOnlyList<string> args) =>
        args.TakeWhile(a => a != "--").FirstOrDefault(a =>
            a.IndexOf('=', StringComparison.Ordinal) is > 0 and var at && a[..at] is StepOption or VerboseOption or "-v");

    /// <summary>
    /// The first word before <c>--</c> that looks like an option the lesson does not have (System.CommandLine would
    /// take it as a word of the question), unless it is the path after <c>--question-file</c>.
    /// </summary>
    private static string? UnknownOption(ParseResult parse)
    {
        Token? previous = null;
        foreach (var token in parse.Tokens)
        {
            if (token.Type == TokenType.DoubleDash)
            {
                return null;
            }

            if (token is { Type: TokenType.Argument, Value: ['-', _, ..] }
                && previous is not { Type: TokenType.Option, Value: QuestionFileOption })
            {
                return token.Value;
            }

            previous = token;
        }

        return null;
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
