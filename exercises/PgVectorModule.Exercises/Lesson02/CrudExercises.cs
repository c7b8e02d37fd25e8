using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson02;

/// <summary>Lesson 02's exercises: an upsert, and a set-based update. Check: <c>scripts/check.sh 02</c>.</summary>
public static class CrudExercises
{
    /// <summary>
    /// 02.1: one statement that inserts the product (<c>$1</c> sku, <c>$2</c> name, <c>$3</c> price) into
    /// <c>products(sku text PRIMARY KEY, name text, category text, price numeric)</c> with category <c>'new'</c>, or,
    /// when the sku is already there, sets its name and price to the new ones (and keeps its category).
    /// </summary>
    public const string UpsertSql = """
        -- TODO: INSERT INTO products ... ON CONFLICT ...
        """;

    /// <summary>
    /// 02.2: raises the price of every product of <paramref name="category"/> by <paramref name="percent"/> percent
    /// in one UPDATE sent to PostgreSQL (no SELECT, no loading of entities); returns how many rows changed.
    /// </summary>
    public static Task<int> RaisePricesAsync(ExerciseContext db, string category, decimal percent)
    {
        // TODO: db.Products.Where(...).ExecuteUpdateAsync(...)
        throw new NotImplementedException("TODO: write RaisePricesAsync");
    }
}
