using System.Globalization;
using PgVectorModule.Configuration;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>The command line: a command, then <c>--name value</c> options and <c>--flag</c> switches.</summary>
public sealed class BenchArguments
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _read = new(StringComparer.OrdinalIgnoreCase);

    private BenchArguments(string? command) => Command = command;

    public string? Command { get; }

    public static BenchArguments Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var parsed = new BenchArguments(args.Count > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : null);
        for (var i = parsed.Command is null ? 0 : 1; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new SetupException($"'{arg}' is not an option; options look like --name value.", ExitCodes.InvalidInput);
            }

            var name = arg[2..];
            string? value = null;
            if (name.Contains('=', StringComparison.Ordinal))
            {
                value = name[(name.IndexOf('=', StringComparison.Ordinal) + 1)..];
                name = name[..name.IndexOf('=', StringComparison.Ordinal)];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = args[++i];
            }

            parsed._options[name] = value;
        }

        return parsed;
    }

    public bool Flag(string name)
    {
        _read.Add(name);
        return _options.ContainsKey(name);
    }

    public string? Text(string name)
    {
        _read.Add(name);
        if (!_options.TryGetValue(name, out var value))
        {
            return null;
        }

        return value ?? throw new SetupException($"--{name} needs a value.", ExitCodes.InvalidInput);
    }

    public int Int(string name, int fallback, int min = 1)
    {
        var text = Text(name);
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text.Replace("_", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min
            ? n
            : throw new SetupException($"--{name} is '{text}'; it must be a whole number of at least {min}.", ExitCodes.InvalidInput);
    }

    public double Double(string name, double fallback)
    {
        var text = Text(name);
        if (text is null)
        {
            return fallback;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x)
            ? x
            : throw new SetupException($"--{name} is '{text}'; it must be a number such as 0.7 (with a point, not a comma).", ExitCodes.InvalidInput);
    }

    /// <summary>Refuses options no command read (a typo should not silently run the defaults).</summary>
    public void EnsureAllRead()
    {
        var unknown = _options.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new SetupException($"Unknown option{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(u => "--" + u))} for '{Command}'; run without arguments to see the usage.", ExitCodes.InvalidInput);
        }
    }
}
