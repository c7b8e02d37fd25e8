using System.Diagnostics;
using System.Text.RegularExpressions;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Exercises;

/// <summary>
/// scripts/check.sh as a learner runs it, in a copy of the module (never the tracked files): the fresh exercises do not
/// pass and say why; a compile error reads as the compiler's file:line; --reset brings the untouched file back; with the
/// reference solutions copied over the exercises the project builds and lesson 05's checks pass; then three learners
/// (login roles) check at once, each in schemas of their own, and a role that may not create schemas is told what to ask
/// for. One copy, built once, for the whole sequence.
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

            // The reference solutions copied over the exercises: the whole project builds with them, and a lesson's checks
            // pass (ExerciseTests runs every reference solution in-process; the whole run as a process is the fresh one above).
            Copy(Path.Combine(root, "exercises", "solutions"), Path.Combine(root, "exercises", "PgVectorModule.Exercises"), onlyFolders: "Lesson");
            var solved = await RunAsync(root, "bash", "scripts/check.sh", "05");
            Assert.True(solved.ExitCode == 0, solved.Output);
            Assert.Matches(@"All \d+ exercises pass\.", solved.Output);
            Assert.DoesNotContain("not yet", solved.Output, StringComparison.Ordinal);

            // A class on one server: three learners (login roles) check lesson 05 at once, each in schemas named for them.
            await database.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS vector");
            var learners = new List<TestRole>();
            try
            {
                for (var i = 0; i < 3; i++)
                {
                    learners.Add(await TestRole.CreateAsync(database));
                    await database.ExecuteAsync($"GRANT CREATE ON DATABASE \"{database.Name}\" TO {learners[^1].Name}");
                }

                var checks = await Task.WhenAll(learners.Select(learner => RunAsAsync(root, learner.DatabaseUrl, "bash", "scripts/check.sh", "05")));
                foreach (var (learner, check) in learners.Zip(checks))
                {
                    Assert.True(check.ExitCode == 0, check.Output);
                    Assert.Contains($"checked in a schema of its own, {learner.Name}_check_<exercise>_<random>", check.Output, StringComparison.Ordinal);
                    Assert.Matches(@"All \d+ exercises pass\.", check.Output);
                    Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_namespace WHERE nspname LIKE '{learner.Name}\\_check\\_%'"));
                }

                // A learner whose role may not create schemas: one sentence with what the instructor grants, exit 10.
                await using var denied = await TestRole.CreateAsync(database);
                var refused = await RunAsAsync(root, denied.DatabaseUrl, "bash", "scripts/check.sh", "05");
                Assert.True(refused.ExitCode == 10, refused.Output);
                Assert.Contains($"Role '{denied.Name}' may not create schemas in database {database.Name}", OneSentence.Flat(refused.Output), StringComparison.Ordinal);
                Assert.Contains($"GRANT CREATE ON DATABASE {database.Name} TO {denied.Name}.", OneSentence.Flat(refused.Output), StringComparison.Ordinal);
                Assert.DoesNotContain("   at ", refused.Output, StringComparison.Ordinal);
            }
            finally
            {
                foreach (var learner in learners)
                {
                    await learner.DisposeAsync();
                }
            }
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

    private Task<(int ExitCode, string Output)> RunAsync(string folder, string file, params string[] args) =>
        RunAsAsync(folder, database.ConnectionString.ConnectionString, file, args);

    /// <summary>Runs a program in the copy with <paramref name="databaseUrl"/> (a learner's login) as DATABASE_URL.</summary>
    private static async Task<(int ExitCode, string Output)> RunAsAsync(string folder, string databaseUrl, string file, params string[] args)
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

        start.Environment["DATABASE_URL"] = databaseUrl;
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
