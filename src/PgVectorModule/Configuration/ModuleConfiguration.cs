using DotNetEnv;
using DotNetEnv.Configuration;
using Microsoft.Extensions.Configuration;
using PgVectorModule.Problems;

namespace PgVectorModule.Configuration;

/// <summary>
/// The one road every setting takes, as efcore.pg's test environment builds it: one <see cref="IConfiguration"/>,
/// environment variables over the nearest <c>.env</c> file (found in the current folder or a parent, read by DotNetEnv's
/// provider without writing the process environment). The lessons, the bench, <c>dotnet ef</c>'s factory and the
/// tests' server fixture all read through it; <see cref="ModuleSettings"/> binds it once.
/// </summary>
public static class ModuleConfiguration
{
    public const string DotEnvFileName = ".env";

    /// <summary>Where a value came from, as the preflight names it.</summary>
    public const string FromEnvironment = "environment";

    /// <inheritdoc cref="FromEnvironment"/>
    public const string FromDotEnv = ".env";

    /// <summary>Reads the environment and the nearest .env; throws <see cref="SetupException"/> when .env cannot be parsed.</summary>
    public static IConfigurationRoot Build(string? startDirectory = null)
    {
        var builder = new ConfigurationBuilder();
        var dotEnv = FindDotEnv(startDirectory ?? Directory.GetCurrentDirectory());
        if (dotEnv is not null)
        {
            builder.AddDotNetEnv(dotEnv, LoadOptions.NoEnvVars());
        }

        builder.AddEnvironmentVariables();
        try
        {
            return builder.Build();
        }
        catch (Exception e) when (dotEnv is not null && e is not OutOfMemoryException)
        {
            // DotNetEnv's parser reports a malformed line with its own exception type (Sprache's), which callers cannot name.
            throw new SetupException(
                $"The settings file {dotEnv} cannot be read: {e.Message.Split('\n')[0].Trim()}. Each line must be NAME=value or a # comment " +
                "(see .env.example); fix or remove that line, or delete the file to use the defaults.",
                ExitCodes.Failed, e);
        }
    }

    /// <summary>
    /// A setting's value: the environment's when it is set and not blank, else .env's, else null. A blank variable
    /// counts as unset, as in the scripts, so <c>DATABASE_URL= scripts/lesson.sh</c> still finds .env's.
    /// </summary>
    public static string? Get(IConfigurationRoot configuration, string name) => Find(configuration, name).Value;

    /// <summary>Where <see cref="Get"/> found the value: <see cref="FromEnvironment"/>, <see cref="FromDotEnv"/>, or null when neither has it.</summary>
    public static string? SourceOf(IConfigurationRoot configuration, string name) => Find(configuration, name).Source;

    private static (string? Value, string? Source) Find(IConfigurationRoot configuration, string name)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(name);
        // Later providers win: walk them from the last (the environment) back to the first (.env).
        foreach (var provider in configuration.Providers.Reverse())
        {
            if (provider.TryGet(name, out var value) && !string.IsNullOrWhiteSpace(value))
            {
                return (value.Trim(), provider is EnvConfigurationProvider ? FromDotEnv : FromEnvironment);
            }
        }

        return (null, null);
    }

    private static string? FindDotEnv(string directory)
    {
        for (var dir = new DirectoryInfo(directory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, DotEnvFileName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
