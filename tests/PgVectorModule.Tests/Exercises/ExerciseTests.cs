using System.Reflection;
using PgVectorModule.Data;
using PgVectorModule.Exercises.Check;
using PgVectorModule.Lessons;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Exercises;

/// <summary>
/// Three facts for every exercise, with the same checks scripts/check.sh runs, against one database shared by the class:
/// the untouched exercise does not pass and says why with its hint, without a crash; the reference solution passes; and
/// plausible wrong answers (<see cref="WrongAnswers"/>) do not pass.
/// </summary>
[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class ExerciseTests(TestDatabase database) : IClassFixture<TestDatabase>, IAsyncLifetime
{
    private static readonly Assembly Untouched = Assembly.Load("PgVectorModule.Exercises");
    private static readonly Assembly Solutions = Assembly.Load("PgVectorModule.Exercises.Solutions");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> ExerciseIds => new(ExerciseCatalog.All.Select(e => e.Id));

    public static TheoryData<string> WrongAnswerNames => new(WrongAnswers.All.Keys);

    public async ValueTask InitializeAsync() => await CheckSetup.EnsureVectorAsync(database.ConnectionString, Ct);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public void Every_lesson_has_its_exercises()
    {
        var perLesson = ExerciseCatalog.All.GroupBy(e => e.Lesson).ToDictionary(g => g.Key, g => g.Count());
        foreach (var lesson in LessonCatalog.All.Select(l => l.Number))
        {
            var least = lesson is "04" or "05" or "06" ? 4 : 2;
            Assert.True(perLesson.GetValueOrDefault(lesson) >= least, $"lesson {lesson} has {perLesson.GetValueOrDefault(lesson)} exercises, fewer than {least}");
        }
    }

    [Theory]
    [MemberData(nameof(ExerciseIds))]
    public async Task The_untouched_exercise_does_not_pass_and_says_why(string id)
    {
        var exercise = ExerciseCatalog.Get(id);
        var result = await ExerciseRunner.RunAsync(exercise, Untouched, database.ConnectionString, null, Ct);

        Assert.False(result.Passed);
        Assert.Contains("not written yet", result.Got, StringComparison.Ordinal);
        var report = CheckReport.Line(exercise, result);
        Assert.Contains(exercise.Hint, report, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", report, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(ExerciseIds))]
    public async Task The_reference_solution_passes(string id)
    {
        var exercise = ExerciseCatalog.Get(id);
        var result = await ExerciseRunner.RunAsync(exercise, Solutions, database.ConnectionString, null, Ct);

        Assert.True(result.Passed, CheckReport.Line(exercise, result));
    }

    [Theory]
    [MemberData(nameof(WrongAnswerNames))]
    public async Task A_plausible_wrong_answer_does_not_pass(string name)
    {
        var (id, answer) = WrongAnswers.All[name];
        var exercise = ExerciseCatalog.Get(id);
        var result = await ExerciseRunner.RunAsync(exercise, answer, database.ConnectionString, null, Ct);

        Assert.False(result.Passed, $"{name} passed the check of {id}");
        // And for the reason the answer is wrong, not for another one.
        Assert.Contains(WrongAnswers.Says[name], $"expected: {result.Expected} got: {result.Got}", StringComparison.Ordinal);
        Assert.DoesNotContain("not written yet", result.Got, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", CheckReport.Line(exercise, result), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_lesson_readme_states_its_exercises_and_ends_with_its_takeaways()
    {
        foreach (var lesson in ExerciseCatalog.All.GroupBy(e => e.Lesson))
        {
            var folder = Directory.GetDirectories(Path.Combine(RepositoryRoot.Path, "lessons"), lesson.Key + "-*").Single();
            var readme = File.ReadAllText(Path.Combine(folder, "README.md"));
            var start = readme.IndexOf("## Exercises", StringComparison.Ordinal);
            Assert.True(start >= 0, $"{folder}/README.md has no Exercises section");
            var section = readme[start..readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal)];
            foreach (var exercise in lesson)
            {
                Assert.Contains($"**{exercise.Id} ", section, StringComparison.Ordinal);
                Assert.Contains($"`{exercise.Member}", section, StringComparison.Ordinal);
            }

            Assert.Contains($"Lesson{lesson.Key}/", section, StringComparison.Ordinal);
            Assert.Contains($"scripts/check.sh {lesson.Key}", section, StringComparison.Ordinal);
            var takeaways = readme.LastIndexOf("\n## ", StringComparison.Ordinal);
            Assert.StartsWith("\n## Key takeaways", readme[takeaways..], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_exercise_has_a_wrong_answer_that_the_tests_try()
    {
        Assert.Equal(WrongAnswers.All.Keys.Order(), WrongAnswers.Says.Keys.Order());
        var covered = WrongAnswers.All.Values.Select(w => w.Id).ToHashSet();
        var uncovered = ExerciseCatalog.All.Select(e => e.Id).Where(id => !covered.Contains(id)).ToList();
        Assert.True(uncovered.Count == 0, "Exercises without a wrong answer in the tests: " + string.Join(", ", uncovered));
    }

    /// <summary>
    /// The checks of 07.3, 09.1 and 09.2 run the answer as a role of their own. A learner's login with CREATEROLE (and
    /// CREATE on the database) is enough on every supported major, PostgreSQL 16's stricter role rules included; one
    /// without CREATEROLE is told that the check cannot run and what to ask for, never shown a bare 42501.
    /// </summary>
    [Theory]
    [InlineData("07.3")]
    [InlineData("09.1")]
    [InlineData("09.2")]
    public async Task A_learner_runs_the_checks_that_need_a_role_of_their_own_or_is_told_what_to_ask_for(string id)
    {
        var exercise = ExerciseCatalog.Get(id);
        await using var learner = await TestRole.CreateAsync(database);
        await database.ExecuteAsync($"GRANT CREATE ON DATABASE \"{database.Name}\" TO {learner.Name}");
        var connection = new NpgsqlConnectionStringBuilder(learner.DatabaseUrl);
        var asLearner = Learner.For(learner.Name, superuser: false, setting: null);

        var refused = await ExerciseRunner.RunAsync(exercise, Solutions, connection, asLearner, Ct);
        Assert.False(refused.Passed);
        Assert.Contains($"login {learner.Name} may not create roles", refused.Got, StringComparison.Ordinal);
        Assert.Contains($"ALTER ROLE {learner.Name} CREATEROLE", refused.Got, StringComparison.Ordinal);

        await database.ExecuteAsync($"ALTER ROLE {learner.Name} CREATEROLE");
        var result = await ExerciseRunner.RunAsync(exercise, Solutions, connection, asLearner, Ct);
        Assert.True(result.Passed, $"{id} as a learner with CREATEROLE: expected {result.Expected}, got {result.Got}");
        Assert.Equal(0L, await database.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE 'check\\_%' AND pg_has_role('{learner.Name}', oid, 'MEMBER')"));
    }

    [Fact]
    public async Task A_check_leaves_no_schema_and_no_role_behind()
    {
        await ExerciseRunner.RunAsync(ExerciseCatalog.Get("05.1"), Solutions, database.ConnectionString, null, Ct);

        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'check\\_%'"));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'check\\_%'"));
    }
}
