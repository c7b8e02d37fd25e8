using PgVectorModule.Exercises.Check;
using PgVectorModule.Lessons;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>The catalog, the lesson folders and the README's lessons table cannot drift apart.</summary>
public class LessonCatalogTests
{
    [Fact]
    public void Every_lesson_has_its_folder_program_and_readme_sections()
    {
        foreach (var lesson in LessonCatalog.All)
        {
            var folder = Path.Combine(RepositoryRoot.Path, "lessons", lesson.Folder);
            Assert.True(File.Exists(Path.Combine(folder, "Program.cs")), $"{lesson.Folder} has no Program.cs");
            var readme = File.ReadAllText(Path.Combine(folder, "README.md"));
            // Lessons with checked exercises (scripts/check.sh) state them; lesson 11 needs a Citus cluster and has none yet.
            var exercises = ExerciseCatalog.All.Any(e => e.Lesson == lesson.Number) ? ["## Exercises"] : Array.Empty<string>();
            foreach (var section in (string[])["## What you will learn", "## Run it", "## What happens", .. exercises, "## Try this", "## Key takeaways"])
            {
                Assert.Contains(section, readme, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Every_lesson_folder_is_in_the_catalog()
    {
        var folders = Directory.GetDirectories(Path.Combine(RepositoryRoot.Path, "lessons")).Select(Path.GetFileName).Order(StringComparer.Ordinal);

        Assert.Equal(LessonCatalog.All.Select(l => l.Folder), folders);
    }

    [Fact]
    public void The_readme_table_lists_every_lesson_with_its_catalog_title()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "README.md"));

        foreach (var lesson in LessonCatalog.All)
        {
            Assert.Contains($"| {lesson.Number} | [{lesson.Title}](lessons/{lesson.Folder}/README.md) | `{lesson.PythonCounterpart}` |", readme, StringComparison.Ordinal);
        }
    }
}
