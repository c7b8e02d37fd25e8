using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson01;

/// <summary>Lesson 01's exercises: a LINQ query that runs in PostgreSQL, and a batched insert. Check: <c>scripts/check.sh 01</c>.</summary>
public static class EfCoreBasicsExercises
{
    /// <summary>
    /// 01.1: the titles of the <paramref name="count"/> newest notes (by <see cref="Note.CreatedAt"/>) of
    /// <paramref name="category"/>, newest first. The filter, the order and the limit run in PostgreSQL, not in memory.
    /// </summary>
    public static Task<List<string>> LatestTitlesAsync(ExerciseContext db, string category, int count)
    {
        // TODO: a LINQ query over db.Notes that EF Core turns into one SELECT ... WHERE ... ORDER BY ... LIMIT.
        throw new NotImplementedException("TODO: write LatestTitlesAsync");
    }

    /// <summary>
    /// 01.2: adds one note per title, all in <paramref name="category"/>, with <see cref="Note.CreatedAt"/> set to now
    /// (UTC), and saves them with one <c>SaveChangesAsync</c> (one transaction, one batched command).
    /// </summary>
    public static Task AddNotesAsync(ExerciseContext db, string category, IReadOnlyList<string> titles)
    {
        // TODO: db.Notes.AddRange(...), then save once.
        throw new NotImplementedException("TODO: write AddNotesAsync");
    }
}
