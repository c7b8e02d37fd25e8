using System.Diagnostics;
using System.Globalization;
using PgVectorModule.Problems;

namespace PgVectorModule.Lessons.Lesson08;

public sealed partial class OperationsLesson
{
    /// <summary>Server connections pgBouncer opens per database and user.</summary>
    public const int PoolSize = 4;

    /// <summary>Concurrent clients in the pooling step, each with a connection of its own to pgBouncer.</summary>
    public const int Clients = 50;

    public const int SearchesPerClient = 5;

    /// <summary>The pgBouncer release that first tracks protocol-level prepared statements (max_prepared_statements).</summary>
    public static readonly Version PreparedStatementsSupport = new(1, 21);

    private const string BouncedApplication = "lesson08-pgbouncer";

    private static async Task PgBouncerAsync(Lesson lesson, LocalServers servers, int port, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("pgbouncer", "pgBouncer in transaction mode",
            "pgBouncer speaks PostgreSQL's protocol and keeps a few server connections. In transaction mode a client holds one for a transaction only: " +
            "hundreds of clients (app instances, each with its own Npgsql pool) share a handful of server processes.");
        var primary = lesson.Settings.ConnectionString();
        var version = await PgBouncerVersionAsync(servers, cancellationToken);
        var tracksPrepared = version >= PreparedStatementsSupport;
        var folder = await servers.NewFolderAsync("pgbouncer", cancellationToken);
        var user = primary.Username ?? LocalServers.ServerUser;
        var ini = $"""
            [databases]
            ; any database a client names, on the course server
            * = host={primary.Host} port={primary.Port}

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {port}
            unix_socket_dir =
            ; a server connection belongs to a client for one transaction, then goes back to the pool
            pool_mode = transaction
            default_pool_size = {PoolSize}
            max_client_conn = 200
            auth_type = {(primary.Password is null ? "trust" : "scram-sha-256")}
            auth_file = {folder}/userlist.txt
            admin_users = {user}
            logfile = {folder}/pgbouncer.log
            pidfile = {folder}/pgbouncer.pid
            {(tracksPrepared ? "; pgBouncer 1.21+: prepare each client's protocol-level prepared statements on whichever server connection it gets\nmax_prepared_statements = 100" : "; pgBouncer before 1.21 cannot carry prepared statements across server connections")}
            """;
        await servers.WriteFileAsync(Path.Combine(folder, "pgbouncer.ini"), ini, cancellationToken);
        // userlist.txt: the user and password pgBouncer checks clients against and logs in to the server with.
        await servers.WriteFileAsync(Path.Combine(folder, "userlist.txt"), $"\"{user}\" \"{(primary.Password ?? "").Replace("\"", "\"\"", StringComparison.Ordinal)}\"\n", cancellationToken);
        // The whole configuration and the command that starts it: a detail; the sentence after says the settings that matter.
        using (lesson.Detail())
        {
            lesson.Sql(ini, [$"userlist.txt: \"{user}\" \"****\" (the password from DATABASE_URL; a production pgBouncer reads SCRAM secrets or uses auth_query)"]);
            lesson.Sql($"pgbouncer -d {folder}/pgbouncer.ini");
        }

        lesson.Say($"pgbouncer.ini: pool_mode = transaction, default_pool_size = {PoolSize} (server connections per database and user), max_client_conn = 200, " +
                   $"every database on {primary.Host}:{primary.Port}{(tracksPrepared ? ", max_prepared_statements = 100" : "")}.");
        await servers.StartPgBouncerAsync(Path.Combine(folder, "pgbouncer.ini"), Path.Combine(folder, "pgbouncer.pid"), Path.Combine(folder, "pgbouncer.log"), port, cancellationToken);

        var bounced = new NpgsqlConnectionStringBuilder(primary.ConnectionString)
        {
            Host = "127.0.0.1",
            Port = port,
            // Npgsql resets a pooled connection (DISCARD ALL) before reusing it; through pgBouncer in transaction mode
            // that reset would run on whatever server connection comes next and clean nothing of this client's.
            NoResetOnClose = true,
            MaxPoolSize = 100,
            ApplicationName = BouncedApplication,
        };
        var builder = new NpgsqlDataSourceBuilder(bounced.ConnectionString);
        builder.UseVector();
        await using var throughBouncer = builder.Build();
        lesson.Sql("Host=127.0.0.1;Port=" + port + ";No Reset On Close=true;Application Name=" + BouncedApplication + ";Username=...;Database=...");
        await using (var command = throughBouncer.CreateCommand("SELECT inet_server_port() AS server_port, pg_backend_pid() AS server_pid"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            lesson.Say($"pgBouncer {version} answers on 127.0.0.1:{port}; the query ran on the server at port {reader.GetInt32(0)} (backend {reader.GetInt32(1)}).");
        }

        await ManyClientsAsync(lesson, servers, throughBouncer, port, user, primary.Password, question, cancellationToken);
        NpgsqlSettingsTable(lesson, version, tracksPrepared);
        await WhatBreaksAsync(lesson, throughBouncer, bounced, tracksPrepared, cancellationToken);
    }

    private static async Task<Version> PgBouncerVersionAsync(LocalServers servers, CancellationToken cancellationToken)
    {
        var result = await LocalServers.RunAsync(servers.PgBouncerProgram!, ["--version"], asServerUser: true, password: null, cancellationToken);
        var words = result.Output.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
        var text = words.SkipWhile(w => !w.Equals("PgBouncer", StringComparison.OrdinalIgnoreCase)).Skip(1).FirstOrDefault() ?? "";
        return Version.TryParse(text, out var version)
            ? version
            : throw new SetupException($"'{servers.PgBouncerProgram} --version' did not print a version ({result.Output.Trim()}): point PGBOUNCER at a pgbouncer binary.", ExitCodes.ToolMissing);
    }

    // ---------------------------------------------------------------- many clients, few server connections

    private static async Task ManyClientsAsync(Lesson lesson, LocalServers servers, NpgsqlDataSource throughBouncer, int port, string user, string? password,
        Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("pooled-clients", $"{Clients} clients, {PoolSize} server connections",
            $"{Clients} clients, each with a connection of its own, run {SearchesPerClient} searches each, a transaction that also waits 20 ms (a request doing other work). " +
            "The load runs straight to the server, then through pgBouncer, while another connection counts the server's backends in pg_stat_activity.");
        var search = $"SELECT id FROM {lesson.Schema}.vector_documents ORDER BY embedding <=> @q LIMIT 5";
        lesson.Sql($"BEGIN;\n{search};\nSELECT pg_sleep(0.02);\nCOMMIT;", ["@q = the question's vector; names are schema-qualified: pgBouncer refuses Search Path (step 11)"]);

        var direct = lesson.Settings.ConnectionString();
        direct.MaxPoolSize = 100;
        direct.ApplicationName = "lesson08-direct";
        var directBuilder = new NpgsqlDataSourceBuilder(direct.ConnectionString);
        directBuilder.UseVector();
        await using var straight = directBuilder.Build();

        var rows = new List<(string Path, int Searches, long Ms, int PeakServer)>();
        foreach (var (path, source, application) in new[] { ("straight to the server", straight, "lesson08-direct"), ("through pgBouncer", throughBouncer, BouncedApplication) })
        {
            using var sampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var peak = SamplePeakAsync(lesson, application, sampling.Token);
            Task<IReadOnlyList<Dictionary<string, string>>>? pools = null;
            var watch = Stopwatch.StartNew();
            var load = Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => ClientAsync(source, search, question, cancellationToken)));
            if (source == throughBouncer)
            {
                // pgBouncer's own view, mid-run: its admin console speaks only the simple query protocol, which psql
                // uses and Npgsql does not.
                await Task.Delay(200, cancellationToken);
                pools = ShowPoolsAsync(servers, port, user, password, cancellationToken);
            }

            var done = (await load).Sum();
            watch.Stop();
            await sampling.CancelAsync();
            rows.Add((path, done, watch.ElapsedMilliseconds, await peak));
            if (pools is not null)
            {
                var shown = await pools;
                // pgBouncer's admin console and its whole answer: a detail; the sentence after says what it counted.
                using (lesson.Detail())
                {
                    lesson.Sql("psql -h 127.0.0.1 -p " + port + " -U " + user + " -d pgbouncer --csv -c 'SHOW POOLS'  -- 200 ms into the run");
                    lesson.Table(shown, ("database", r => r.GetValueOrDefault("database")), ("cl_active", r => r.GetValueOrDefault("cl_active")),
                        ("cl_waiting", r => r.GetValueOrDefault("cl_waiting")), ("sv_active", r => r.GetValueOrDefault("sv_active")),
                        ("sv_idle", r => r.GetValueOrDefault("sv_idle")), ("maxwait_us", r => r.GetValueOrDefault("maxwait_us")), ("pool_mode", r => r.GetValueOrDefault("pool_mode")));
                }

                var pool = shown.FirstOrDefault(r => r.ContainsKey("cl_waiting"));
                lesson.Say(pool is null
                    ? $"SHOW POOLS (pgBouncer's admin console, 200 ms into the run): {shown.FirstOrDefault()?.GetValueOrDefault("database") ?? "no pool"}."
                    : $"SHOW POOLS (pgBouncer's admin console), 200 ms into the run: {pool.GetValueOrDefault("cl_active")} clients holding a server connection (cl_active), " +
                      $"{pool.GetValueOrDefault("cl_waiting")} queued for one (cl_waiting), {pool.GetValueOrDefault("sv_active")} server connections in use (sv_active).", Tone.Aside);
            }
        }

        lesson.Table(rows, ("path", r => r.Path), ("clients", _ => Clients), ("searches done", r => r.Searches), ("ms", r => r.Ms), ("most server connections at once", r => r.PeakServer));
        var bounced = rows[1];
        lesson.Say($"Through pgBouncer: {bounced.Searches} searches from {Clients} clients over at most {bounced.PeakServer} server connection(s) (default_pool_size {PoolSize}); " +
                   $"straight to the server: {rows[0].PeakServer}, each a process with its own memory (a pgBouncer client costs a few kB).");
    }

    private static async Task<int> ClientAsync(NpgsqlDataSource source, string search, Vector question, CancellationToken cancellationToken)
    {
        var done = 0;
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        for (var i = 0; i < SearchesPerClient; i++)
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using (var command = new NpgsqlCommand(search, connection, transaction))
            {
                command.Parameters.AddWithValue("q", question);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                }
            }

            await using (var wait = new NpgsqlCommand("SELECT pg_sleep(0.02)", connection, transaction))
            {
                await wait.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
            done++;
        }

        return done;
    }

    /// <summary>The most server backends with <paramref name="application"/> seen at once, polled every 10 ms until cancelled.</summary>
    private static async Task<int> SamplePeakAsync(Lesson lesson, string application, CancellationToken cancellationToken)
    {
        var peak = 0;
        await using var connection = await lesson.DataSource.OpenConnectionAsync(CancellationToken.None);
        await using var command = new NpgsqlCommand(
            "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = @application AND datname = current_database()", connection);
        command.Parameters.AddWithValue("application", application);
        while (!cancellationToken.IsCancellationRequested)
        {
            peak = Math.Max(peak, (int)(await command.ExecuteScalarAsync(CancellationToken.None))!);
            try
            {
                await Task.Delay(10, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return peak;
    }

    private static async Task<IReadOnlyList<Dictionary<string, string>>> ShowPoolsAsync(LocalServers servers, int port, string user, string? password, CancellationToken cancellationToken)
    {
        var result = await servers.PgAsync("psql", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-U", user, "-d", "pgbouncer",
            "--csv", "-c", "SHOW POOLS"], password, cancellationToken);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (result.ExitCode != 0 || lines.Length == 0)
        {
            return [new Dictionary<string, string> { ["database"] = $"(psql: {FirstLine(result.Output)})" }];
        }

        var header = lines[0].Split(',');
        // The admin database's own pool says nothing about the course database's clients.
        return lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second))
            .Where(r => r.GetValueOrDefault("database") != "pgbouncer").ToList();
    }

    // ---------------------------------------------------------------- what Npgsql needs

    private static void NpgsqlSettingsTable(Lesson lesson, Version version, bool tracksPrepared)
    {
        lesson.Step("npgsql-through-pgbouncer", "What Npgsql needs through pgBouncer",
            "Transaction mode gives each transaction any server connection. Whatever a session keeps between transactions is therefore lost, or worse, left for the next client.");
        lesson.Say("No Reset On Close=true; SET LOCAL, never SET; no Search Path or Options in the connection string; " +
                   (tracksPrepared ? "prepared statements work (max_prepared_statements); " : $"no Max Auto Prepare or Prepare() before pgBouncer {PreparedStatementsSupport}; ") +
                   "advisory locks, LISTEN, temporary tables and migrations straight to the server.");
        // Each setting or feature with why: a reference for later.
        using (lesson.Detail())
        {
            lesson.Table(new[]
                {
                    ("No Reset On Close=true", "skip Npgsql's DISCARD ALL when a pooled connection is reused: through pgBouncer it would reset someone else's server connection, if any"),
                    ("Max Auto Prepare (0 by default), Prepare()", tracksPrepared
                        ? $"pgBouncer {version} has max_prepared_statements: prepared statements work, pgBouncer re-prepares them on each server connection"
                        : $"pgBouncer {version} is older than 1.21: a statement prepared on one server connection is unknown on the next; leave Max Auto Prepare at 0 and do not call Prepare()"),
                    ("Search Path, Options", "startup parameters pgBouncer does not track are refused; qualify names or SET LOCAL search_path in the transaction"),
                    ("SET without LOCAL", "stays on the server connection after the transaction: the next client gets it. Use SET LOCAL or set_config(name, value, true)"),
                    ("session advisory locks, LISTEN, temporary tables, WITH HOLD cursors", "belong to one server connection: use transaction-level forms (pg_advisory_xact_lock) or connect to the server directly"),
                    ("migrations and admin work", "connect to the server directly, not through pgBouncer"),
                    ("Max Pool Size", "the pool of connections to pgBouncer: cheap; the server-side limit is pgBouncer's default_pool_size"),
                },
                ("setting or feature", r => r.Item1), ("through pgBouncer in transaction mode", r => r.Item2));
        }
    }

    // ---------------------------------------------------------------- what breaks, run

    private static async Task WhatBreaksAsync(Lesson lesson, NpgsqlDataSource throughBouncer, NpgsqlConnectionStringBuilder bounced, bool tracksPrepared, CancellationToken cancellationToken)
    {
        lesson.DeepDive("what-breaks", "What breaks, run through pgBouncer",
            "Two clients, A and B, each with its own connection to pgBouncer. pgBouncer hands out the most recently released server connection first.");
        await using var a = await throughBouncer.OpenConnectionAsync(cancellationToken);
        await using var b = await throughBouncer.OpenConnectionAsync(cancellationToken);
        var rows = new List<(string Client, string Sql, string Result)>();

        async Task<string> Run(string client, NpgsqlConnection connection, string sql, NpgsqlTransaction? transaction = null)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var values = new List<string>();
            while (await reader.ReadAsync(cancellationToken))
            {
                values.Add(string.Join(", ", Enumerable.Range(0, reader.FieldCount).Select(i => $"{reader.GetName(i)} {reader.GetValue(i)}")));
            }

            var result = values.Count == 0 ? "done" : string.Join("; ", values);
            rows.Add((client, sql, result));
            return result;
        }

        // SET LOCAL: the setting lives and dies with the transaction.
        await using (var transaction = await a.BeginTransactionAsync(cancellationToken))
        {
            await Run("A", a, "SET LOCAL statement_timeout = '1234ms'", transaction);
            await Run("A", a, "SELECT current_setting('statement_timeout') AS statement_timeout, pg_backend_pid() AS backend", transaction);
            await transaction.CommitAsync(cancellationToken);
        }

        await Run("B", b, "SELECT current_setting('statement_timeout') AS statement_timeout, pg_backend_pid() AS backend");
        // SET without LOCAL (is_local false): it outlives the transaction, on the server connection, for the next client.
        await Run("A", a, "SELECT set_config('statement_timeout', '1234ms', false) AS set_to, pg_backend_pid() AS backend");
        var leaked = await Run("B", b, "SELECT current_setting('statement_timeout') AS statement_timeout, pg_backend_pid() AS backend");
        lesson.Table(rows, ("client", r => r.Client), ("SQL", r => r.Sql), ("result", r => r.Result));
        lesson.Say(leaked.Contains("1234ms", StringComparison.Ordinal)
            ? ("SET LOCAL ended with A's transaction; B saw the default. A's SET without LOCAL leaked: B, another client, now runs with A's statement_timeout on the same server backend.", Tone.Plain)
            : ("B got another server connection this time, so A's setting did not reach it; run again and it will.", Tone.Warning));

        using (lesson.Detail())
        {
            lesson.Say("Prepared statements: A prepares a statement, B holds that server connection in a transaction, A executes its statement again.", Tone.Aside);
        }

        var prepared = new List<(string Client, string What, string Result)>();
        await using (var statement = new NpgsqlCommand("SELECT pg_backend_pid()", a))
        {
            await statement.PrepareAsync(cancellationToken);
            prepared.Add(("A", "Prepare(); ExecuteScalar()", $"backend {await statement.ExecuteScalarAsync(cancellationToken)}"));
            await using var hold = await b.BeginTransactionAsync(cancellationToken);
            await using (var holding = new NpgsqlCommand("SELECT pg_backend_pid()", b, hold))
            {
                prepared.Add(("B", "BEGIN; SELECT pg_backend_pid()", $"backend {await holding.ExecuteScalarAsync(cancellationToken)}, held"));
            }

            try
            {
                prepared.Add(("A", "ExecuteScalar() again", $"backend {await statement.ExecuteScalarAsync(cancellationToken)}"));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidSqlStatementName)
            {
                prepared.Add(("A", "ExecuteScalar() again", $"failed: {e.SqlState} {e.MessageText}"));
            }

            await hold.CommitAsync(cancellationToken);
        }

        await using (var unprepared = new NpgsqlCommand("SELECT pg_backend_pid()", a))
        {
            prepared.Add(("A", "the same command, not prepared (Max Auto Prepare=0)", $"backend {await unprepared.ExecuteScalarAsync(cancellationToken)}"));
        }

        lesson.Table(prepared, ("client", r => r.Client), ("what", r => r.What), ("result", r => r.Result));
        var failed = prepared.Any(p => p.Result.StartsWith("failed", StringComparison.Ordinal));
        lesson.Say(failed
            ? ("The statement A prepared lived on one server connection; its next execution got another: prepared statement does not exist. Unprepared, it runs anywhere. " +
              $"pgBouncer {PreparedStatementsSupport} and later re-prepare it for you when max_prepared_statements is set.", Tone.Plain)
            : tracksPrepared
                ? ("pgBouncer re-prepared A's statement on the other server connection (max_prepared_statements): prepared statements work.", Tone.Plain)
                : ("A's second execution got the same server connection this time.", Tone.Warning));

        using (lesson.Detail())
        {
            lesson.Say("Startup parameters: Search Path is sent when the connection opens, and pgBouncer does not know it.", Tone.Aside);
        }

        var withSearchPath = new NpgsqlConnectionStringBuilder(bounced.ConnectionString) { SearchPath = lesson.Schema, Pooling = false };
        lesson.Sql("Host=127.0.0.1;Port=" + bounced.Port + ";Search Path=" + lesson.Schema + ";...");
        try
        {
            await using var connection = new NpgsqlConnection(withSearchPath.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            lesson.Say("pgBouncer accepted Search Path (it tracks search_path through track_extra_parameters).", Tone.Warning);
        }
        catch (PostgresException e)
        {
            lesson.Say($"Refused: {e.SqlState} {e.MessageText}", Tone.Good);
        }
    }
}
