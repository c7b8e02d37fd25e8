namespace PgVectorModule.Exercises.Check;

/// <summary>Lesson 05: filtered and thresholded nearest neighbours on the HNSW index, ef_search, iterative scans.</summary>
internal static class Lesson05Checks
{
    private const string Type = "Lesson05.VectorSearchExercises";
    private const string Index = "items_embedding_hnsw";

    public static IEnumerable<Exercise> All() =>
    [
        Exercise.Sql("05.1", "Nearest in a category, in distance order, on the HNSW index", "the filter step (filters)",
            "WHERE category = $2 ORDER BY embedding <=> $1 LIMIT $3: <=> is cosine distance (<-> is L2, <#> negative inner product); the index serves the ORDER BY ... LIMIT, so both must be there.",
            Type, "NearestInCategorySql", NearestInCategoryAsync),
        Exercise.Sql("05.2", "Within a distance, keeping the index", "the threshold step (thresholds)",
            "Keep ORDER BY embedding <=> $1 LIMIT $3, which the index serves, and add the threshold as WHERE embedding <=> $1 < $2: a WHERE alone is a scan of every row.",
            Type, "WithinDistanceSql", WithinDistanceAsync),
        Exercise.Method<Func<NpgsqlDataSource, Vector, int, Task<List<long>>>>("05.3", "ef_search for 100 candidates", "the ef-search-cap step (ef_search and the row cap)",
            "HNSW returns at most hnsw.ef_search rows (40 by default), whatever the LIMIT: in a transaction run SELECT set_config('hnsw.ef_search', '100', true) (or SET LOCAL hnsw.ef_search = 100), then the query, then commit.",
            Type, "CandidatesAsync", CandidatesAsync),
        Exercise.Method<Func<NpgsqlDataSource, Vector, string, int, Task<List<long>>>>("05.4", "A rare category, all k rows, in order", "the iterative-scans step (iterative scans)",
            "With a filter that keeps 1 row in 50, the 40 candidates hold about one match. In a transaction: SET LOCAL hnsw.iterative_scan = strict_order (relaxed_order needs a re-sort), then WHERE category = ... ORDER BY embedding <=> ... LIMIT k.",
            Type, "RareCategoryAsync", RareCategoryAsync),
    ];

    private static async Task<CheckResult> NearestInCategoryAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 2000, i => "abc"[i % 3].ToString(), hnsw: true, ct);
        var query = CheckData.Query(7);
        var rows = await room.RowsAsync(sql, ct, query, "b", 10);
        var exact = await CheckData.ExactIdsAsync(room, "SELECT id FROM items WHERE category = $2 ORDER BY embedding <=> $1 LIMIT $3", ct, query, "b", 10);
        var result = await NearestAsync(room, Ids(rows), exact, query, "category = 'b'", ct);
        if (!result.Passed)
        {
            return result;
        }

        var plan = await room.PlanAsync(sql, ct, query, "b", 10);
        return plan.Contains($"Index Scan using {Index}", StringComparison.Ordinal)
            ? CheckResult.Pass("the 10 nearest of category b, nearest first, through the HNSW index")
            : CheckResult.Fail($"a plan with Index Scan using {Index}", Lesson04Checks.FirstLines(plan));
    }

    private static async Task<CheckResult> WithinDistanceAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 2000, i => "any", hnsw: true, ct);
        var query = CheckData.Query(11);
        // A threshold between the 6th and the 7th nearest: exactly six rows are within it.
        var distances = await room.RowsAsync("SELECT embedding <=> $1 FROM items ORDER BY 1 LIMIT 7", ct, query);
        var threshold = ((double)distances[5][0]! + (double)distances[6][0]!) / 2;
        var rows = await room.RowsAsync(sql, ct, query, threshold, 10);
        var exact = await CheckData.ExactIdsAsync(room, "SELECT id FROM items WHERE embedding <=> $1 < $2 ORDER BY embedding <=> $1 LIMIT $3", ct, query, threshold, 10);
        var ids = Ids(rows);
        if (!ids.SequenceEqual(exact))
        {
            return CheckResult.Fail($"the {exact.Count} items within {threshold:0.0000}, nearest first: {CheckData.Show(exact)}", $"{CheckData.Show(ids)}");
        }

        var plan = await room.PlanAsync(sql, ct, query, threshold, 10);
        return plan.Contains($"Index Scan using {Index}", StringComparison.Ordinal)
            ? CheckResult.Pass("the six items within the distance, nearest first, through the HNSW index")
            : CheckResult.Fail($"a plan with Index Scan using {Index}", Lesson04Checks.FirstLines(plan));
    }

    private static async Task<CheckResult> CandidatesAsync(CheckRoom room, Func<NpgsqlDataSource, Vector, int, Task<List<long>>> candidates, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 2000, i => "any", hnsw: true, ct);
        var query = CheckData.Query(13);
        var before = await IndexScansAsync(room, ct);
        var learner = room.DataSource(DiscourageScans);
        var ids = await candidates(learner, query, 100);
        await learner.DisposeAsync();
        var exact = await CheckData.ExactIdsAsync(room, "SELECT id FROM items ORDER BY embedding <=> $1 LIMIT $2", ct, query, 100);
        if (ids.Count != 100)
        {
            return CheckResult.Fail("100 ids", $"{ids.Count} ids" + (ids.Count == 40 ? " (hnsw.ef_search is 40 unless you raise it: the index returns no more rows than that)" : ""));
        }

        var recall = ids.Intersect(exact).Count() / 100.0;
        if (recall < 0.9)
        {
            return CheckResult.Fail("at least 90 of the exact 100 nearest (cosine distance)", $"{recall * 100:0} of them");
        }

        return await UsedIndexAsync(room, before, ct)
            ? CheckResult.Pass($"100 candidates through the HNSW index, {recall * 100:0} of the exact 100")
            : CheckResult.Fail("the query to read the HNSW index (pg_stat_user_indexes.idx_scan grows)", "no scan of the index: an exact scan of every row");
    }

    private static async Task<CheckResult> RareCategoryAsync(CheckRoom room, Func<NpgsqlDataSource, Vector, string, int, Task<List<long>>> rare, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 5000, i => i % 50 == 0 ? "rare" : "common", hnsw: true, ct);
        var query = CheckData.Query(17);
        var before = await IndexScansAsync(room, ct);
        var learner = room.DataSource(DiscourageScans);
        var ids = await rare(learner, query, "rare", 10);
        await learner.DisposeAsync();
        var exact = await CheckData.ExactIdsAsync(room, "SELECT id FROM items WHERE category = $2 ORDER BY embedding <=> $1 LIMIT $3", ct, query, "rare", 10);
        var result = await NearestAsync(room, ids, exact, query, "category = 'rare'", ct);
        if (!result.Passed)
        {
            return result;
        }

        return await UsedIndexAsync(room, before, ct)
            ? CheckResult.Pass("all 10 rare items, nearest first, through the HNSW index")
            : CheckResult.Fail("the query to read the HNSW index (pg_stat_user_indexes.idx_scan grows)", "no scan of the index: an exact scan of every row");
    }

    /// <summary>
    /// The learner's sessions see the table as a large one: with sequential scans discouraged, the planner takes the index
    /// whenever the query allows it, as it would over millions of rows (on a few thousand, a scan and a sort are cheaper).
    /// </summary>
    private static void DiscourageScans(NpgsqlConnectionStringBuilder builder) => builder.Options += " -c enable_seqscan=off";

    /// <summary>
    /// The k ids an approximate search returned, judged against the exact answer: as many rows, each passing the filter,
    /// in cosine-distance order, and at most one of the exact k missing (HNSW may miss one; a wrong distance misses many).
    /// </summary>
    internal static async Task<CheckResult> NearestAsync(CheckRoom room, List<long> ids, List<long> exact, Vector query, string filter, CancellationToken ct)
    {
        if (ids.Count != exact.Count)
        {
            return CheckResult.Fail($"{exact.Count} rows: {CheckData.Show(exact)}", $"{ids.Count} rows: {CheckData.Show(ids)}");
        }

        var facts = await room.RowsAsync($"SELECT id, embedding <=> $1, {filter} FROM items WHERE id = ANY($2)", ct, query, ids.ToArray());
        var byId = facts.ToDictionary(r => (long)r[0]!, r => ((double)r[1]!, (bool)r[2]!));
        if (ids.FirstOrDefault(id => !byId.TryGetValue(id, out var f) || !f.Item2) is var stray && stray != 0)
        {
            return CheckResult.Fail($"only rows with {filter}", $"id {stray} does not have {filter}");
        }

        var distances = ids.Select(id => byId[id].Item1).ToList();
        var inOrder = distances.Zip(distances.Skip(1), (a, b) => a <= b).All(x => x);
        var found = ids.Intersect(exact).Count();
        if (found < exact.Count - 1 || !inOrder)
        {
            return CheckResult.Fail($"the nearest by cosine distance, nearest first: {CheckData.Show(exact)}",
                $"{CheckData.Show(ids)} ({found} of them{(inOrder ? "" : ", not in cosine-distance order")})");
        }

        return CheckResult.Pass("the nearest, in order");
    }

    internal static List<long> Ids(List<object?[]> rows) => rows.Select(r => Convert.ToInt64(r[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();

    /// <summary>How many scans of the HNSW index the server has counted (each statement reads fresh statistics).</summary>
    private static Task<long> IndexScansAsync(CheckRoom room, CancellationToken ct) =>
        room.ScalarAsync<long>($"SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelid = '{Index}'::regclass", ct);

    /// <summary>
    /// Whether the learner's session scanned the index: its statistics reach the shared counters when its connection
    /// closes (the data source was disposed), so the check waits a little for them.
    /// </summary>
    private static async Task<bool> UsedIndexAsync(CheckRoom room, long before, CancellationToken ct)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            if (await IndexScansAsync(room, ct) > before)
            {
                return true;
            }

            await Task.Delay(100, ct);
        }

        return false;
    }
}
