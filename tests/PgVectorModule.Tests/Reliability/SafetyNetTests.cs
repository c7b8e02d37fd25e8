using PgVectorModule.Bench;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// Failures a user causes outside the database and the embeddings server: a .env that cannot be parsed, a bench
/// option that is not a number, an output or cache path that cannot be written. Each is one sentence and its code.
/// </summary>
public sealed class SafetyNetTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("safety-net-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private async Task<(int Exit, string Output)> BenchAsync(params string[] args)
    {
        var console = new TestConsole().Width(160);
        var exit = await BenchApp.RunAsync(args, new BenchHostOptions { Console = console, Settings = database.Settings }, TestContext.Current.CancellationToken);
        return (exit, console.Output);
    }

    [Fact]
    public async Task A_malformed_env_file_names_the_file_and_the_fix_exit_1()
    {
        // DATABASE_URL comes from the environment; the broken line is another setting's (an unterminated quote).
        var result = await LessonProcess.RunLessonWithDotEnvAsync("01", "EMBEDDING_PROVIDER=local\nOPENAI_BASE_URL=\"http://localhost:8080/v1\n",
            new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString });

        Assert.True(result.ExitCode == ExitCodes.Failed, $"exit {result.ExitCode}:\n{result.Output}");
        Assert.Matches(@"The settings file \S+/\.env cannot be read: Parsing failure: .+ Each line must be NAME=value or a # comment \(see \.env\.example\)", result.Text);
        OneSentence.AssertNoCrash(result.Output);
    }

    [Fact]
    public async Task A_bench_option_that_is_not_a_number_is_refused_exit_8()
    {
        var (exit, output) = await BenchAsync("ann", "--spread", "2,5", "--output", Path.Combine(_folder, "out"));

        Assert.True(exit == ExitCodes.InvalidInput, output);
        Assert.Contains("--spread is '2,5'; it must be a number such as 0.7 (with a point, not a comma).", OneSentence.Flat(output), StringComparison.Ordinal);
        OneSentence.AssertNoCrash(output);
    }

    [Fact]
    public async Task A_bench_output_folder_that_is_a_file_is_refused_before_any_work_exit_15()
    {
        var file = Path.Combine(_folder, "not-a-folder");
        await File.WriteAllTextAsync(file, "", TestContext.Current.CancellationToken);

        var (exit, output) = await BenchAsync("ingest", "--rows", "100", "--output", file);
        var process = await LessonProcess.RunBenchAsync(new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString },
            "ingest", "--rows", "100", "--output", file);

        foreach (var (code, text) in new[] { (exit, output), (process.ExitCode, process.Output) })
        {
            Assert.True(code == ExitCodes.FileUnavailable, $"exit {code}:\n{text}");
            Assert.Contains($"The output folder {file} cannot be written", OneSentence.Flat(text), StringComparison.Ordinal);
            Assert.Contains("choose another with --output FOLDER", OneSentence.Flat(text), StringComparison.Ordinal);
            OneSentence.AssertNoCrash(text);
        }

        Assert.Null(await database.ScalarAsync<string>("SELECT to_regnamespace('bench_ingest')::text"));
    }

    [Fact]
    public async Task An_embedding_cache_folder_that_is_a_file_is_refused_exit_15()
    {
        var dataset = Path.Combine(_folder, "dataset");
        Directory.CreateDirectory(Path.Combine(dataset, "qrels"));
        await File.WriteAllTextAsync(Path.Combine(dataset, "corpus.jsonl"), """{"_id": "a", "title": "A", "text": "Vectors in PostgreSQL."}""" + "\n", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(dataset, "queries.jsonl"), """{"_id": "q", "text": "vectors"}""" + "\n", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(dataset, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq\ta\t1\n", TestContext.Current.CancellationToken);
        var cache = Path.Combine(_folder, "cache-is-a-file");
        await File.WriteAllTextAsync(cache, "", TestContext.Current.CancellationToken);

        var (exit, output) = await BenchAsync("eval", "--dataset", dataset, "--cache", cache, "--output", Path.Combine(_folder, "out"), "--throughput-sample", "0");

        Assert.True(exit == ExitCodes.FileUnavailable, output);
        Assert.Contains($"The embedding cache {cache}/", OneSentence.Flat(output), StringComparison.Ordinal);
        Assert.Contains("cannot be written", OneSentence.Flat(output), StringComparison.Ordinal);
        Assert.Contains("choose another folder with --cache DIR", OneSentence.Flat(output), StringComparison.Ordinal);
        OneSentence.AssertNoCrash(output);
    }
}
