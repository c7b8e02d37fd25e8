using System.Globalization;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Scripts;

/// <summary>
/// An explicit DATABASE_URL (environment or .env) is the server every script uses, while a local cluster of db.sh's
/// runs beside it: where it answers, db.sh up and lesson.sh pass it on unchanged; where it does not, they say so in one
/// sentence and stop, and no lesson runs. lesson.sh's last step, dotnet run, is stood in for by a dotnet on PATH that
/// records the DATABASE_URL it was handed (the lesson itself is tested as a process elsewhere).
/// </summary>
// Bash scripts with Unix file modes: ScriptCheckout skips them on Windows.
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Collection(LocalClusterCheckout.Collection)]
public sealed class ExplicitDatabaseUrlTests : IDisposable
{
    private readonly LocalClusterCheckout _local;
    private readonly PostgresServer _server;
    private readonly string _bin;
    private readonly string _record;

    public ExplicitDatabaseUrlTests(LocalClusterCheckout local, PostgresServer server)
    {
        _local = local;
        _server = server;
        Directory.CreateDirectory(Path.Combine(local.Checkout.Root, "lessons", "01-EfCoreBasics"));
        _bin = Directory.CreateTempSubdirectory("pgvm-dotnet-").FullName;
        _record = Path.Combine(_bin, "dotnet-was-given");
        var dotnet = Path.Combine(_bin, "dotnet");
        File.WriteAllText(dotnet, "#!/bin/sh\nprintf '%s' \"$DATABASE_URL\" > \"$0-was-given\"\n");
        File.SetUnixFileMode(dotnet, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>A URL whose port nothing listens on (one the system just handed out and took back).</summary>
    private static string NothingListens() =>
        $"postgresql://postgres:whatever@127.0.0.1:{ScriptCheckout.FreePort().ToString(CultureInfo.InvariantCulture)}/agent_db";

    private Dictionary<string, string?> With(string? databaseUrl) => new()
    {
        ["DATABASE_URL"] = databaseUrl,
        ["PATH"] = _bin + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"),
    };

    [Fact]
    public async Task Db_sh_up_stops_with_one_sentence_when_the_explicit_url_does_not_answer()
    {
        var url = NothingListens();
        var port = Configuration.DatabaseUrl.Parse(url).Port;

        foreach (var command in new[] { "up", "url" })
        {
            var result = await _local.Checkout.RunAsync("db.sh", [command], With(url));

            Assert.Equal(1, result.ExitCode);
            Assert.Equal("", result.StandardOutput);
            Assert.Equal(
                $"[db] error: DATABASE_URL (127.0.0.1:{port}) does not answer: start that server, or unset DATABASE_URL (environment and .env) to use the database scripts/db.sh starts.\n",
                result.StandardError);
        }
    }

    [Fact]
    public async Task A_url_from_dot_env_is_as_explicit_as_one_from_the_environment()
    {
        var url = NothingListens();
        var dotEnv = Path.Combine(_local.Checkout.Root, ".env");
        await File.WriteAllTextAsync(dotEnv, $"DATABASE_URL={url}\n", TestContext.Current.CancellationToken);
        try
        {
            var result = await _local.Checkout.RunAsync("db.sh", ["up"], With(null));

            Assert.Equal(1, result.ExitCode);
            Assert.Equal("", result.StandardOutput);
            Assert.Contains("does not answer", result.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(dotEnv);
        }
    }

    [Fact]
    public async Task Lesson_sh_runs_no_lesson_when_the_explicit_url_does_not_answer()
    {
        var result = await _local.Checkout.RunAsync("lesson.sh", ["01"], With(NothingListens()));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("does not answer: start that server, or unset DATABASE_URL", result.StandardError, StringComparison.Ordinal);
        Assert.False(File.Exists(_record), "lesson.sh ran the lesson on another server than DATABASE_URL's.");
    }

    [Fact]
    public async Task An_explicit_url_that_answers_is_the_one_db_sh_and_lesson_sh_use_although_a_local_cluster_runs()
    {
        // The tests' own server: another server than the copy's local cluster, and it answers.
        var other = _server.Admin.ConnectionString;
        Assert.NotEqual(_local.ConnectionString.Port, _server.Admin.Port);

        var up = await _local.Checkout.RunAsync("db.sh", ["up"], With(other));
        var lesson = await _local.Checkout.RunAsync("lesson.sh", ["01"], With(other));

        Assert.Equal((0, other), (up.ExitCode, up.StandardOutput.Trim()));
        Assert.True(lesson.ExitCode == 0, lesson.Output);
        Assert.Equal(other, File.ReadAllText(_record));
        if (_server.Admin.Password is { Length: >= 12 } password)
        {
            Assert.DoesNotContain(password, up.StandardError + lesson.StandardError, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Without_an_explicit_url_lesson_sh_uses_the_local_cluster()
    {
        var lesson = await _local.Checkout.RunAsync("lesson.sh", ["01"], With(null));

        Assert.True(lesson.ExitCode == 0, lesson.Output);
        Assert.Equal(_local.Url, File.ReadAllText(_record));
    }

    public void Dispose() => Directory.Delete(_bin, recursive: true);
}
