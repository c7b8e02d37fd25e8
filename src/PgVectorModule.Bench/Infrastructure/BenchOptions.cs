using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using PgVectorModule.Problems;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>
/// The kinds of option the commands take, each refusing a bad value with the one sentence the bench prints (exit code
/// <see cref="Problems.ExitCodes.InvalidInput"/>); the defaults show in the help text.
/// </summary>
public static class BenchOptions
{
    /// <summary>A whole number of at least <paramref name="min"/>; 100_000 and 100,000 read as 100000.</summary>
    public static Option<int> Count(string name, int fallback, string description, int min = 1) => Valued(name, "N", description, fallback, text =>
        int.TryParse(text.Replace("_", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal), NumberStyles.None,
            CultureInfo.InvariantCulture, out var n) && n >= min
            ? (n, null)
            : (0, $"{name} is '{text}'; it must be a whole number of at least {min}."));

    /// <summary>A finite number written with a point.</summary>
    public static Option<double> Number(string name, double fallback, string description) => Valued(name, "X", description, fallback, text =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x)
            ? (x, null)
            : (0, $"{name} is '{text}'; it must be a number such as 0.7 (with a point, not a comma)."));

    /// <summary>A text (a path, a size), shown in the help as <paramref name="valueName"/>; null when the option is not given and has no default.</summary>
    public static Option<string?> Text(string name, string valueName, string description, string? fallback = null) =>
        Valued(name, valueName, description, fallback, text => (text, null));

    /// <summary>A switch: present or not.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    private static Option<T> Valued<T>(string name, string valueName, string description, T fallback, Func<string, (T Value, string? Problem)> parse)
    {
        var option = new Option<T>(name)
        {
            Description = description,
            HelpName = valueName,
            // Zero or one, so that a bare "--rows" reaches the validator below and gets the bench's own sentence.
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = result =>
            {
                if (result.Tokens.Count == 0)
                {
                    return fallback;
                }

                var (value, problem) = parse(result.Tokens[0].Value);
                if (problem is not null)
                {
                    result.AddError(problem);
                }

                return value;
            },
        };
        if (fallback is not null)
        {
            option.DefaultValueFactory = _ => fallback;
        }

        option.Validators.Add(result =>
        {
            if (!result.Implicit && result.Tokens.Count == 0)
            {
                result.AddError($"{name} needs a value.");
            }
        });
        return option;
    }
}
