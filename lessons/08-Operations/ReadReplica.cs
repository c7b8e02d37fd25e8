using System.Diagnostics;
using System.Globalization;
using NpgsqlTypes;
using PgVectorModule.Data;
using PgVectorModule.Problems;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson08;

/// <param name="ConnectionString">The standby alone.</param>
/// <param name="DataDirectory">Where the lesson made it; null for the standby STANDBY_URL names, which the lesson neither starts nor stops.</param>
/// <param name="Name">Its cluster_name: the application_name it shows in the primary's pg_stat_replication.</param>
public sealed record Standby(NpgsqlConnectionStringBuilder ConnectionString, string? DataDirectory, string? Name);

/// <summary>The data sources of part 1: one over both servers, and its two views by target session.</summary>
internal sealed class Routing : IAsyncDisposable
{
    private Routing(Standby standby, int primaryPort, string hosts, NpgsqlMultiHostDataSource both, NpgsqlDataSource standbyOnly)
    {
        Standby = standby;
        Hosts = hosts;
        PrimaryPort = primaryPort;
        Both = both;
        StandbyOnly = standbyOnly;
    }

    public Standby Standby { get; }
    public int PrimaryPort { get; }

    /// <summary>The Host keyword's value: primary first, then the standby.</summary>
    public string Hosts { get; }

    public NpgsqlMultiHostDataSource Both { get; }

    /// <summary>Writes: only a server that accepts them (the primary).</summary>
    public NpgsqlDataSource Writes => Both.WithTargetSession(TargetSessionAttributes.ReadWrite);

    /// <summary>Searches: a standby when one answers, else the primary.</summary>
    public NpgsqlDataSource Searches => Both.WithTargetSession(TargetSessionAttributes.PreferStandby);

    /// <summary>The standby alone, for what only it can say (its replay position).</summary>
    public NpgsqlDataSource StandbyOnly { get; }

    public static Routing Create(Lesson lesson, Standby standby)
    {
        var primary = lesson.Settings.ConnectionString();
        var standbyHost = standby.ConnectionString;
        // One connection string, two hosts. Npgsql asks each server whether it is in recovery and routes by the
        // target session attributes the caller picks; Load Balance Hosts spreads connections over equal candidates.
        var hosts = $"{primary.Host}:{primary.Port},{standbyHost.Host}:{standbyHost.Port}";
        var both = new NpgsqlConnectionStringBuilder(primary.ConnectionString)
        {
            Host = hosts,
            LoadBalanceHosts = true,
            SearchPath = $"{lesson.Schema}, public",
            ApplicationName = "lesson08-routing",
        };
        var builder = new NpgsqlDataSourceBuilder(both.ConnectionString);
        builder.UseVector();
        return new Routing(standby, primary.Port, hosts, builder.BuildMultiHost(), ModuleDataSource.Create(standbyHost, lesson.Schema));
    }

    public string Role(int port) => port == PrimaryPort ? "primary" : port == Standby.ConnectionString.Port ? "standby" : $"port {port}";

    public async ValueTask DisposeAsync()
    {
        await Both.DisposeAsync();
        await StandbyOnly.DisposeAsync();
    }
}

public sealed partial class OperationsLesson
{
    /// <summary>How long the lesson waits for the standby to replay a write before it calls the standby broken.</summary>
    public static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(30);

    // ---------------------------------------------------------------- make the standby

    private static async Task<Standby> MakeStandbyAsync(Lesson lesson, LocalServers servers, NpgsqlConnectionStringBuilder? given, int port, CancellationToken cancellationToken)
    {
        if (given is not null)
        {
            lesson.Step("standby-url", "A hot standby: the one STANDBY_URL names",
                $"STANDBY_URL points at {given.Host}:{given.Port}. The lesson uses it as it is: it does not start it, pause it or stop it.");
            var standby = new Standby(given, DataDirectory: null, Name: null);
            await CheckStandbyAsync(lesson, standby, cancellationToken);
            return standby;
        }

        lesson.Step("standby", "A hot standby with pg_basebackup",
            "pg_basebackup copies the running primary's files and the WAL written meanwhile; --write-recovery-conf makes the copy start as a standby " +
            "that streams the primary's WAL, replays it and answers read-only queries (hot_standby).");
        // The copy is the technique; starting the server on it (pg_ctl start) is a detail.
        var made = await MakeStandbyAsync(servers, lesson.Settings.ConnectionString(), port, $"lesson08_{Environment.ProcessId}", (command, notes) =>
        {
            using (command.StartsWith("pg_basebackup ", StringComparison.Ordinal) ? null : lesson.Detail())
            {
                lesson.Sql(command, notes);
            }
        }, cancellationToken);
        await CheckStandbyAsync(lesson, made, cancellationToken);
        return made;
    }

    /// <summary>
    /// Makes a standby of <paramref name="primary"/> in the run's folder and starts it on <paramref name="port"/>.
    /// <paramref name="show"/> receives each command as it runs.
    /// </summary>
    public static async Task<Standby> MakeStandbyAsync(LocalServers servers, NpgsqlConnectionStringBuilder primary, int port, string name,
        Action<string, IReadOnlyList<string>?>? show, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(servers);
        ArgumentNullException.ThrowIfNull(primary);
        var data = Path.Combine(await servers.NewFolderAsync("standby", cancellationToken), "data");
        string[] basebackup =
        [
            "-h", primary.Host!, "-p", primary.Port.ToString(CultureInfo.InvariantCulture), "-U", primary.Username ?? LocalServers.ServerUser,
            "-D", data, "--wal-method=stream", "--write-recovery-conf", "--checkpoint=fast",
            "--no-sync", // a throwaway copy: a real standby leaves this out
        ];
        show?.Invoke("pg_basebackup " + string.Join(' ', basebackup), ["the password travels in PGPASSWORD; --write-recovery-conf copies it into the standby's postgresql.auto.conf"]);
        var watch = Stopwatch.StartNew();
        var copy = await servers.PgAsync("pg_basebackup", basebackup, primary.Password, cancellationToken);
        if (copy.ExitCode != 0)
        {
            throw new SetupException(
                $"pg_basebackup could not copy {primary.Host}:{primary.Port} ({FirstLine(copy.Output)}). The user in DATABASE_URL needs the REPLICATION attribute (or superuser), " +
                "and the primary's pg_hba.conf a 'host replication' line for this machine; the course database made by scripts/db.sh has both. Or set STANDBY_URL to a standby you run.",
                ExitCodes.LocalServerFailed);
        }

        var copied = watch.Elapsed;
        var start = await servers.StartPostgresAsync("standby", data, port, [$"cluster_name={name}", "hot_standby=on", "shared_buffers=128MB"], cancellationToken);
        show?.Invoke(start, [$"copied in {copied.TotalSeconds:0.0} s; the standby listens on 127.0.0.1:{port}"]);
        var standby = new NpgsqlConnectionStringBuilder(primary.ConnectionString) { Host = "127.0.0.1", Port = port };
        return new Standby(standby, data, name);
    }

    private static async Task CheckStandbyAsync(Lesson lesson, Standby standby, CancellationToken cancellationToken)
    {
        const string who = "SELECT inet_server_port() AS port, pg_is_in_recovery() AS in_recovery, pg_postmaster_start_time() AS started";
        lesson.Sql(who);
        var rows = new List<(string Server, IReadOnlyDictionary<string, object?> Row)>();
        using (lesson.QuietSql()) // the statement just shown, on the primary
        {
            rows.Add(("DATABASE_URL", (await lesson.QueryAsync(who, cancellationToken))[0]));
        }

        await using (var source = ModuleDataSource.Create(standby.ConnectionString, lesson.Schema))
        await using (var command = source.CreateCommand(who))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            rows.Add(("standby", new Dictionary<string, object?> { ["port"] = reader.GetInt32(0), ["in_recovery"] = reader.GetBoolean(1), ["started"] = reader.GetDateTime(2) }));
        }

        lesson.Table(rows, ("server", r => r.Server), ("inet_server_port()", r => r.Row["port"]), ("pg_is_in_recovery()", r => r.Row["in_recovery"]));

        const string replication = "SELECT application_name, client_addr, state, sync_state FROM pg_stat_replication";
        IReadOnlyList<IReadOnlyDictionary<string, object?>> senders;
        // The primary's view of its standbys: a detail; the sentence below says what it shows.
        using (lesson.Detail())
        {
            senders = await lesson.QueryAsync(replication, cancellationToken);
            lesson.Table(senders, ("application_name", r => r["application_name"]), ("client_addr", r => r["client_addr"]?.ToString()), ("state", r => r["state"]), ("sync_state", r => r["sync_state"]));
        }

        lesson.Say(standby.Name is { } name && senders.Any(r => (string?)r["application_name"] == name && (string?)r["state"] == "streaming")
            ? ($"pg_stat_replication: the primary streams its WAL to {name}, asynchronously (it does not wait for the standby to confirm a commit).", Tone.Plain)
            : ("pg_stat_replication on the primary has one row per standby connected to it.", Tone.Aside));
    }

    /// <summary>Before any work: STANDBY_URL must answer and be in recovery.</summary>
    private static async Task CheckGivenStandbyAsync(NpgsqlConnectionStringBuilder given, CancellationToken cancellationToken)
    {
        var where = $"{given.Host}:{given.Port}";
        bool inRecovery;
        try
        {
            var quick = new NpgsqlConnectionStringBuilder(given.ConnectionString) { Timeout = Math.Min(given.Timeout, 5), Pooling = false };
            await using var connection = new NpgsqlConnection(quick.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT pg_is_in_recovery()", connection);
            inRecovery = await command.ExecuteScalarAsync(cancellationToken) is true;
        }
        catch (NpgsqlException e) when (e is not PostgresException || e is PostgresException { SqlState: PostgresErrorCodes.CannotConnectNow })
        {
            throw new SetupException($"STANDBY_URL ({where}) does not answer ({e.Message.Split('\n')[0].TrimEnd('.')}): start it (scripts/db.sh replica up), or unset STANDBY_URL and the lesson makes a standby of its own.", ExitCodes.DatabaseUnavailable, e);
        }

        if (!inRecovery)
        {
            throw new SetupException($"STANDBY_URL ({where}) is not in recovery: it is a primary, not a standby. Point it at a standby of DATABASE_URL's server (scripts/db.sh replica up prints one), or unset it.", ExitCodes.InvalidInput);
        }
    }

    // ---------------------------------------------------------------- one data source, two servers

    private static async Task RouteSearchesAsync(Lesson lesson, Routing routing, VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("multi-host", "One data source over both servers",
            "Host lists both servers. WithTargetSession gives views of one multi-host data source: ReadWrite connects only to the primary, PreferStandby to a standby while one answers.");
        lesson.Sql($$"""
            var builder = new NpgsqlDataSourceBuilder("Host={{routing.Hosts}};Load Balance Hosts=true;Username=...;Database=...");
            builder.UseVector();
            await using var both = builder.BuildMultiHost();
            var writes = both.WithTargetSession(TargetSessionAttributes.ReadWrite);
            var searches = both.WithTargetSession(TargetSessionAttributes.PreferStandby);
            """);
        await WaitForStandbyAsync(lesson, routing, await CurrentLsnAsync(routing, cancellationToken), show: false, cancellationToken);
        var rows = new List<(string Query, string Through, string AnsweredBy, bool Recovery, string Result)>();
        for (var i = 1; i <= 3; i++)
        {
            var (server, hits) = await SearchAsync(routing.Searches, shape, question, cancellationToken);
            rows.Add(($"search {i}", "searches (PreferStandby)", routing.Role(server.Port), server.InRecovery, hits.Count > 0 ? hits[0].Title : "(none)"));
        }

        await using (var connection = await routing.Writes.OpenConnectionAsync(cancellationToken))
        {
            var server = await ServerAsync(connection, cancellationToken);
            rows.Add(("write check", "writes (ReadWrite)", routing.Role(server.Port), server.InRecovery, "connected to a server that accepts writes"));
        }

        // Each query asked the server that ran it who it is: the queries and the answers are a detail; the sentence below counts them.
        using (lesson.Detail())
        {
            lesson.Sql("SELECT inet_server_port(), pg_is_in_recovery();  -- on the connection each search used\n" +
                       "VectorSearch.Nearest(db, question, limit: 3)   -- a SearchDbContext over `searches`");
            lesson.Table(rows, ("query", r => r.Query), ("data source", r => r.Through), ("answered by", r => r.AnsweredBy), ("pg_is_in_recovery()", r => r.Recovery), ("top hit / result", r => r.Result));
        }

        var searchedOnStandby = rows.Count(r => r.Query.StartsWith("search", StringComparison.Ordinal) && r.AnsweredBy == "standby");
        lesson.Say($"{searchedOnStandby} of 3 searches ran on the standby; the write check ran on the primary.", Tone.Key);
    }

    private sealed record Server(int Port, bool InRecovery);

    private static async Task<Server> ServerAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT inet_server_port(), pg_is_in_recovery()", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new Server(reader.GetInt32(0), reader.GetBoolean(1));
    }

    /// <summary>One search through <paramref name="source"/>, with the server that ran it.</summary>
    private static async Task<(Server Server, List<VectorHit> Hits)> SearchAsync(NpgsqlDataSource source, VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(source), shape);
        await db.Database.OpenConnectionAsync(cancellationToken);
        var server = await ServerAsync((NpgsqlConnection)db.Database.GetDbConnection(), cancellationToken);
        var hits = await VectorSearch.Nearest(db, question, limit: 3).ToListAsync(cancellationToken);
        return (server, hits);
    }

    // ---------------------------------------------------------------- the index on the standby

    private const string NearestSql = "SELECT id, title FROM vector_documents ORDER BY embedding <=> @q LIMIT 5";

    private static async Task StandbyIndexAsync(Lesson lesson, Routing routing, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("index-on-standby", "The HNSW index is on the standby too",
            "A standby replays the primary's WAL, index pages included: its HNSW graph is the primary's, built once. EXPLAIN on the standby (sequential scans discouraged: a table this small would rather be read whole):");
        await using (var connection = await routing.StandbyOnly.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            using (lesson.Detail())
            {
                await lesson.ExecuteAsync("SET LOCAL enable_seqscan = off", connection, cancellationToken);
            }

            await lesson.ExplainAsync(NearestSql, connection, [new NpgsqlParameter("q", question)], cancellationToken);
        }

        lesson.Say("And it refuses writes:", Tone.Aside);
        const string insert = "INSERT INTO vector_documents (title, content, source) VALUES ('on the standby', 'refused', 'docs')";
        lesson.Sql(insert);
        try
        {
            await using var command = routing.StandbyOnly.CreateCommand(insert);
            await command.ExecuteNonQueryAsync(cancellationToken);
            lesson.Say("The standby took the write.", Tone.Bad);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ReadOnlySqlTransaction)
        {
            lesson.Say($"Refused: {e.SqlState} {e.MessageText}", Tone.Good);
        }
    }

    // ---------------------------------------------------------------- lag

    private static async Task ReplicationLagAsync(Lesson lesson, Routing routing, CancellationToken cancellationToken)
    {
        lesson.DeepDive("replication-lag", "Replication lag: pg_stat_replication",
            "The primary reports, per standby, how far it has sent, written, flushed and replayed the WAL (log sequence numbers, LSNs), and for how long the replay trails. Alert on these.");
        await lesson.ExecuteAsync("UPDATE vector_documents SET source = source WHERE id <= 50", cancellationToken);
        var lag = await lesson.QueryAsync("""
            SELECT application_name, sent_lsn, replay_lsn,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS bytes_behind, replay_lag
            FROM pg_stat_replication
            """, cancellationToken);
        lesson.Table(lag, ("application_name", r => r["application_name"]), ("sent_lsn", r => r["sent_lsn"]?.ToString()), ("replay_lsn", r => r["replay_lsn"]?.ToString()),
            ("bytes_behind", r => r["bytes_behind"]), ("replay_lag", r => r["replay_lag"]?.ToString() ?? "(idle)"));
        await using var connection = await routing.StandbyOnly.OpenConnectionAsync(cancellationToken);
        var standbySide = await lesson.QueryAsync(
            "SELECT pg_last_wal_receive_lsn() AS received, pg_last_wal_replay_lsn() AS replayed, now() - pg_last_xact_replay_timestamp() AS since_last_replayed_commit",
            connection, [], cancellationToken);
        lesson.Table(standbySide, ("standby: received", r => r["received"]?.ToString()), ("replayed", r => r["replayed"]?.ToString()), ("since the last replayed commit", r => r["since_last_replayed_commit"]?.ToString()));
        lesson.Say("On one machine the standby trails by microseconds; across a network or under load, by seconds: the next step's subject.", Tone.Aside);
    }

    // ---------------------------------------------------------------- read your writes

    private static async Task ReadYourWritesAsync(Lesson lesson, Routing routing, VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        lesson.DeepDive("read-your-writes", "Read your own writes",
            "A document written to the primary and searched for at once on the standby may not be there yet. To make the gap visible (it is microseconds here), the standby's replay is paused first, as a busy standby would lag.");
        var paused = false;
        try
        {
            if (routing.Standby.DataDirectory is not null)
            {
                await using var connection = await routing.StandbyOnly.OpenConnectionAsync(cancellationToken);
                await lesson.QueryAsync("SELECT pg_wal_replay_pause()", connection, [], cancellationToken);
                paused = true;
            }
            else
            {
                lesson.Say("The standby is STANDBY_URL's: the lesson does not pause it, so the gap may close before the search.", Tone.Aside);
            }

            var title = $"Runbook: searching while the standby catches up ({DateTime.UtcNow:HH:mm:ss})";
            const string insert = "INSERT INTO vector_documents (title, content, source, embedding) VALUES (@title, @content, 'docs', @embedding) RETURNING id";
            int id;
            NpgsqlLogSequenceNumber written;
            await using (var connection = await routing.Writes.OpenConnectionAsync(cancellationToken))
            {
                id = (int)(await lesson.QueryAsync(insert, connection,
                    [new NpgsqlParameter("title", title), new NpgsqlParameter("content", "Write to the primary, then read where the write is sure to be."), new NpgsqlParameter("embedding", question)],
                    cancellationToken))[0]["id"]!;
                // After the commit: the position in the WAL that a server must have replayed to show this row.
                written = (NpgsqlLogSequenceNumber)(await lesson.QueryAsync("SELECT pg_current_wal_insert_lsn() AS lsn", connection, [], cancellationToken))[0]["lsn"]!;
            }

            using (lesson.Detail())
            {
                lesson.Say($"Written through writes: document {id}, committed, WAL position {written}. Its embedding is the question's, so a search for the question ranks it first.");
            }

            var rows = new List<(string How, string AnsweredBy, string TopHit, bool Found)>();
            var (server, hits) = await SearchAsync(routing.Searches, shape, question, cancellationToken);
            rows.Add(("search at once through searches", routing.Role(server.Port), hits[0].Title, hits.Any(h => h.Id == id)));

            // Way 1: read what you just wrote from the primary.
            (server, hits) = await SearchAsync(routing.Writes, shape, question, cancellationToken);
            rows.Add(("read from the primary (writes)", routing.Role(server.Port), hits[0].Title, hits.Any(h => h.Id == id)));

            // Way 2: wait until the standby has replayed past the write's position, then search it.
            if (paused)
            {
                await using var connection = await routing.StandbyOnly.OpenConnectionAsync(cancellationToken);
                await lesson.QueryAsync("SELECT pg_wal_replay_resume()", connection, [], cancellationToken);
                paused = false;
            }

            var waited = await WaitForStandbyAsync(lesson, routing, written, show: true, cancellationToken);
            (server, hits) = await SearchAsync(routing.Searches, shape, question, cancellationToken);
            rows.Add(($"wait for replay_lsn >= {written} ({waited.TotalMilliseconds:0} ms), then search", routing.Role(server.Port), hits[0].Title, hits.Any(h => h.Id == id)));

            lesson.Table(rows, ("how", r => r.How), ("answered by", r => r.AnsweredBy), ("top hit", r => r.TopHit), ("new document found", r => r.Found));
            lesson.Say(rows[0].Found
                ? ("The standby had already replayed the write. Across a network it often will not have.", Tone.Warning)
                : ("At once on the standby: not found. From the primary, or on the standby after waiting for the write's LSN: found. " +
                  "Send a user's reads of what they just wrote to the primary (or wait for the LSN, with a time limit); let every other search go to standbys.", Tone.Plain));
        }
        finally
        {
            if (paused)
            {
                await using var connection = await routing.StandbyOnly.OpenConnectionAsync(CancellationToken.None);
                await using var resume = new NpgsqlCommand("SELECT pg_wal_replay_resume()", connection);
                await resume.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
    }

    private static async Task<NpgsqlLogSequenceNumber> CurrentLsnAsync(Routing routing, CancellationToken cancellationToken)
    {
        await using var command = routing.Writes.CreateCommand("SELECT pg_current_wal_insert_lsn()");
        return (NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Polls the standby until it has replayed <paramref name="lsn"/>; a standby that never does is one sentence.</summary>
    private static async Task<TimeSpan> WaitForStandbyAsync(Lesson lesson, Routing routing, NpgsqlLogSequenceNumber lsn, bool show, CancellationToken cancellationToken)
    {
        const string caughtUp = "SELECT pg_last_wal_replay_lsn() >= @written";
        if (show)
        {
            lesson.Sql(caughtUp + "  -- on the standby, every 10 ms until true", [$"@written = {lsn}"]);
        }

        var watch = Stopwatch.StartNew();
        await using var connection = await routing.StandbyOnly.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(caughtUp, connection);
        command.Parameters.Add(new NpgsqlParameter("written", NpgsqlDbType.PgLsn) { Value = lsn });
        while (await command.ExecuteScalarAsync(cancellationToken) is not true)
        {
            if (watch.Elapsed > CatchUpTimeout)
            {
                throw new SetupException(
                    $"The standby at {routing.Standby.ConnectionString.Host}:{routing.Standby.ConnectionString.Port} did not replay the primary's WAL up to {lsn} within {CatchUpTimeout.TotalSeconds:0} s: " +
                    "it is not streaming from DATABASE_URL's server (check pg_stat_replication on the primary and the standby's log).",
                    ExitCodes.LocalServerFailed);
            }

            await Task.Delay(10, cancellationToken);
        }

        return watch.Elapsed;
    }

    // ---------------------------------------------------------------- the standby stops

    private static async Task StandbyStopsAsync(Lesson lesson, LocalServers servers, Routing routing, VectorStoreShape shape, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("standby-stops", "The standby stops: searches fall back to the primary",
            "PreferStandby means a standby when one answers. The lesson stops its standby and searches through the same data source again.");
        if (routing.Standby.DataDirectory is null)
        {
            lesson.Say("The standby is STANDBY_URL's, so the lesson does not stop it. Stop it yourself (scripts/db.sh replica down) and run the lesson with STANDBY_URL unset, or watch this step with the lesson's own standby.", Tone.Aside);
            return;
        }

        using (lesson.Detail())
        {
            lesson.Sql($"pg_ctl -D {routing.Standby.DataDirectory} -m fast stop");
        }

        await servers.StopPostgresAsync(routing.Standby.DataDirectory, cancellationToken);
        var rows = new List<(string Search, string Outcome)>();
        for (var attempt = 1; attempt <= 3 && rows.Count(r => r.Outcome.StartsWith("answered", StringComparison.Ordinal)) < 2; attempt++)
        {
            try
            {
                var (server, hits) = await SearchAsync(routing.Searches, shape, question, cancellationToken);
                rows.Add(($"search {attempt}", $"answered by the {routing.Role(server.Port)} (pg_is_in_recovery() = {server.InRecovery}): {hits[0].Title}"));
            }
            catch (NpgsqlException e) when (e.IsTransient || e is PostgresException { SqlState: PostgresErrorCodes.AdminShutdown })
            {
                // A connection opened to the standby earlier and idle in the pool learns of the shutdown on its next use.
                rows.Add(($"search {attempt}", $"failed: {(e is PostgresException p ? $"{p.SqlState} {p.MessageText}" : e.Message.Split('\n')[0])}"));
            }
        }

        lesson.Table(rows, ("search through searches", r => r.Search), ("outcome", r => r.Outcome));
        var fellBack = rows.Any(r => r.Outcome.StartsWith("answered by the primary", StringComparison.Ordinal));
        lesson.Say(fellBack
            ? ("With the standby gone, the searches were answered by the primary. A connection the pool still held to the standby fails once; Npgsql then marks the host down " +
              "for Host Recheck Seconds (10). Retry such a failure once (EF Core: EnableRetryOnFailure) and users see none.", Tone.Plain)
            : ("No search reached the primary.", Tone.Bad));
    }

    private static string FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase))
        ?? text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "no output";
}
