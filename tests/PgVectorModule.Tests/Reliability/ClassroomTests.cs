using PgVectorModule.Configuration;
using PgVectorModule.Data;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// A class on one server: several learners (login roles of the tests' own, dropped afterwards) run the same lesson at
/// once against one database, as processes. Each works in schemas named for them, none waits for another's lock, and
/// none can read another's tables. An instructor lists the learners' schemas and resets them (the bench's learners
/// command, which scripts/learners.sh runs), never touching the plain lesson schemas.
/// </summary>
public class ClassroomTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Three_learners_run_lesson_05_at_once_each_in_schemas_of_their_own()
    {
        await database.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS vector");
        var roles = new List<TestRole>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var role = await TestRole.CreateAsync(database);
                roles.Add(role);
                await database.ExecuteAsync($"GRANT CREATE ON DATABASE \"{database.Name}\" TO {role.Name}");
            }

            var runs = await Task.WhenAll(roles.Select(role =>
                LessonProcess.RunLessonAsync("05", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl })));

            foreach (var (role, run) in roles.Zip(runs))
            {
                Assert.True(run.ExitCode == ExitCodes.Success, run.Output);
                Assert.Contains($"Works in schema {role.Name}_lesson05, learner {role.Name} (role {role.Name}).", run.Text, StringComparison.Ordinal);
                Assert.Contains("Lesson 05 done", run.Output, StringComparison.Ordinal);
                // Nobody queued behind another learner's lock.
                Assert.DoesNotContain("Another run of lesson 05", run.Output, StringComparison.Ordinal);
                Assert.Equal(role.Name, await database.ScalarAsync<string>($"SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = '{role.Name}_lesson05'"));
                Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>($"SELECT count(*) FROM {role.Name}_lesson05.vector_documents"));
            }

            // No learner wrote outside the schema named for them: not into the plain lesson05 (which another test of
            // this class may have made), nor into anybody else's.
            foreach (var role in roles)
            {
                Assert.Equal(0L, await database.ScalarAsync<long>($"""
                    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relowner = '{role.Name}'::regrole AND n.nspname NOT IN ('{role.Name}_lesson05', 'pg_toast')
                    """));
            }

            // None sees another's tables: the schema is closed to the other roles, and a query into it is refused.
            foreach (var reader in roles)
            {
                foreach (var other in roles.Where(r => r != reader))
                {
                    Assert.False(await database.ScalarAsync<bool>($"SELECT has_schema_privilege('{reader.Name}', '{other.Name}_lesson05', 'USAGE')"));
                }
            }

            await using var connection = new NpgsqlConnection(roles[0].DatabaseUrl);
            await connection.OpenAsync(Ct);
            await using var peek = new NpgsqlCommand($"SELECT count(*) FROM {roles[1].Name}_lesson05.vector_documents", connection);
            var refused = await Assert.ThrowsAsync<PostgresException>(() => peek.ExecuteScalarAsync(Ct));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        }
        finally
        {
            foreach (var role in roles)
            {
                await role.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Lesson 09 creates a login role for its application, and roles belong to the whole server: each learner's run
    /// gets its own (named for the learner's schema), so two learners who may create roles run it at once and neither
    /// resets or drops the other's. Role rules changed in PostgreSQL 16 (a CREATEROLE role administers only the roles
    /// it made), so this runs in the version-dependent lane too.
    /// </summary>
    [Fact]
    [Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
    public async Task Two_learners_who_may_create_roles_run_lesson_09_at_once_each_with_a_role_of_their_own()
    {
        await database.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS vector");
        var roles = new List<TestRole>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var role = await TestRole.CreateAsync(database);
                roles.Add(role);
                await database.ExecuteAsync($"GRANT CREATE ON DATABASE \"{database.Name}\" TO {role.Name}; ALTER ROLE {role.Name} CREATEROLE");
            }

            var runs = await Task.WhenAll(roles.Select(role =>
                LessonProcess.RunLessonAsync("09", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl })));

            foreach (var (role, run) in roles.Zip(runs))
            {
                Assert.True(run.ExitCode == ExitCodes.Success, run.Output);
                var appRole = Learner.RoleName($"{role.Name}_lesson09", "app", database.Name);
                Assert.Equal($"{role.Name}_lesson09_app_{database.Name}", appRole);
                Assert.Contains($"Counting rows as {appRole}", run.Text, StringComparison.Ordinal);
                Assert.Contains("Lesson 09 done", run.Output, StringComparison.Ordinal);
                // Each run dropped its own role at the end, and only its own.
                Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname = '{appRole}'"));
            }
        }
        finally
        {
            foreach (var role in roles)
            {
                await database.ExecuteAsync($"""
                    DO $$ DECLARE r text; BEGIN
                      FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE '{role.Name}\_lesson09\_app\_%' LOOP
                        EXECUTE format('DROP OWNED BY %I CASCADE; DROP ROLE %I', r, r);
                      END LOOP;
                    END $$
                    """);
                await role.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_learner_who_may_not_create_schemas_is_told_what_the_instructor_grants_exit_10()
    {
        await database.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS vector");
        await using var role = await TestRole.CreateAsync(database);

        var run = await LessonProcess.RunLessonAsync("05", new Dictionary<string, string> { ["DATABASE_URL"] = role.DatabaseUrl });

        Assert.True(run.ExitCode == ExitCodes.PermissionDenied, run.Output);
        Assert.Contains($"Role '{role.Name}' may not create schema {role.Name}_lesson05 in database {database.Name}", run.Text, StringComparison.Ordinal);
        Assert.Contains($"GRANT CREATE ON DATABASE {database.Name} TO {role.Name}", run.Text, StringComparison.Ordinal);
        Assert.Contains($"CREATE SCHEMA {role.Name}_lesson05 AUTHORIZATION {role.Name}", run.Text, StringComparison.Ordinal);
        OneSentence.AssertNoCrash(run.Output);
    }

    [Fact]
    public async Task LEARNER_names_the_schemas_and_a_hostile_name_cannot_reach_the_SQL()
    {
        var hostile = "x\"; DROP TABLE pg_class; --";
        var run = await LessonProcess.RunLessonAsync("01", new Dictionary<string, string>
        {
            ["DATABASE_URL"] = database.ConnectionString.ConnectionString,
            [Learner.Variable] = hostile,
        });

        var schema = Learner.For("postgres", superuser: true, hostile).Schema("lesson01");
        Assert.True(run.ExitCode == ExitCodes.Success, run.Output);
        Assert.Matches("^x_drop_table_pg_class_[0-9a-f]{8}_lesson01$", schema);
        Assert.Contains($"Works in schema {schema}", run.Text, StringComparison.Ordinal);
        Assert.Equal(1L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'"));
        await database.ExecuteAsync($"DROP SCHEMA {schema} CASCADE");
    }

    [Fact]
    public async Task An_instructor_lists_the_learners_schemas_and_resets_one_role_or_all_but_never_a_running_lesson()
    {
        await using var alice = await TestRole.CreateAsync(database);
        await using var bob = await TestRole.CreateAsync(database);
        // What two learners' runs leave (a lesson's schema, a check's), beside the plain schema of a superuser's run.
        await database.ExecuteAsync($"""
            CREATE SCHEMA {alice.Name}_lesson05 AUTHORIZATION {alice.Name};
            CREATE TABLE {alice.Name}_lesson05.vector_documents (id int);
            CREATE SCHEMA {alice.Name}_lesson06 AUTHORIZATION {alice.Name};
            CREATE SCHEMA {bob.Name}_lesson05 AUTHORIZATION {bob.Name};
            CREATE SCHEMA {bob.Name}_check_0501_1a2b3c4d AUTHORIZATION {bob.Name};
            CREATE SCHEMA IF NOT EXISTS lesson05;
            """);
        var environment = new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString };
        string[] aliceSchemas = [$"{alice.Name}_lesson05", $"{alice.Name}_lesson06"];
        string[] bobSchemas = [$"{bob.Name}_check_0501_1a2b3c4d", $"{bob.Name}_lesson05"];

        var list = await LessonProcess.RunBenchAsync(environment, "learners", "list");
        Assert.True(list.ExitCode == ExitCodes.Success, list.Output);
        foreach (var schema in aliceSchemas.Concat(bobSchemas))
        {
            Assert.Contains(schema, list.Output, StringComparison.Ordinal);
        }

        Assert.DoesNotMatch(@"\blesson05\b(?<!_lesson05)", list.Output);

        // Bob's lesson 05 is running: its lock is held.
        await using var running = new NpgsqlConnection(database.ConnectionString.ConnectionString);
        await running.OpenAsync(Ct);
        await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({LearnerSchemas.LockKey})", running))
        {
            take.Parameters.AddWithValue("schema", $"{bob.Name}_lesson05");
            await take.ExecuteNonQueryAsync(Ct);
        }

        var resetAlice = await LessonProcess.RunBenchAsync(environment, "learners", "reset", alice.Name);
        Assert.True(resetAlice.ExitCode == ExitCodes.Success, resetAlice.Output);
        Assert.Equal(0L, await SchemasAsync(aliceSchemas));
        Assert.Equal(2L, await SchemasAsync(bobSchemas));

        var resetAll = await LessonProcess.RunBenchAsync(environment, "learners", "reset", "--all");
        Assert.True(resetAll.ExitCode == ExitCodes.Failed, resetAll.Output);
        Assert.Contains($"skipped {bob.Name}_lesson05: a lesson is running in it", resetAll.Output, StringComparison.Ordinal);
        Assert.Equal(1L, await SchemasAsync(bobSchemas));
        Assert.Equal(1L, await SchemasAsync(["lesson05"]));

        await using (var release = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", running))
        {
            await release.ExecuteNonQueryAsync(Ct);
        }

        var again = await LessonProcess.RunBenchAsync(environment, "learners", "reset", "--all");
        Assert.True(again.ExitCode == ExitCodes.Success, again.Output);
        Assert.Equal(0L, await SchemasAsync(bobSchemas));
        Assert.Equal(1L, await SchemasAsync(["lesson05"]));

        var unknown = await LessonProcess.RunBenchAsync(environment, "learners", "reset", "nobody_" + Guid.NewGuid().ToString("N")[..8]);
        Assert.True(unknown.ExitCode == ExitCodes.InvalidInput, unknown.Output);
        OneSentence.AssertNoCrash(unknown.Output);
    }

    private async Task<long> SchemasAsync(IEnumerable<string> names) =>
        await database.ScalarAsync<long>($"SELECT count(*) FROM pg_namespace WHERE nspname IN ({string.Join(", ", names.Select(n => $"'{n}'"))})");
}

/// <summary>The learner's part of a schema name: plain names kept, anything else reduced and told apart by a hash.</summary>
public class LearnerNameTests
{
    [Theory]
    [InlineData("alice", "alice")]
    [InlineData("student_07", "student_07")]
    public void A_plain_role_name_is_kept(string role, string expected) =>
        Assert.Equal(expected, Learner.For(role, superuser: false, setting: null).Name);

    [Fact]
    public void A_superuser_keeps_the_plain_schemas_unless_LEARNER_is_set()
    {
        Assert.Equal("lesson05", Learner.For("postgres", superuser: true, setting: null).Schema("lesson05"));
        Assert.Equal("alice_lesson05", Learner.For("postgres", superuser: true, setting: "alice").Schema("lesson05"));
        Assert.Equal("bob_lesson05", Learner.For("alice", superuser: false, setting: "bob").Schema("lesson05"));
    }

    [Theory]
    [InlineData("Ann")]
    [InlineData("a.b")]
    [InlineData("7up")]
    [InlineData("x\"; DROP SCHEMA public CASCADE; --")]
    [InlineData("élève")]
    [InlineData("")]
    [InlineData("a_very_long_learner_name_that_goes_on_and_on_past_forty_characters")]
    public void Any_other_name_becomes_a_safe_identifier_of_at_most_40_characters(string name)
    {
        var safe = Learner.SafeName(name);
        Assert.Matches("^[a-z][a-z0-9_]*_[0-9a-f]{8}$", safe);
        Assert.True(safe.Length <= Learner.MaxNameLength, safe);
    }

    [Fact]
    public void Names_that_read_alike_get_schemas_of_their_own()
    {
        Assert.NotEqual(Learner.SafeName("Ann"), Learner.SafeName("ann"));
        Assert.NotEqual(Learner.SafeName("a.b"), Learner.SafeName("a_b"));
        Assert.NotEqual(Learner.SafeName("a.b"), Learner.SafeName("a-b"));
    }

    [Fact]
    public void A_lessons_role_is_named_for_the_schema_and_the_database_and_a_long_name_is_cut_apart()
    {
        // A superuser's run keeps the names the lessons always had; each learner's run gets its own.
        Assert.Equal("lesson07_reader_agent_db", Learner.RoleName("lesson07", "reader", "agent_db"));
        Assert.Equal("alice_lesson09_app_agent_db", Learner.RoleName(Learner.For("alice", superuser: false, setting: null).Schema("lesson09"), "app", "agent_db"));
        Assert.Equal("lesson09_app_my_db_2", Learner.RoleName("lesson09", "app", "My-DB 2"));

        // Two names that agree in their first 63 bytes stay apart, and neither is over PostgreSQL's limit.
        var longSchema = Learner.For("postgres", superuser: true, new string('a', 60)).Schema("lesson07");
        var one = Learner.RoleName(longSchema, "reader", "database_one");
        var two = Learner.RoleName(longSchema, "reader", "database_two");
        Assert.NotEqual(one, two);
        Assert.All([one, two], name => Assert.Matches("^[a-z][a-z0-9_]{0,62}$", name));
    }
}
