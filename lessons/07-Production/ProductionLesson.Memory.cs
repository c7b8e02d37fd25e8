namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Common issues: out of memory. work_mem (per sort or hash in a query) against maintenance_work_mem (per index build).</summary>
public sealed partial class ProductionLesson
{
    private static async Task WorkMemAsync(Lesson lesson, Vector question, CancellationToken cancellationToken)
    {
        lesson.DeepDive("work-mem", "work_mem or maintenance_work_mem?",
            "The Python module answers \"out of memory\" with SET work_mem = '256MB', but work_mem is per sort or hash step of each query, taken many times over at once. " +
            "A query that sorts every vector, at two settings:");
        // No LIMIT, so no index: every row is sorted, and each sort row carries its vector.
        const string sortAll = "SELECT id, embedding FROM bulk_vectors ORDER BY embedding <-> @q";
        var methods = new List<(string WorkMem, string Sort)>();
        foreach (var workMem in new[] { "64kB", "32MB" })
        {
            await using var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await lesson.ExecuteAsync($"SET LOCAL work_mem = '{workMem}'", connection, cancellationToken);
            var plan = await lesson.ExplainAsync(sortAll, connection, [new NpgsqlParameter("q", question)], cancellationToken);
            methods.Add((workMem, plan.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Sort Method", StringComparison.Ordinal)) ?? "(no sort)"));
            await transaction.RollbackAsync(cancellationToken);
        }

        lesson.Table(methods, ("work_mem", r => r.WorkMem), ("the plan's sort", r => r.Sort));
        lesson.Say($"At {methods[0].WorkMem} the sort spills to disk (external merge): slower, not an error. Raise work_mem for the one session or role (SET LOCAL, ALTER ROLE), " +
                   "not server-wide; a real out-of-memory (SQLSTATE 53200) calls for less memory, not more.");
    }
}
