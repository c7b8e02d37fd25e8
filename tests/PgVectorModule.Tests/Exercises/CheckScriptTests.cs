using System.Diagnostics;
using System.Text.RegularExpressions;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Exercises;

/// <summary>
/// scripts/check.sh as a learner runs it, in a copy of the module (never the tracked files): the fresh exercises do not
/// pass and say why; a compile error reads as the compiler's file:line; --reset brings the untouched file back; with the
/// reference solutions copied over the exercises everything passes. One copy, built once, for the whole sequence.
/// </summary>
public class CheckScriptTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    // docker-compose.yml: the library builds the image it pins into itself (the lesson host's container).
    private static readonly string[] Copied = ["Directory.Build.props", "Directory.Packages.props", "global.json", ".editorconfig", "docker-compose.yml", "scripts", "src/PgVectorModule", "exercises"];

    [Fact]
    public async Task A_learner_goes_from_failing_exercises_to_passing_ones()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("scripts/check.sh is a bash script for Linux and macOS.");
        }

        var root = Directory.CreateTempSubdirectory("pgvm-check-").FullName;
        try
        {
            foreach (var path in Copied)
            {
                Copy(Path.Combine(RepositoryRoot.Path, path), Path.Combine(root, path));
            }

            // A git checkout of its own, as a clone is: --reset restores from it.
            await RunAsync(root, "git", "init", "-q");
            await RunAsync(root, "git", "add", "-A");
            await RunAsync(root, "git", "-c", "user.name=check", "-c", "user.email=check@localhost", "commit", "-q", "-m", "copy");

            // Fresh: nothing passes, every exercise says why and gives its hint, no stack trace, a non-zero exit.
            var fresh = await RunAsync(root, "bash", "scripts/check.sh");
            Assert.True(fresh.ExitCode == 1, fresh.Output);
            Assert.Equal(0, Regex.Count(fresh.Output, @"^\s+passed\s", RegexOptions.Multiline));
            Assert.True(Regex.Count(fresh.Output, @"^\s+not yet\s+\d\d\.\d", RegexOptions.Multiline) >= 18, fresh.Output);
            Assert.Equal(Regex.Count(fresh.Output, @"^\s+not yet", RegexOptions.Multiline), Regex.Count(fresh.Output, @"^\s+hint:", RegexOptions.Multiline));
            Assert.Contains("0 of ", fresh.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", fresh.Output, StringComparison.Ordinal);

            // A compile error: the compiler's file:line:column and message, nothing else.
            var exercise = Path.Combine(root, "exercises", "PgVectorModule.Exercises", "Lesson05", "VectorSearchExercises.cs");
            var untouched = await File.ReadAllTextAsync(exercise, TestContext.Current.CancellationToken);
            var broken = untouched.Replace("throw new NotImplementedException(\"TODO: write CandidatesAsync\");", "return dataSource.Nothing(count)", StringComparison.Ordinal);
            Assert.NotEqual(untouched, broken);
            await File.WriteAllTextAsync(exercise, broken, TestContext.Current.CancellationToken);
            var line = broken[..broken.IndexOf("return dataSource.Nothing", StringComparison.Ordinal)].Count(c => c == '\n') + 1;
            var compile = await RunAsync(root, "bash", "scripts/check.sh", "05");
            Assert.True(compile.ExitCode == 65, compile.Output);
            Assert.Matches($@"exercises/PgVectorModule.Exercises/Lesson05/VectorSearchExercises.cs:{line}:\d+: error CS\d+: ", compile.Output);
            Assert.DoesNotContain("   at ", compile.Output, StringComparison.Ordinal);

            // --reset: the untouched file is back.
            var reset = await RunAsync(root, "bash", "scripts/check.sh", "--reset", "05");
            Assert.True(reset.ExitCode == 0, reset.Output);
            Assert.Equal(untouched, await File.ReadAllTextAsync(exercise, TestContext.Current.CancellationToken));

            // The reference solutions copied over the exercises: everything passes.
            Copy(Path.Combine(root, "exercises", "solutions"), Path.Combine(root, "exercises", "PgVectorModule.Exercises"), onlyFolders: "Lesson");
            var solved = await RunAsync(root, "bash", "scripts/check.sh");
            Assert.True(solved.ExitCode == 0, solved.Output);
            Assert.Matches(@"All \d+ exercises pass\.", solved.Output);
            Assert.DoesNotContain("not yet", solved.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Copies a file or a folder, leaving out build output (bin, obj); with <paramref name="onlyFolders"/>, only the top-level folders named so.</summary>
    private static void Copy(string from, string to, string? onlyFolders = null)
    {
        if (File.Exists(from))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(from, to, overwrite: true);
            return;
        }

        Directory.CreateDirectory(to);
        foreach (var file in onlyFolders is null ? Directory.GetFiles(from) : [])
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }

        foreach (var folder in Directory.GetDirectories(from))
        {
            var name = Path.GetFileName(folder);
            if (name is "bin" or "obj" || (onlyFolders is not null && !name.StartsWith(onlyFolders, StringComparison.Ordinal)))
            {
                continue;
            }

            Copy(folder, Path.Combine(to, name));
        }
    }

    private async Task<(int ExitCode, string Output)> RunAsync(string folder, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var name in new[] { "TEST_DATABASE_URL", "DATABASE_URL", "POSTGRES_PORT", "DB_MODE", "PGPASSWORD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE" })
        {
            start.Environment.Remove(name);
        }

        start.Environment["DATABASE_URL"] = database.ConnectionString.ConnectionString;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromMinutes(15));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await output + await errors);
    }
}
