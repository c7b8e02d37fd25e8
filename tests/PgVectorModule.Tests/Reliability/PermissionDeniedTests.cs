using PgVectorModule.Configuration;
using PgVectorModule.Lessons.Lesson01;
using PgVectorModule.Lessons.Lesson03;
using PgVectorModule.Lessons.Lesson04;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// Roles without the rights the lessons assume (42501), as class servers and managed services hand them out: each
/// refusal is one sentence naming what the role lacks and who can fix it, exit 10, in-process and as the built
/// lesson's process. With an administrator's help (the extension made, a schema made for the role) the lessons run
/// and say what they skipped. Each test's role is its own and is dropped afterwards.
/// </summary>
public class PermissionDeniedTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static void AssertExplained(int exitCode, string output, params string[] phrases)
    {
        Assert.True(exitCode == ExitCodes.PermissionDenied, $"exit {exitCode}:\n{output}");
        foreach (var phrase in phrases)
        {
            Assert.True(OneSentence.Flat(output).Contains(phrase, StringComparison.Ordinal), $"\"{phrase}\" not in:\n{output}");
        }

        OneSentence.AssertNoCrash(output);
    }

    [Fact]
    public async Task A_role_that_may_not_create_schemas_is_told_what_to_grant_exit_10()
    {
        await using var role = await TestRole.CreateAsync(database);
        string[] sentence =
        [
            $"Role '{role.Name}' may not create schema {role.Name}_lesson01 in database {database.Name}",
            $"(permission denied for database {database.Name})",
            $"GRANT CREATE ON DATABASE {database.Name} TO {role.Name}",
            $"CREATE SCHEMA {role.Name}_lesson01 AUTHORIZATION {role.Name}",
        ];

        var inProcess = await LessonRunner.RunAsync<EfCoreBasicsLesson>(role.Settings);
        var process = await LessonProcess.RunLessonAsync("01", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl });

        AssertExplained(inProcess.ExitCode, inProcess.Output, sentence);
        AssertExplained(process.ExitCode, process.Output, sentence);
        Assert.DoesNotContain("Step 1", process.Output, StringComparison.Ordinal);
        Assert.Null(await database.ScalarAsync<string>($"SELECT to_regnamespace('{role.Name}_lesson01')::text"));
    }

    [Fact]
    public async Task A_role_that_may_not_create_the_vector_extension_is_told_who_can_exit_10_before_any_table()
    {
        await using var role = await TestRole.CreateAsync(database);
        await database.ExecuteAsync($"DROP EXTENSION IF EXISTS vector CASCADE; GRANT CREATE ON DATABASE \"{database.Name}\" TO {role.Name}");
        string[] sentence =
        [
            $"Role '{role.Name}' may not create the vector extension in database {database.Name}",
            "(permission denied to create extension \"vector\"): only a superuser may create it (pgvector is not a trusted extension)",
            $"Ask an administrator to run CREATE EXTENSION vector once in {database.Name}",
        ];

        var inProcess = await LessonRunner.RunAsync<PgvectorSetupLesson>(role.Settings);
        var process = await LessonProcess.RunLessonAsync("04", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl });

        AssertExplained(inProcess.ExitCode, inProcess.Output, sentence);
        AssertExplained(process.ExitCode, process.Output, sentence);
        Assert.Null(await database.ScalarAsync<string>($"SELECT to_regclass('{role.Name}_lesson04.vector_documents')::text"));
    }

    [Fact]
    public async Task With_the_extension_and_a_schema_made_by_an_administrator_the_lessons_run_and_say_what_they_skipped()
    {
        await using var role = await TestRole.CreateAsync(database);
        await database.ExecuteAsync(
            $"CREATE EXTENSION IF NOT EXISTS vector; CREATE SCHEMA {role.Name}_lesson03 AUTHORIZATION {role.Name}; CREATE SCHEMA {role.Name}_lesson04 AUTHORIZATION {role.Name}");

        var migrations = await LessonRunner.RunAsync<MigrationsLesson>(role.Settings);
        var again = await LessonRunner.RunAsync<MigrationsLesson>(role.Settings);
        var setup = await LessonProcess.RunLessonAsync("04", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl });

        foreach (var (exit, output) in new[] { (migrations.ExitCode, migrations.Output), (again.ExitCode, again.Output), (setup.ExitCode, setup.Output) })
        {
            Assert.True(exit == ExitCodes.Success, output);
            Assert.Contains($"Role '{role.Name}' may not create schemas in {database.Name}; it works in schema {role.Name}_lesson0", OneSentence.Flat(output), StringComparison.Ordinal);
            Assert.Contains("so CREATE SCHEMA was skipped.", OneSentence.Flat(output), StringComparison.Ordinal);
        }

        Assert.Contains($"so schema {role.Name}_lesson03 (made for it) stays and only its tables are dropped", OneSentence.Flat(again.Output), StringComparison.Ordinal);
        Assert.Equal(role.Name, await database.ScalarAsync<string>($"SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = '{role.Name}_lesson03'"));
        Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>($"SELECT count(*) FROM {role.Name}_lesson04.vector_documents"));
    }

    [Fact]
    public async Task A_schema_of_another_role_is_refused_before_anything_in_it_is_touched_exit_10()
    {
        await using var role = await TestRole.CreateAsync(database);
        var owner = database.ConnectionString.Username;
        // The role's own schema name, made first by another role (the administrator, who ran LEARNER=<role> say).
        var schema = $"{role.Name}_lesson01";
        await database.ExecuteAsync(
            $"GRANT CREATE ON DATABASE \"{database.Name}\" TO {role.Name}; CREATE SCHEMA {schema}; CREATE TABLE {schema}.documents (id int); INSERT INTO {schema}.documents VALUES (1)");
        string[] sentence =
        [
            $"Schema {schema} in database {database.Name}",
            $"belongs to role {owner}, and role '{role.Name}' may not create tables in it: run this as {owner}",
            $"DROP SCHEMA {schema} CASCADE",
        ];

        try
        {
            var inProcess = await LessonRunner.RunAsync<EfCoreBasicsLesson>(role.Settings);
            var process = await LessonProcess.RunLessonAsync("01", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl });

            AssertExplained(inProcess.ExitCode, inProcess.Output, sentence);
            AssertExplained(process.ExitCode, process.Output, sentence);
            Assert.Equal(1, await database.ScalarAsync<long>($"SELECT count(*) FROM {schema}.documents"));
        }
        finally
        {
            await database.ExecuteAsync($"DROP SCHEMA {schema} CASCADE");
        }
    }

    [Fact]
    public async Task A_table_of_another_role_in_a_schema_shared_with_the_role_is_named_with_the_fix_exit_10()
    {
        await using var role = await TestRole.CreateAsync(database);
        // A schema the administrator shares with the role, holding a table the administrator made (it ran the lesson first).
        var schema = $"{role.Name}_lesson02";
        await database.ExecuteAsync($"CREATE SCHEMA {schema}; GRANT USAGE, CREATE ON SCHEMA {schema} TO {role.Name}; CREATE TABLE {schema}.documents (id int)");
        string[] sentence =
        [
            $"refused role '{role.Name}' (must be owner of table documents): the role lacks a privilege this step needs",
            "run as that role, or have it drop the lesson's schema",
        ];

        try
        {
            var inProcess = await LessonRunner.RunAsync<PgVectorModule.Lessons.Lesson02.CrudLesson>(role.Settings);
            var process = await LessonProcess.RunLessonAsync("02", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl });

            AssertExplained(inProcess.ExitCode, inProcess.Output, sentence);
            AssertExplained(process.ExitCode, process.Output, sentence);
            Assert.Equal(0, await database.ScalarAsync<long>($"SELECT count(*) FROM {schema}.documents"));
        }
        finally
        {
            await database.ExecuteAsync($"DROP SCHEMA {schema} CASCADE");
        }
    }
}
