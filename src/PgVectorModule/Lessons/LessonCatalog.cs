namespace PgVectorModule.Lessons;

/// <param name="Number">Two digits, as in the folder name and <c>scripts/lesson.sh NN</c>.</param>
/// <param name="Folder">The console project's folder under <c>lessons/</c>.</param>
/// <param name="Title">Shown by the lesson and in the README's table.</param>
/// <param name="PythonCounterpart">The file of the Python module this lesson rebuilds.</param>
/// <param name="Schema">The PostgreSQL schema the lesson owns and may reset.</param>
/// <param name="NeedsVector">Whether the server must offer the pgvector extension.</param>
/// <param name="TakesQuestion">Whether the lesson searches for a question given on the command line (else it takes no arguments).</param>
public sealed record LessonInfo(string Number, string Folder, string Title, string PythonCounterpart, string Schema, bool NeedsVector, bool TakesQuestion = false);

/// <summary>The one list of lessons: the programs, the README table and the scripts all follow it.</summary>
public static class LessonCatalog
{
    public static IReadOnlyList<LessonInfo> All { get; } =
    [
        new("01", "01-EfCoreBasics", "EF Core basics: model, DDL, insert, query", "01_sqlalchemy_basics.py", "lesson01", NeedsVector: false),
        new("02", "02-Crud", "CRUD with EF Core: create, read, update, delete, upsert, transactions, concurrency", "02_crud_operations.py", "lesson02", NeedsVector: false),
        new("03", "03-Migrations", "Schema migrations with EF Core in the place of Alembic", "03_alembic_migrations.py", "lesson03", NeedsVector: false),
        new("04", "04-PgvectorSetup", "pgvector setup: why, extension, vector table, COPY, indexes by migration", "04_pgvector_setup.py", "lesson04", NeedsVector: true),
        new("05", "05-VectorSearch", "Vector search: distances, filters, thresholds, metadata, the index at work", "05_vector_search_pg.py", "lesson05", NeedsVector: true, TakesQuestion: true),
        new("06", "06-HybridSearch", "Hybrid search: full-text and vector, weighted and fused", "06_hybrid_pg.py", "lesson06", NeedsVector: true, TakesQuestion: true),
        new("07", "07-Production", "Production checklist: pooling, bulk load, smaller vectors, maintenance, security", "README: performance, best practices, security, monitoring", "lesson07", NeedsVector: true),
        new("08", "08-Operations", "Operations: a read replica, pgBouncer, backup and point-in-time recovery", "README: production readiness (replication, pooling, backups)", "lesson08", NeedsVector: true),
        new("09", "09-Tenants", "Tenants: row-level security, search under a tenant filter", "README: security (access control)", "lesson09", NeedsVector: true),
        new("10", "10-SearchToAnswers", "From search to answers: chunks and parent documents, a second stage, answers with citations", "README: RAG (chunking, retrieval, generation)", "lesson10", NeedsVector: true, TakesQuestion: true),
        new("11", "11-ScaleOut", "Scale out with Citus: distributed vector and hybrid search, shards moved while searching", "README: comparison table (scalability), partitioning, replication", "lesson11", NeedsVector: false),
    ];

    public static LessonInfo Get(string number) =>
        All.FirstOrDefault(l => l.Number == number)
        ?? throw new ArgumentOutOfRangeException(nameof(number), number, "No lesson has that number.");
}

/// <summary>A lesson: a numbered, narrated walk through real work against the database.</summary>
public interface ILesson
{
    static abstract LessonInfo Info { get; }

    Task RunAsync(Lesson lesson, CancellationToken cancellationToken);
}
