using System.Diagnostics;
using PgVectorModule.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace PgVectorModule.Tests.Scripts;

/// <summary>
/// What bash or a container reads keeps LF line endings in every checkout, Windows' included (Git for Windows checks
/// text out with CRLF, and "#!/usr/bin/env bash\r" or "set -euo pipefail\r" then fails): asked of git itself, with
/// <c>git check-attr</c>, for every tracked shell script, every file docker-compose.yml mounts, and the files read as
/// settings.
/// </summary>
public class LineEndingTests
{
    [Fact]
    public async Task Every_script_and_every_file_compose_mounts_is_checked_out_with_lf()
    {
        var files = new List<string>(await TrackedAsync("*.sh"));
        files.AddRange(ComposeMounts());
        files.AddRange([".ci/run", "docker-compose.yml", ".env.example"]);
        Assert.Contains("scripts/compose/allow-replication.sh", files);
        Assert.Contains("scripts/lib/settings.sh", files);

        var attributes = await GitAsync(["check-attr", "eol", "--", .. files.Distinct()]);

        var lines = attributes.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(files.Distinct().Count(), lines.Length);
        Assert.All(lines, line => Assert.EndsWith(": eol: lf", line, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Everything_else_is_text_auto()
    {
        var attributes = await GitAsync(["check-attr", "text", "--", "README.md", "src/PgVectorModule/PgVectorModule.csproj", "PgVectorModule.sln"]);

        Assert.All(attributes.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.EndsWith(": text: auto", line, StringComparison.Ordinal));
    }

    private static IEnumerable<string> ComposeMounts() =>
        ComposeFile.Services.Values
            .Where(s => s.Children.ContainsKey(new YamlScalarNode("volumes")))
            .SelectMany(s => ((YamlSequenceNode)s.Children[new YamlScalarNode("volumes")]).Children.Select(v => ((YamlScalarNode)v).Value!))
            .Where(v => v.StartsWith("./", StringComparison.Ordinal))
            .Select(v => v.Split(':')[0][2..]);

    private static async Task<string[]> TrackedAsync(string pattern) =>
        (await GitAsync(["ls-files", "--", pattern])).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private static async Task<string> GitAsync(IReadOnlyList<string> args)
    {
        if (ScriptCheckout.FindProgram(OperatingSystem.IsWindows() ? "git.exe" : "git") is null)
        {
            Assert.Skip("git is not installed: the line-ending rules are git's (.gitattributes).");
        }

        if (!Directory.Exists(Path.Combine(RepositoryRoot.Path, ".git")) && !File.Exists(Path.Combine(RepositoryRoot.Path, ".git")))
        {
            Assert.Skip("The repository is not a git checkout here (an exported copy): there are no line-ending rules to ask git about.");
        }

        var start = new ProcessStartInfo("git") { WorkingDirectory = RepositoryRoot.Path, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var git = Process.Start(start) ?? throw new InvalidOperationException("git did not start.");
        var output = git.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = git.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await git.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(git.ExitCode == 0, $"git {string.Join(' ', args)}: {await errors}");
        return await output;
    }
}
