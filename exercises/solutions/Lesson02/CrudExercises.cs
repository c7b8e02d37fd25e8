using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson02;

/// <summary>Spoiler: reference solutions to lesson 02's exercises.</summary>
public static class CrudExercises
{
    public const string UpsertSql = """
        INSERT INTO products (sku, name, category, price) VALUES ($1, $2, 'new', $3)
        ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price
        """;

    public static Task<int> RaisePricesAsync(ExerciseContext db, string category, decimal percent) =>
        db.Products
            .Where(p => p.Category == category)
            .ExecuteUpdateAsync(set => set.SetProperty(p => p.Price, p => p.Price * (1 + percent / 100)));
}
