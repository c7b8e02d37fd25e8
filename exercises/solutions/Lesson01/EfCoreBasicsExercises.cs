using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson01;

/// <summary>Spoiler: reference solutions to lesson 01's exercises.</summary>
public static class EfCoreBasicsExercises
{
    public static Task<List<string>> LatestTitlesAsync(ExerciseContext db, string category, int count) =>
        db.Notes.AsNoTracking()
            .Where(n => n.Category == category)
            .OrderByDescending(n => n.CreatedAt)
            .Take(count)
            .Select(n => n.Title)
            .ToListAsync();

    public static async Task AddNotesAsync(ExerciseContext db, string category, IReadOnlyList<string> titles)
    {
        var now = DateTime.UtcNow;
        db.Notes.AddRange(titles.Select(title => new Note { Title = title, Category = category, CreatedAt = now }));
        await db.SaveChangesAsync();
    }
}
