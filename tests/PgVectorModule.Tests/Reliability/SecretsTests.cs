using System.Text.RegularExpressions;
using PgVectorModule.Lessons;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// The passwords the lessons give the roles they create never travel in clear: not to the server (where
/// pg_stat_statements and the server log keep statements verbatim), not to the console, not to the transcript, which
/// only its owner may read.
/// </summary>
public partial class SecretsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A password literal that is not the shown placeholder, nor a SCRAM verifier (which is not the password).</summary>
    [GeneratedRegex(@"PASSWORD\s+'(?!\*\*\*\*'|SCRAM-SHA-256\$)[^']*'", RegexOptions.IgnoreCase)]
    private static partial Regex ClearPassword();

    [Theory]
    [InlineData("07")]
    [InlineData("09")]
    public async Task A_lessons_role_password_reaches_neither_pg_stat_statements_nor_the_transcript_and_the_transcript_is_private(string number)
    {
        // A server of the test's own that records every statement, utility statements (ALTER ROLE) included.
        await using var cluster = await PrivateCluster.StartAsync(Ct, "shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track_utility=on");
        await using (var source = NpgsqlDataSource.Create(cluster.Settings.ConnectionString()))
        await using (var create = source.CreateCommand("CREATE EXTENSION pg_stat_statements"))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        // A generous connect timeout: on a loaded machine a fresh cluster may take more than Npgsql's default 15 s to answer.
        var result = await LessonProcess.RunLessonAsync(number, new Dictionary<string, string> { ["DATABASE_URL"] = cluster.Settings.DatabaseUrl + "?connect_timeout=60" });

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.Output}");
        var run = Assert.IsType<LessonTranscript>(result.Transcript);
        var roleStatements = run.SqlSent.Where(s => s.Text.Contains("ROLE", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(roleStatements);
        // Every text in the file, unescaped (JSON writes ' as \u0027).
        using (var json = System.Text.Json.JsonDocument.Parse(result.TranscriptJson!))
        {
            var texts = Strings(json.RootElement).ToList();
            Assert.Contains(texts, t => t.Contains("PASSWORD 'SCRAM-SHA-256$4096:****'", StringComparison.Ordinal));
            Assert.All(texts, t => Assert.DoesNotMatch(ClearPassword(), t));
        }

        Assert.DoesNotMatch(ClearPassword(), result.Output);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, result.TranscriptMode);

        await using var server = NpgsqlDataSource.Create(cluster.Settings.ConnectionString());
        await using var statements = server.CreateCommand("SELECT query FROM pg_stat_statements WHERE query ILIKE '%password%'");
        var recorded = new List<string>();
        await using (var reader = await statements.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                recorded.Add(reader.GetString(0));
            }
        }

        // The lesson did set a password: what the server recorded is the verifier computed on the client.
        Assert.Contains(recorded, q => q.Contains("PASSWORD 'SCRAM-SHA-256$4096:", StringComparison.Ordinal));
        Assert.All(recorded, q => Assert.DoesNotMatch(ClearPassword(), q));
    }

    private static IEnumerable<string> Strings(System.Text.Json.JsonElement element) => element.ValueKind switch
    {
        System.Text.Json.JsonValueKind.String => [element.GetString()!],
        System.Text.Json.JsonValueKind.Array => element.EnumerateArray().SelectMany(Strings),
        System.Text.Json.JsonValueKind.Object => element.EnumerateObject().SelectMany(p => Strings(p.Value)),
        _ => [],
    };
}
