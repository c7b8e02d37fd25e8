using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Pgvector.EntityFrameworkCore;
using PgVectorModule.Data;

namespace PgVectorModule.Lessons.Lesson01;

/// <summary>
/// Lesson 01: connect (a data source and context options: SQLAlchemy's engine and Session), define a model, look at
/// the DDL EF Core derives from it, create the table, insert rows and read them back. The EF Core counterpart of
/// create_engine, declaring a SQLAlchemy Base, calling create_all and using a Session.
/// </summary>
public sealed class EfCoreBasicsLesson : ILesson
{
    public static LessonInfo Info => LessonCatalog.Get("01");

    /// <summary>The rows the lesson inserts (public so the tests can check them).</summary>
    public static IReadOnlyList<(string Title, string Content, string Source)> SampleDocuments { get; } =
    [
        ("Introduction to vector databases", "A vector database stores embeddings and finds the ones nearest to a query embedding.", "docs"),
        ("PostgreSQL as a vector store", "With the pgvector extension, PostgreSQL keeps embeddings next to ordinary columns and joins.", "blog"),
        ("Approximate nearest neighbour search", "HNSW and IVFFlat trade a little recall for large speed-ups on big collections.", "research"),
        ("Transactions keep data consistent", "A transaction either commits every change it made or none of them.", "docs"),
        ("Why an ORM", "An object-relational mapper turns rows into objects and LINQ into SQL.", "blog"),
    ];

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);

        lesson.Step("connect", "Connect",
            "An NpgsqlDataSource is SQLAlchemy's engine: it owns the connection pool, made once per program. DbContextOptions tell EF Core which database and conventions to use; a DbContext made from them is the Session.");
        // The connection string comes from DATABASE_URL (environment or .env), never from code.
        var connectionString = lesson.Settings.ConnectionString();
        connectionString.SearchPath = lesson.Schema; // unqualified table names resolve to this lesson's own schema
        var dataSourceBuilder = new NpgsqlDataSourceBuilder(connectionString.ConnectionString);
        dataSourceBuilder.UseVector(); // maps pgvector's types; harmless here, needed from lesson 04 on
        await using var dataSource = dataSourceBuilder.Build();

        var options = new DbContextOptionsBuilder<CourseDbContext>()
            .UseNpgsql(dataSource, npgsql => npgsql.UseVector()) // UseVector: LINQ's CosineDistance() etc. become <=>
            .UseSnakeCaseNamingConvention()                       // CreatedAt -> created_at, as Python code names columns
            .AddInterceptors(lesson.SqlEchoInterceptor)           // print each command: SQLAlchemy's echo=True
            .Options;
        await using var db = new CourseDbContext(options);
        lesson.Code("""
            # Python (SQLAlchemy)
            engine = create_engine(os.environ["DATABASE_URL"], echo=True)
            with Session(engine) as session: ...

            // C# (Npgsql + EF Core), in this file
            var dataSourceBuilder = new NpgsqlDataSourceBuilder(connectionString);
            dataSourceBuilder.UseVector();
            await using var dataSource = dataSourceBuilder.Build(); // once per program
            var options = new DbContextOptionsBuilder<CourseDbContext>()
                .UseNpgsql(dataSource, npgsql => npgsql.UseVector())
                .UseSnakeCaseNamingConvention()
                .Options;
            await using var db = new CourseDbContext(options);     // one per unit of work
            """, "Python and C#");
        // The first command opens a connection; open one now to see that the settings work.
        await db.Database.OpenConnectionAsync(cancellationToken);
        var server = db.Database.GetDbConnection().ServerVersion;
        await db.Database.CloseConnectionAsync();
        lesson.Say($"Connected to {connectionString.Host ?? ""}:{connectionString.Port}/{connectionString.Database ?? ""} as {connectionString.Username ?? ""}: PostgreSQL {server}.");
        lesson.Say("The other lessons get this data source from the library (ModuleDataSource.Create, the same builder) and their contexts from lesson.NewDbContext().", Tone.Aside);

        lesson.Step("model", "The model",
            "A C# class (Document) plus its configuration is the model: EF Core reads it to learn the table, columns, types and keys.");
        var entity = db.Model.FindEntityType(typeof(Document))!;
        lesson.Table(entity.GetProperties(),
            ("Property", p => p.Name),
            ("CLR type", p => p.ClrType.Name),
            ("Column", p => p.GetColumnName()),
            ("Store type", p => p.GetColumnType()),
            ("Nullable", p => p.IsNullable ? "yes" : "no"),
            ("Key", p => p.IsPrimaryKey() ? "primary" : ""));

        lesson.Step("model-ddl", "The DDL EF Core would run",
            "GenerateCreateScript() renders the CREATE TABLE statements for the whole model without touching the database.");
        lesson.Sql(db.Database.GenerateCreateScript());

        lesson.Step("create-table", "Create the table",
            $"Drop what an earlier run left (only {lesson.Schema}.documents, which this lesson owns), then let EF Core create the model's tables.");
        await db.Database.ExecuteSqlRawAsync("DROP TABLE IF EXISTS documents", cancellationToken);
        // CreateTablesAsync creates the model's tables unconditionally. EnsureCreatedAsync would skip the work
        // whenever the database holds any table at all, which in a shared course database it usually does.
        await db.GetService<IRelationalDatabaseCreator>().CreateTablesAsync(cancellationToken);

        lesson.Step("insert", "Insert sample documents",
            "Add the objects to the context, then SaveChangesAsync sends the INSERTs in one batch, in one transaction, and reads back the generated ids.");
        var documents = SampleDocuments
            .Select(d => new Document { Title = d.Title, Content = d.Content, Source = d.Source })
            .ToList();
        db.Documents.AddRange(documents);
        var saved = await db.SaveChangesAsync(cancellationToken);
        lesson.Say($"{saved} rows saved. The objects now carry their ids: {string.Join(", ", documents.Select(d => d.Id))}.", Tone.Good);

        lesson.Step("read-back", "Read them back",
            "A LINQ query becomes one SELECT. AsNoTracking: these objects are only displayed, so the context need not watch them for changes.");
        var rows = await db.Documents.AsNoTracking().OrderBy(d => d.Id).ToListAsync(cancellationToken);
        lesson.Table(rows,
            ("id", d => d.Id),
            ("title", d => d.Title),
            ("source", d => d.Source),
            ("created_at", d => d.CreatedAt));

        lesson.Step("filter-to-query-string", "Filter, and see the SQL before it runs",
            "ToQueryString() shows the SQL a query will send; the filter value travels as a parameter, never inside the SQL text.");
        var source = "blog"; // a variable, as user input would be: EF sends it as a parameter
        var blogPosts = db.Documents.AsNoTracking().Where(d => d.Source == source).OrderBy(d => d.Title);
        lesson.Sql(blogPosts.ToQueryString());
        using (lesson.QuietSql())
        {
            lesson.Table(await blogPosts.ToListAsync(cancellationToken), ("id", d => d.Id), ("title", d => d.Title), ("source", d => d.Source));
        }

        lesson.Step("catalog", "The table as PostgreSQL sees it",
            "The catalog confirms what EF Core created: the same columns, types and nullability as the model.");
        var columns = await lesson.QueryAsync(
            """
            SELECT column_name, data_type, character_maximum_length, is_nullable
            FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = 'documents'
            ORDER BY ordinal_position
            """, cancellationToken);
        lesson.Table(columns,
            ("column_name", c => c["column_name"]),
            ("data_type", c => c["data_type"]),
            ("max length", c => c["character_maximum_length"]),
            ("nullable", c => c["is_nullable"]));
    }
}
