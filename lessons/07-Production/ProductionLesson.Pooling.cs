using System.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using PgVectorModule.Data;

namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Performance: connection pooling, context pooling.</summary>
public sealed partial class ProductionLesson
{
    private static async Task PoolingAsync(Lesson lesson, int dims, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("concurrent-searches", "One data source, many concurrent searches",
            $"{Searchers} tasks x {SearchesPerTask} searches share one NpgsqlDataSource, whose pool is capped at Max Pool Size = {SharedPoolSize}: tasks wait for a free connection.");
        var shared = lesson.Settings.ConnectionString();
        shared.MaxPoolSize = SharedPoolSize;
        shared.ApplicationName = "lesson07-pool";
        await using var pooled = ModuleDataSource.Create(shared, lesson.Schema);
        const string search = "SELECT id FROM vector_documents ORDER BY embedding <=> @q LIMIT 5";
        lesson.Sql(search, [$"@q = the question's vector ({dims} dimensions)"]);
        var watch = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, Searchers).Select(async _ =>
        {
            var ok = 0;
            for (var i = 0; i < SearchesPerTask; i++)
            {
                await using var command = pooled.CreateCommand(search);
                command.Parameters.AddWithValue("q", question);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var rows = 0;
                while (await reader.ReadAsync(cancellationToken))
                {
                    rows++;
                }

                ok += rows == 5 ? 1 : 0;
            }

            return ok;
        }));
        watch.Stop();
        long connections;
        using (lesson.Detail())
        {
            connections = (long)(await lesson.QueryAsync(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'lesson07-pool' AND datname = current_database()", cancellationToken))[0]["n"]!;
        }

        lesson.Table([(Searchers * SearchesPerTask, results.Sum(), watch.ElapsedMilliseconds, connections)],
            ("searches", r => r.Item1), ("returned 5 rows", r => r.Item2), ("elapsed ms", r => r.Item3), ("server connections used", r => r.Item4));
        lesson.Say($"Every search got a connection, over at most Max Pool Size = {SharedPoolSize}.");
        // The pool's keywords, one by one: a reference for later.
        using (lesson.Detail())
        {
            lesson.Table(PoolKeywords, ("connection-string keyword", r => r.Keyword), ("default", r => r.Default), ("what it does", r => r.What), ("SQLAlchemy's create_engine", r => r.Python));
        }

        lesson.Code("""
            # Python: 20 kept, 10 more when busy, wait 30 s for one
            engine = create_engine(url, pool_size=20, max_overflow=10, pool_timeout=30)

            // C#: the same limits as connection-string keywords on the one data source
            var dataSourceBuilder = new NpgsqlDataSourceBuilder(connectionString + ";Minimum Pool Size=20;Maximum Pool Size=30;Timeout=30");
            """, "Python and C#");

        lesson.Say("Exhaustion: a pool of one, Timeout = 1 s, one connection held, a second asked for.", Tone.Aside);
        var tiny = lesson.Settings.ConnectionString();
        tiny.MaxPoolSize = 1;
        tiny.Timeout = 1;
        tiny.ApplicationName = "lesson07-tiny";
        await using (var tinySource = ModuleDataSource.Create(tiny, lesson.Schema))
        await using (await tinySource.OpenConnectionAsync(cancellationToken))
        {
            try
            {
                await using var second = await tinySource.OpenConnectionAsync(cancellationToken);
                lesson.Say("The second connection opened: the pool was not exhausted.", Tone.Warning);
            }
            catch (NpgsqlException e) when (e.InnerException is TimeoutException || e.Message.Contains("exhausted", StringComparison.Ordinal))
            {
                lesson.Say($"{e.Message}", Tone.Bad);
                lesson.Say("Usually a connection not given back (a missing await using) or more requests than the pool: fix the leak or queue the work, then size the pool.", Tone.Aside);
            }
        }

    }

    private static async Task ContextPoolingAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.Step("context-pooling", "EF Core context pooling", "PooledDbContextFactory (AddDbContextPool / AddPooledDbContextFactory in ASP.NET Core) reuses DbContext instances: created once, reset on return, leased again.");
        var factory = new PooledDbContextFactory<CourseDbContext>(CourseDbContext.CreateOptions(lesson.DataSource, lesson.SqlEchoInterceptor), poolSize: 16);
        var leases = new List<(int Use, Guid Instance, int Lease, int Documents)>();
        // The query and the leases, one row per use: a detail; the sentence below says what they show.
        using (lesson.Detail())
        {
            for (var use = 1; use <= 3; use++)
            {
                await using var context = await factory.CreateDbContextAsync(cancellationToken);
                using var quiet = use == 1 ? null : lesson.QuietSql(); // the same query three times: shown once
                var count = await context.Database.SqlQueryRaw<int>("SELECT count(*)::int AS \"Value\" FROM vector_documents").SingleAsync(cancellationToken);
                leases.Add((use, context.ContextId.InstanceId, context.ContextId.Lease, count));
            }

            lesson.Table(leases, ("use", r => r.Use), ("context instance", r => r.Instance.ToString()[..8]), ("lease", r => r.Lease), ("documents", r => r.Documents));
        }

        lesson.Say(leases.Select(l => l.Instance).Distinct().Count() == 1
            ? ("One context instance served all three uses (the lease number counts them).", Tone.Key)
            : ("The factory made more than one instance.", Tone.Warning));
        lesson.Code("""
            // In ASP.NET Core: one data source for the app, pooled contexts over it
            builder.Services.AddNpgsqlDataSource(connectionString, b => b.UseVector());
            builder.Services.AddDbContextPool<CourseDbContext>((sp, o) =>
                o.UseNpgsql(sp.GetRequiredService<NpgsqlDataSource>(), n => n.UseVector()), poolSize: 128);
            """);
    }

    private static readonly (string Keyword, string Default, string What, string Python)[] PoolKeywords =
    [
        ("Maximum Pool Size", "100", "connections the pool may open; keep the sum over all app instances below the server's max_connections", "pool_size + max_overflow"),
        ("Minimum Pool Size", "0", "idle connections the pool keeps; above it, idle ones close after Connection Idle Lifetime", "pool_size (connections kept)"),
        ("Timeout", "15 s", "how long Open waits for a connection (a free one from the pool or a new one)", "pool_timeout"),
        ("Connection Idle Lifetime", "300 s", "idle connections above the minimum are closed after this", "overflow connections close on return"),
        ("Connection Lifetime", "0 (none)", "connections older than this are closed when returned (useful behind a load balancer)", "pool_recycle"),
        ("Multiplexing", "false", "commands from many callers are pipelined over a few connections; a transaction keeps its connection, but session state (SET, LISTEN, temporary tables, advisory locks) does not carry from one command to the next", "no counterpart"),
    ];
}
