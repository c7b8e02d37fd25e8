using NpgsqlTypes;
using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Check;

/// <summary>Lessons 07 to 09: halfvec by expression index, a read-only role, read-your-writes routing, pgBouncer-safe settings, row-level security.</summary>
internal static class Lesson07To09Checks
{
    private const string HalfvecIndex = "CREATE INDEX items_embedding_halfvec ON items USING hnsw ((embedding::halfvec(8)) halfvec_cosine_ops)";

    public static IEnumerable<Exercise> Lesson07() =>
    [
        Exercise.Sql("07.1", "A halfvec expression index", "the smaller-vectors step (smaller vectors)",
            "CREATE INDEX ... ON items USING hnsw ((embedding::halfvec(8)) halfvec_cosine_ops): the cast in double parentheses, the dimension in the cast, the halfvec operator class. The column stays vector(8).",
            "Lesson07.ProductionExercises", "HalfvecIndexSql", HalfvecIndexAsync),
        Exercise.Sql("07.2", "A query that uses the halfvec index", "the smaller-vectors step (smaller vectors)",
            "The planner uses an expression index only for the same expression: ORDER BY embedding::halfvec(8) <=> $1::halfvec(8) LIMIT $2.",
            "Lesson07.ProductionExercises", "HalfvecQuerySql", HalfvecQueryAsync),
        Exercise.Method<Func<string, string, string>>("07.3", "A role that may only read", "the read-only-role step (least privilege)",
            "Two grants: GRANT USAGE ON SCHEMA <schema> TO <role> (to reach its tables at all), GRANT SELECT ON <schema>.items TO <role>. ALL, or ON ALL TABLES, gives more than reading one table.",
            "Lesson07.ProductionExercises", "ReadOnlyGrantsSql", ReadOnlyGrantsAsync),
    ];

    public static IEnumerable<Exercise> Lesson08() =>
    [
        Exercise.Method<Func<NpgsqlLogSequenceNumber?, NpgsqlLogSequenceNumber, Route>>("08.1", "Read your own writes", "the read-your-writes step (routing reads after a write)",
            "Standby when there was no write, or when standbyReplayed >= lastWrite; else Primary. Compare NpgsqlLogSequenceNumber values (they have < and >=), never their text: \"0/F000000\" sorts after \"0/10000000\" as text.",
            "Lesson08.OperationsExercises", "ChooseRoute", ChooseRouteAsync),
        Exercise.Method<Func<NpgsqlDataSource, string, Task<long>>>("08.2", "Nothing left on a shared connection", "the what-breaks step (pgBouncer's transaction mode)",
            "Either name the schema in the query (quote it), or inside a transaction SELECT set_config('search_path', ..., true) (SET LOCAL): a plain SET stays on the server connection for whoever uses it next.",
            "Lesson08.OperationsExercises", "CountNotesAsync", CountNotesAsync),
    ];

    public static IEnumerable<Exercise> Lesson09() =>
    [
        Exercise.Sql("09.1", "Row-level security, the owner included", "the row-level-security step",
            "ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY (without FORCE the owner sees every row), and a policy USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::int): the 'true' makes a missing setting NULL, not an error.",
            "Lesson09.TenantsExercises", "TenantPolicySql", TenantPolicyAsync),
        Exercise.Method<Func<NpgsqlDataSource, int, Vector, int, Task<List<long>>>>("09.2", "A tenant's search that leaks nothing", "the tenant-search step (search under a tenant)",
            "In one transaction: SELECT set_config('app.tenant_id', $1, true) (true: for this transaction only), the ORDER BY embedding <=> $1 LIMIT $2 query, commit. With false the tenant stays on the pooled connection for the next request.",
            "Lesson09.TenantsExercises", "TenantNearestAsync", TenantNearestAsync),
    ];

    private static async Task<CheckResult> HalfvecIndexAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 2000, i => "any", hnsw: false, ct);
        await room.ExecuteAsync(sql, ct);
        var column = await room.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'embedding'", ct);
        if (column != "vector(8)")
        {
            return CheckResult.Fail("the column embedding still vector(8) (the index holds the halfvecs)", $"embedding is {column}");
        }

        var indexes = await room.RowsAsync("""
            SELECT c.relname::text, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'items'::regclass AND NOT i.indisprimary
            """, ct);
        var plan = await room.PlanAsync("SELECT id FROM items ORDER BY embedding::halfvec(8) <=> $1::halfvec(8) LIMIT 5", ct, CheckData.Query(70));
        var used = indexes.FirstOrDefault(r => plan.Contains($"Index Scan using {r[0]}", StringComparison.Ordinal));
        return used is not null && ((string)used[1]!).Contains("halfvec_cosine_ops", StringComparison.Ordinal)
            ? CheckResult.Pass($"{used[1]}, used by ORDER BY embedding::halfvec(8) <=> $1::halfvec(8)")
            : CheckResult.Fail("an hnsw index on ((embedding)::halfvec(8)) halfvec_cosine_ops that ORDER BY embedding::halfvec(8) <=> ... uses",
                indexes.Count == 0 ? "no index on items" : string.Join("; ", indexes.Select(r => (string)r[1]!)));
    }

    private static async Task<CheckResult> HalfvecQueryAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 2000, i => "any", hnsw: false, ct);
        await room.ExecuteAsync(HalfvecIndex, ct);
        var query = CheckData.Query(71);
        var ids = Lesson05Checks.Ids(await room.RowsAsync(sql, ct, query, 10));
        var exact = await CheckData.ExactIdsAsync(room, "SELECT id FROM items ORDER BY embedding::halfvec(8) <=> $1::halfvec(8) LIMIT $2", ct, query, 10);
        if (ids.Count != 10 || ids.Intersect(exact).Count() < 9)
        {
            return CheckResult.Fail($"the 10 nearest by cosine distance: {CheckData.Show(exact)}", CheckData.Show(ids));
        }

        var plan = await room.PlanAsync(sql, ct, query, 10);
        return plan.Contains("Index Scan using items_embedding_halfvec", StringComparison.Ordinal)
            ? CheckResult.Pass("the 10 nearest, through the halfvec expression index")
            : CheckResult.Fail("a plan with Index Scan using items_embedding_halfvec", Lesson04Checks.FirstLines(plan));
    }

    private static async Task<CheckResult> ReadOnlyGrantsAsync(CheckRoom room, Func<string, string, string> grants, CancellationToken ct)
    {
        await CheckData.CreateItemsAsync(room, 10, i => "any", hnsw: false, ct);
        await room.ExecuteAsync("CREATE TABLE secrets (id int PRIMARY KEY, secret text); INSERT INTO secrets VALUES (1, 'the admin password')", ct);
        var reader = await room.CreateRoleAsync("reader", ct);
        await room.ExecuteAsync(grants(room.Schema, reader), ct);
        var asReader = room.DataSourceAs(reader);

        var (read, readError) = await TryAsync(asReader, "SELECT count(*) FROM items", ct);
        if (readError is not null)
        {
            return CheckResult.Fail($"{reader} reads items", readError);
        }

        string[] forbidden =
        [
            "INSERT INTO items (id, category, embedding) VALUES (99, 'x', '[1,1,1,1,1,1,1,1]')",
            "UPDATE items SET category = 'changed'",
            "DELETE FROM items",
            "SELECT count(*) FROM secrets",
        ];
        foreach (var statement in forbidden)
        {
            var (_, error) = await TryAsync(asReader, statement, ct);
            if (error is null)
            {
                return CheckResult.Fail($"{reader} refused: {statement}", "it was allowed");
            }
        }

        return CheckResult.Pass($"{reader} reads the {read} items and may do nothing else");
    }

    private static async Task<(object? Value, string? Error)> TryAsync(NpgsqlDataSource dataSource, string sql, CancellationToken ct)
    {
        try
        {
            await using var command = dataSource.CreateCommand(sql);
            return (await command.ExecuteScalarAsync(ct), null);
        }
        catch (PostgresException e)
        {
            return (null, $"{e.SqlState}: {e.MessageText}");
        }
    }

    private static async Task<CheckResult> ChooseRouteAsync(CheckRoom room, Func<NpgsqlLogSequenceNumber?, NpgsqlLogSequenceNumber, Route> choose, CancellationToken ct)
    {
        // A real write's position on this server, and positions around it.
        await room.ExecuteAsync("CREATE TABLE writes (id int); INSERT INTO writes VALUES (1)", ct);
        var written = (await room.RowsAsync("SELECT pg_current_wal_lsn()", ct))[0][0] is NpgsqlLogSequenceNumber lsn ? lsn : default;
        static NpgsqlLogSequenceNumber At(ulong position) => new(position);
        (NpgsqlLogSequenceNumber? Write, NpgsqlLogSequenceNumber Replayed, Route Expected, string Case)[] cases =
        [
            (null, written, Route.Standby, "no write yet"),
            (written, written, Route.Standby, "the standby has replayed exactly up to the write"),
            (written, At((ulong)written + 4096), Route.Standby, "the standby is past the write"),
            (written, At((ulong)written - 1), Route.Primary, "the standby is one byte behind the write"),
            (At(0x1000_0000), At(0x0F00_0000), Route.Primary, "write at 0/10000000, standby at 0/F000000 (behind, though its text sorts after)"),
            (At(0x1_0000_0000), At(0xFFFF_FFFF), Route.Primary, "write at 1/0, standby at 0/FFFFFFFF"),
            (At(0x0F00_0000), At(0x1000_0000), Route.Standby, "write at 0/F000000, standby at 0/10000000"),
        ];
        foreach (var (write, replayed, expected, why) in cases)
        {
            var route = choose(write, replayed);
            if (route != expected)
            {
                return CheckResult.Fail($"{expected} when {why}", route.ToString());
            }
        }

        return CheckResult.Pass($"the route of {cases.Length} cases, around a real write at {written}");
    }

    private static async Task<CheckResult> CountNotesAsync(CheckRoom room, Func<NpgsqlDataSource, string, Task<long>> count, CancellationToken ct)
    {
        await room.ExecuteAsync("CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO notes SELECT generate_series(1, 7)", ct);
        // One connection, never reset between uses: what pgBouncer's transaction mode gives the next client.
        var shared = room.DataSource(b =>
        {
            b.SearchPath = "public";
            b.MaxPoolSize = 1;
            b.NoResetOnClose = true;
        });
        var before = await SettingsAsync(shared, ct);
        var rows = await count(shared, room.Schema);
        if (rows != 7)
        {
            return CheckResult.Fail($"7 rows in {room.Schema}.notes", $"{rows}");
        }

        var after = await SettingsAsync(shared, ct);
        return after == before
            ? CheckResult.Pass("7 rows, and the shared connection as it was")
            : CheckResult.Fail($"the connection as it was ({before})", $"left changed for the next client ({after})");
    }

    private static async Task<string> SettingsAsync(NpgsqlDataSource dataSource, CancellationToken ct) =>
        (string)(await CheckRoom.RowsAsync(dataSource, "SELECT 'search_path=' || current_setting('search_path')", ct))[0][0]!;

    /// <summary>tenant_docs owned by a role of the room's, rows of three tenants; with <paramref name="policy"/>, the check's own policy.</summary>
    private static async Task<(string Owner, NpgsqlDataSource AsOwner)> CreateTenantDocsAsync(CheckRoom room, int rowsPerTenant, bool policy, CancellationToken ct)
    {
        var owner = await room.CreateRoleAsync("app", ct);
        await room.ExecuteAsync($"""
            CREATE TABLE tenant_docs (id bigint PRIMARY KEY, tenant_id int NOT NULL, body text NOT NULL, embedding vector(8) NOT NULL);
            GRANT USAGE, CREATE ON SCHEMA {room.Schema} TO {owner};
            ALTER TABLE tenant_docs OWNER TO {owner};
            """, ct);
        var vectors = CheckData.Vectors(3 * rowsPerTenant, seed: 9);
        for (var i = 0; i < vectors.Length; i++)
        {
            await room.ExecuteAsync("INSERT INTO tenant_docs VALUES ($1, $2, $3, $4)", ct, (long)(i + 1), i % 3 + 1, $"doc {i + 1}", new Vector(vectors[i]));
        }

        if (policy)
        {
            await room.ExecuteAsync("""
                ALTER TABLE tenant_docs ENABLE ROW LEVEL SECURITY;
                ALTER TABLE tenant_docs FORCE ROW LEVEL SECURITY;
                CREATE POLICY tenant_isolation ON tenant_docs USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::int);
                """, ct);
        }

        return (owner, room.DataSourceAs(owner, b =>
        {
            b.MaxPoolSize = 1;
            b.NoResetOnClose = true;
        }));
    }

    private static async Task<CheckResult> TenantPolicyAsync(CheckRoom room, string sql, CancellationToken ct)
    {
        var (owner, asOwner) = await CreateTenantDocsAsync(room, 3, policy: false, ct);
        await using (var command = asOwner.CreateCommand(sql))
        {
            await command.ExecuteNonQueryAsync(ct);
        }

        var (unset, error) = await TryAsync(asOwner, "SELECT count(*) FROM tenant_docs", ct);
        if (error is not null)
        {
            return CheckResult.Fail("no rows and no error with no tenant set", error);
        }

        if (Convert.ToInt64(unset, System.Globalization.CultureInfo.InvariantCulture) != 0)
        {
            return CheckResult.Fail($"the owner ({owner}) sees no row with no tenant set", $"it sees {unset} rows of 3 tenants");
        }

        await using var connection = await asOwner.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var set = new NpgsqlCommand("SELECT set_config('app.tenant_id', '2', true)", connection, transaction))
        {
            await set.ExecuteNonQueryAsync(ct);
        }

        var seen = new List<string>();
        await using (var read = new NpgsqlCommand("SELECT tenant_id FROM tenant_docs ORDER BY id", connection, transaction))
        await using (var reader = await read.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                seen.Add(reader.GetInt32(0).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        if (seen.Count != 3 || seen.Any(t => t != "2"))
        {
            return CheckResult.Fail("tenant 2's 3 rows, as the owner, with app.tenant_id = 2", $"rows of tenants {CheckData.Show(seen)}");
        }

        await using (var savepoint = new NpgsqlCommand("SAVEPOINT before_write", connection, transaction))
        {
            await savepoint.ExecuteNonQueryAsync(ct);
        }

        try
        {
            await using var write = new NpgsqlCommand("INSERT INTO tenant_docs VALUES (99, 3, 'planted', '[1,1,1,1,1,1,1,1]')", connection, transaction);
            await write.ExecuteNonQueryAsync(ct);
            return CheckResult.Fail("a row for tenant 3 refused while tenant 2 is set", "it was written");
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            return CheckResult.Pass("the owner sees and writes only the tenant set, and nothing with none set");
        }
    }

    private static async Task<CheckResult> TenantNearestAsync(CheckRoom room, Func<NpgsqlDataSource, int, Vector, int, Task<List<long>>> search, CancellationToken ct)
    {
        var (_, asOwner) = await CreateTenantDocsAsync(room, 100, policy: true, ct);
        var query = CheckData.Query(90);
        var ids = await search(asOwner, 2, query, 5);
        var exact = await CheckData.ExactIdsAsync(room, tenant: 2, "SELECT id FROM tenant_docs WHERE tenant_id = 2 ORDER BY embedding <=> $1 LIMIT 5", ct, query);
        if (!ids.SequenceEqual(exact))
        {
            return CheckResult.Fail($"tenant 2's 5 nearest: {CheckData.Show(exact)}", CheckData.Show(ids));
        }

        var left = (await CheckRoom.RowsAsync(asOwner, "SELECT coalesce(current_setting('app.tenant_id', true), '')", ct))[0][0] as string;
        return string.IsNullOrEmpty(left)
            ? CheckResult.Pass("tenant 2's 5 nearest, and no tenant left on the pooled connection")
            : CheckResult.Fail("no tenant left on the connection after the search", $"app.tenant_id = '{left}' stays on it: the next request, another tenant's, would read tenant {left}'s rows");
    }
}
