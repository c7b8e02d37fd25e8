using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using PgVectorModule.Data;

namespace PgVectorModule.Lessons.Lesson02;

/// <summary>
/// Lesson 02: create, read, update and delete documents with EF Core, then what real applications need next:
/// an upsert that is safe under concurrency, a transaction that rolls back, optimistic concurrency with xmin,
/// and parameters that keep hostile input as plain text. The counterpart of the Python module's Session work.
/// </summary>
public sealed class CrudLesson : ILesson
{
    public static LessonInfo Info => LessonCatalog.Get("02");

    /// <summary>The batch inserted in step 3 (public so the tests can check it).</summary>
    public static IReadOnlyList<(string Title, string Content, string Source)> Batch { get; } =
    [
        ("PostgreSQL as a vector store", "pgvector keeps embeddings next to ordinary columns.", "blog"),
        ("Approximate nearest neighbour search", "HNSW and IVFFlat trade a little recall for speed.", "research"),
        ("Transactions keep data consistent", "A transaction commits every change or none.", "docs"),
        ("Why an ORM", "Rows become objects and LINQ becomes SQL.", "blog"),
        ("Indexes in PostgreSQL", "B-tree, GIN, GiST, HNSW: each answers different questions.", "docs"),
        ("Keyset paging", "WHERE id > last_seen scales better than a large OFFSET.", "research"),
    ];

    public const string UpsertUrl = "https://example.com/guides/upsert";
    public const string HostileTitle = "Bobby'; DROP TABLE documents; --";

    /// <summary>A read-only view of a row: what a projection returns instead of a tracked entity.</summary>
    public sealed record DocumentSummary(int Id, string Title, string? Source);

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var counter = new CommandCounter();
        await using var db = lesson.NewDbContext(counter);

        lesson.Step("fresh-table", "A fresh table",
            $"Like lesson 01, this lesson builds its table from the model in its own schema ({lesson.Schema}) and drops what an earlier run left.");
        // The DDL is lesson 01's: folded by default.
        using (lesson.Detail())
        {
            await lesson.ExecuteAsync("DROP TABLE IF EXISTS documents", cancellationToken);
            await db.GetService<IRelationalDatabaseCreator>().CreateTablesAsync(cancellationToken);
        }

        lesson.Step("create-one", "Create one document",
            "Add marks the object as new; SaveChangesAsync sends the INSERT and reads back what the database generated: the id and xmin (the row version).");
        var first = new Document { Title = "Introduction to vector databases", Content = "A vector database finds the embeddings nearest to a query.", Source = "docs" };
        db.Documents.Add(first);
        await db.SaveChangesAsync(cancellationToken);
        lesson.Say($"Saved id {first.Id}, version (xmin) {first.Version}, {first.WordCount} words.", Tone.Good);

        lesson.Step("create-batch", "Create a batch: AddRange, one SaveChanges",
            "EF Core sends all the INSERTs of one SaveChanges together, in one command and one transaction: one round trip, however many rows.");
        db.Documents.AddRange(Batch.Select(d => new Document { Title = d.Title, Content = d.Content, Source = d.Source }));
        counter.Reset();
        var saved = await db.SaveChangesAsync(cancellationToken);
        lesson.Say($"{saved} rows saved in {counter.Count} round trip{(counter.Count == 1 ? "" : "s")}.", Tone.Good);

        lesson.Step("find-by-key", "Read by key: FindAsync",
            "FindAsync looks in the context first and asks the database only for what it does not hold (SQLAlchemy's session.get and its identity map).");
        await using (var reader = lesson.NewDbContext(counter))
        {
            counter.Reset();
            var found = await reader.Documents.FindAsync([first.Id], cancellationToken);
            var again = await reader.Documents.FindAsync([first.Id], cancellationToken);
            lesson.Say($"Found '{found!.Title}'. Two FindAsync calls, {counter.Count} query: the second came from the context, and is the same object: {ReferenceEquals(found, again)}.");
        }

        lesson.Step("filter-order", "Filter and order",
            "Where and OrderBy become WHERE and ORDER BY; the values travel as parameters. AsNoTracking: these rows are only shown, so the context keeps no copy of them.");
        var source = "docs";
        var word = "PostgreSQL";
        var filtered = await db.Documents.AsNoTracking()
            .Where(d => d.Source == source || d.Title.Contains(word))
            .OrderBy(d => d.Source).ThenBy(d => d.Title)
            .ToListAsync(cancellationToken);
        lesson.Table(filtered, ("id", d => d.Id), ("title", d => d.Title), ("source", d => d.Source));

        lesson.Step("paging", "Page through the rows",
            "Skip and Take become OFFSET and LIMIT; a stable ORDER BY defines the pages.");
        const int pageSize = 3;
        var page = 2;
        var secondPage = await db.Documents.AsNoTracking().OrderBy(d => d.Id).Skip((page - 1) * pageSize).Take(pageSize).ToListAsync(cancellationToken);
        lesson.Table(secondPage, ("id", d => d.Id), ("title", d => d.Title));

        lesson.Step("projection-count", "Project to a record, and count",
            "Select into a record reads only the columns it names, and the result is never tracked. CountAsync asks the database to count, it loads no rows.");
        var summaries = await db.Documents.Where(d => d.Source == "research").OrderBy(d => d.Id)
            .Select(d => new DocumentSummary(d.Id, d.Title, d.Source)).ToListAsync(cancellationToken);
        lesson.Table(summaries, ("id", s => s.Id), ("title", s => s.Title), ("source", s => s.Source));
        var total = await db.Documents.CountAsync(cancellationToken);
        lesson.Say($"{total} documents in all.");

        lesson.Step("update-tracked", "Update a tracked document",
            "The context remembers the values it loaded; SaveChangesAsync compares and sends only the changed column, plus updated_at, which the context stamps.");
        await using (var editor = lesson.NewDbContext())
        {
            Document document;
            using (lesson.Detail())
            {
                document = await editor.Documents.SingleAsync(d => d.Id == first.Id, cancellationToken);
            }

            var before = (document.UpdatedAt, document.Version);
            document.Title = "Vector databases: an introduction";
            await editor.SaveChangesAsync(cancellationToken);
            lesson.Table([("before", before.UpdatedAt, before.Version), ("after", document.UpdatedAt, document.Version)],
                ("", r => r.Item1), ("updated_at", r => r.Item2), ("version (xmin)", r => r.Item3));
        }

        lesson.Step("execute-update", "Update many rows without loading them: ExecuteUpdateAsync",
            "One set-based UPDATE. It bypasses the change tracker and SaveChanges, so it sets updated_at itself, and loaded objects do not see the change.");
        var renamed = await db.Documents.Where(d => d.Source == "blog")
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Source, "articles").SetProperty(d => d.UpdatedAt, DateTimeOffset.UtcNow), cancellationToken);
        lesson.Say($"{renamed} rows moved from blog to articles.", Tone.Good);
        // This context still tracks those rows from step 3, with the old source and the old xmin: saving one of them
        // would now fail the version check. Forget them, so the next query loads fresh copies.
        db.ChangeTracker.Clear();

        lesson.Step("delete-tracked", "Delete a tracked document: Remove",
            "Remove marks the object as deleted; SaveChangesAsync sends a DELETE by key, with the version it read.");
        Document doomed;
        using (lesson.Detail())
        {
            doomed = await db.Documents.SingleAsync(d => d.Title == "Why an ORM", cancellationToken);
        }

        db.Documents.Remove(doomed);
        await db.SaveChangesAsync(cancellationToken);

        lesson.Step("execute-delete", "Delete many rows: ExecuteDeleteAsync",
            "One set-based DELETE, no rows loaded: clears out what matches a filter.");
        var deleted = await db.Documents.Where(d => d.Source == "research").ExecuteDeleteAsync(cancellationToken);
        lesson.Say($"{deleted} rows deleted.", Tone.Good);

        lesson.Step("upsert", "Upsert on a natural key: INSERT ... ON CONFLICT",
            "Reading first, then writing, races with other writers: PostgreSQL decides atomically on the unique source_url index. (xmax = 0) means inserted.");
        var firstWrite = await UpsertAsync(db, "Upserts in PostgreSQL", "Insert the row, or update it when the key exists.", cancellationToken);
        UpsertResult secondWrite;
        // The same statement again, with new content: its parameters are folded by default.
        using (lesson.Detail())
        {
            secondWrite = await UpsertAsync(db, "Upserts in PostgreSQL", "INSERT ... ON CONFLICT DO UPDATE does both in one statement, safely.", cancellationToken);
        }

        lesson.Table([("first", firstWrite), ("second", secondWrite)], ("call", r => r.Item1), ("id", r => r.Item2.Id), ("inserted", r => r.Item2.Inserted));
        // Two writers at the same moment: without ON CONFLICT one of them would hit the unique index and fail.
        using (lesson.QuietSql())
        {
            await Task.WhenAll(Enumerable.Range(1, 4).Select(async i =>
            {
                await using var writer = lesson.NewDbContext();
                await UpsertAsync(writer, "Upserts in PostgreSQL", $"Concurrent writer {i} was here.", cancellationToken);
            }));
        }

        int copies;
        using (lesson.Detail())
        {
            copies = await db.Documents.CountAsync(d => d.SourceUrl == UpsertUrl, cancellationToken);
        }

        lesson.Say($"After 4 concurrent upserts: {copies} row with source_url {UpsertUrl}.");

        lesson.Step("transaction-rollback", "A transaction that fails halfway",
            "Both inserts belong to one import. The second breaks the unique source_url; rolling back removes the first as well: all or nothing.");
        await using (var import = lesson.NewDbContext())
        {
            await using var transaction = await import.Database.BeginTransactionAsync(cancellationToken);
            try
            {
                // The first insert succeeds (folded by default); the second, with the upserted row's URL, fails.
                using (lesson.Detail())
                {
                    import.Documents.Add(new Document { Title = "Import part 1", Content = "Fine on its own.", Source = "import" });
                    await import.SaveChangesAsync(cancellationToken);
                }

                import.Documents.Add(new Document { Title = "Import part 2", Content = "Same URL as the upserted row.", Source = "import", SourceUrl = UpsertUrl });
                await import.SaveChangesAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }
            catch (DbUpdateException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } unique)
            {
                await transaction.RollbackAsync(cancellationToken);
                lesson.Say($"{unique.MessageText}: rolled back.", Tone.Bad);
            }
        }

        int imported;
        using (lesson.Detail())
        {
            imported = await db.Documents.CountAsync(d => d.Source == "import", cancellationToken);
        }

        lesson.Say($"Rows of the import that stayed: {imported} rows.");

        lesson.DeepDive("optimistic-concurrency", "Optimistic concurrency: two people edit the same row",
            "Each UPDATE says WHERE xmin = <the version I read>. Alice saves first and the version moves on, so Bob's UPDATE matches no row and EF Core throws.");
        await using (var alice = lesson.NewDbContext())
        await using (var bob = lesson.NewDbContext())
        {
            var hers = await alice.Documents.SingleAsync(d => d.Id == first.Id, cancellationToken);
            var his = await bob.Documents.SingleAsync(d => d.Id == first.Id, cancellationToken);
            hers.Title = "Alice's title";
            await alice.SaveChangesAsync(cancellationToken);
            his.Content = "Bob's rewritten content.";
            try
            {
                await bob.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateConcurrencyException e)
            {
                lesson.Say($"DbUpdateConcurrencyException: {e.Message.Split('.')[0]}.", Tone.Bad);
                // Resolve: reload the row (the database wins: Alice's title, the new xmin), then apply Bob's edit
                // again on top and save. Keeping Bob's values with the new xmin as original would be "the client
                // wins" (entry.OriginalValues.SetValues(await entry.GetDatabaseValuesAsync())): it overwrites Alice.
                await e.Entries.Single().ReloadAsync(cancellationToken);
                his.Content = "Bob's rewritten content.";
                await bob.SaveChangesAsync(cancellationToken);
                lesson.Say("Resolved: reloaded Alice's version, re-applied Bob's edit, saved: both changes kept.", Tone.Good);
            }
        }

        var merged = await db.Documents.AsNoTracking().SingleAsync(d => d.Id == first.Id, cancellationToken);
        lesson.Table([merged], ("id", d => d.Id), ("title", d => d.Title), ("content", d => d.Content), ("version (xmin)", d => d.Version));

        lesson.Step("hostile-input", "Parameters keep hostile input as plain text",
            "The title below would end a quoted string and drop the table if it were pasted into SQL. EF Core sends it as a parameter: it is stored and found as text.");
        lesson.Say($"Never: \"... WHERE title = '\" + title + \"'\" gives {$"WHERE title = '{HostileTitle}'"}", Tone.Aside);
        // Its INSERT is step 2's with other parameters: folded by default.
        using (lesson.Detail())
        {
            db.Documents.Add(new Document { Title = HostileTitle, Content = "Just text.", Source = "docs" });
            await db.SaveChangesAsync(cancellationToken);
        }

        var title = HostileTitle; // a variable, as user input would be
        var matches = await db.Documents.AsNoTracking().Where(d => d.Title == title).ToListAsync(cancellationToken);
        lesson.Table(matches, ("id", d => d.Id), ("title", d => d.Title));
        int rows;
        using (lesson.Detail())
        {
            rows = await db.Documents.CountAsync(cancellationToken);
        }

        lesson.Say($"The documents table is still there, with {rows} rows.");

        // What protected it is the parameter, not EF: SQL built by concatenation and handed to FromSqlRaw goes out as it is.
        lesson.Say("The same search concatenated into FromSqlRaw, in a transaction rolled back afterwards: EF sends it as written, " +
                   "so DROP TABLE is a second statement (analyzer EF1003 flags such a line).", Tone.Aside);
        // EF Core's analyzer flags this line (EF1003, an error under warnings-as-errors): silenced here to show why.
#pragma warning disable EF1003
        var concatenated = db.Documents.FromSqlRaw("SELECT *, xmin FROM documents WHERE title = '" + title + "'");
#pragma warning restore EF1003
        await using (var transaction = await db.Database.BeginTransactionAsync(cancellationToken))
        {
            var found = await concatenated.AsNoTracking().ToListAsync(cancellationToken);
            string? table;
            using (lesson.QuietSql())
            {
                table = await db.Database.SqlQuery<string?>($"SELECT to_regclass('documents')::text AS \"Value\"").SingleAsync(cancellationToken);
            }

            await transaction.RollbackAsync(cancellationToken);
            lesson.Say($"Concatenated into FromSqlRaw: {found.Count} rows found, and then the documents table was {(table is null ? "dropped" : "still there")} " +
                       "(the rollback brought it back).");
        }

        var interpolated = db.Documents.FromSql($"SELECT *, xmin FROM documents WHERE title = {title}");
        lesson.Sql(interpolated.ToQueryString());
        lesson.Say("FromSql($\"... {title}\") takes a FormattableString and sends the title as a parameter, like the LINQ query above: " +
                   "that, not the ORM, keeps input out of SQL.");
    }

    public sealed record UpsertResult(int Id, bool Inserted);

    // The interpolated values become parameters ($1, $2, ...): SqlQuery takes a FormattableString, not a string.
    private static async Task<UpsertResult> UpsertAsync(CourseDbContext db, string title, string content, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var words = WordCounter.Count(content);
        var rows = await db.Database.SqlQuery<UpsertResult>(
            $"""
            INSERT INTO documents (title, content, source, source_url, word_count, created_at, updated_at)
            VALUES ({title}, {content}, 'guides', {UpsertUrl}, {words}, {now}, {now})
            ON CONFLICT (source_url) DO UPDATE
            SET title = excluded.title, content = excluded.content, word_count = excluded.word_count, updated_at = excluded.updated_at
            RETURNING id, (xmax = 0) AS inserted
            """).ToListAsync(cancellationToken);
        return rows.Single();
    }

    /// <summary>Counts the commands a context sends: each is one round trip to the server.</summary>
    private sealed class CommandCounter : DbCommandInterceptor
    {
        public int Count { get; private set; }

        public void Reset() => Count = 0;

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Count++;
            return ValueTask.FromResult(result);
        }

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            Count++;
            return ValueTask.FromResult(result);
        }
    }
}
