using System.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Migrations.Operations;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;

namespace PgVectorModule.Search;

/// <summary>
/// Creates and fills the vector table from the EF model: the DDL comes from the model (so what is declared is what
/// runs), but in the order a bulk load wants it: extension, table, rows by binary COPY, then the indexes.
/// </summary>
public static class VectorStore
{
    /// <summary>The model's DDL, as EF Core's migrations SQL generator renders it, split into phases.</summary>
    public static ModelDdl Ddl(SearchDbContext db)
    {
        ArgumentNullException.ThrowIfNull(db);
        var model = db.GetService<IDesignTimeModel>().Model;
        var operations = db.GetService<IMigrationsModelDiffer>().GetDifferences(null, model.GetRelationalModel());
        var generator = db.GetService<IMigrationsSqlGenerator>();
        string Sql(IEnumerable<MigrationOperation> ops) =>
            string.Join(Environment.NewLine, generator.Generate(ops.ToList(), model).Select(c => c.CommandText.Trim()));

        return new ModelDdl(
            Extension: Sql(operations.OfType<AlterDatabaseOperation>()),
            Tables: Sql(operations.OfType<CreateTableOperation>()),
            Indexes: operations.OfType<CreateIndexOperation>().ToDictionary(o => o.Name, o => Sql([o])));
    }

    /// <summary>
    /// Drops the lesson's search tables (the lesson owns them) and creates them without indexes, with the triggers that
    /// keep the BM25 postings in step with the documents (<see cref="Bm25Index"/>). One transaction (PostgreSQL's DDL is
    /// transactional): interrupted anywhere, the old tables stay as they were, never a new table without its triggers,
    /// whose postings would silently stop following the documents. Inside a transaction the caller began, it is part of that.
    /// </summary>
    public static async Task RecreateTablesAsync(SearchDbContext db, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        await using var transaction = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(cancellationToken) : null;
        await db.Database.ExecuteSqlRawAsync(
            $"DROP TABLE IF EXISTS {VectorDocumentConfiguration.TableName}, embedding_models, {DocumentTermConfiguration.TableName}, {DocumentFrequencyChangeConfiguration.TableName}, {Bm25CorpusConfiguration.TableName}",
            cancellationToken);
        await db.Database.ExecuteSqlRawAsync(Ddl(db).Tables, cancellationToken);
        foreach (var statement in Bm25Index.InstallStatements)
        {
            await db.Database.ExecuteSqlRawAsync(statement, cancellationToken);
        }

        if (transaction is not null)
        {
            await transaction.CommitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Builds the named indexes of the model (all of them when none are named), folds the BM25 corpus rows the load
    /// wrote into one (<see cref="Bm25Index.Fold"/>), then VACUUM ANALYZE: fresh planner statistics, and a visibility
    /// map, without which the BM25 postings could not be read by an index-only scan.
    /// </summary>
    public static async Task BuildIndexesAsync(SearchDbContext db, IEnumerable<string>? names, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        var indexes = Ddl(db).Indexes;
        foreach (var name in names ?? indexes.Keys)
        {
            await db.Database.ExecuteSqlRawAsync(indexes[name], cancellationToken);
        }

        await db.Database.ExecuteSqlRawAsync(Bm25Index.Fold, cancellationToken);
        await db.Database.ExecuteSqlRawAsync(
            $"VACUUM (ANALYZE) {VectorDocumentConfiguration.TableName}, {DocumentTermConfiguration.TableName}, {DocumentFrequencyChangeConfiguration.TableName}, {Bm25CorpusConfiguration.TableName}",
            cancellationToken);
    }

    /// <summary>
    /// Writes documents and their embeddings with binary COPY in one transaction: either every row lands or none.
    /// Returns the rows written and the time it took.
    /// </summary>
    public static async Task<(long Rows, TimeSpan Elapsed)> CopyAsync(NpgsqlDataSource dataSource, IReadOnlyList<CorpusDocument> documents,
        IReadOnlyList<Vector> embeddings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(embeddings);
        if (documents.Count != embeddings.Count)
        {
            throw new ArgumentException($"{documents.Count} documents but {embeddings.Count} embeddings.", nameof(embeddings));
        }

        var watch = Stopwatch.StartNew();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        ulong rows;
        await using (var writer = await connection.BeginBinaryImportAsync(CopyCommand, cancellationToken))
        {
            for (var i = 0; i < documents.Count; i++)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(documents[i].Title, cancellationToken);
                await writer.WriteAsync(documents[i].Content, cancellationToken);
                await writer.WriteAsync(documents[i].Source, cancellationToken);
                await writer.WriteAsync(embeddings[i], cancellationToken);
            }

            rows = await writer.CompleteAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return ((long)rows, watch.Elapsed);
    }

    public const string CopyCommand =
        $"COPY {VectorDocumentConfiguration.TableName} (title, content, source, embedding) FROM STDIN (FORMAT BINARY)";

    /// <summary>
    /// Everything a search lesson needs in its own schema: extension, tables, the sample corpus embedded and copied
    /// in, the embedding model recorded, the indexes built and statistics gathered.
    /// </summary>
    public static Task<long> LoadSampleCorpusAsync(NpgsqlDataSource dataSource, SearchDbContext db, TextEmbedder embedder,
        IProgress<int>? progress, CancellationToken cancellationToken) =>
        LoadAsync(dataSource, db, embedder, SampleCorpus.All, progress, cancellationToken);

    /// <summary>The same for any set of documents (the tests use small corpora of their own).</summary>
    public static async Task<long> LoadAsync(NpgsqlDataSource dataSource, SearchDbContext db, TextEmbedder embedder,
        IReadOnlyList<CorpusDocument> corpus, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(embedder);
        ArgumentNullException.ThrowIfNull(corpus);
        await EnsureExtensionAsync(dataSource, db, cancellationToken);
        await RecreateTablesAsync(db, cancellationToken);
        var vectors = await embedder.EmbedManyAsync(corpus.Select(d => d.TextToEmbed).ToList(), progress, cancellationToken);
        var (rows, _) = await CopyAsync(dataSource, corpus, vectors, cancellationToken);
        await EmbeddingGuard.RecordAsync(db, embedder.Identity, cancellationToken: cancellationToken);
        await BuildIndexesAsync(db, names: null, cancellationToken);
        return rows;
    }

    /// <summary>
    /// CREATE EXTENSION as the model declares it, then a type reload: Npgsql learns a server's types when a data
    /// source first connects, so a type created afterwards (vector) is unknown to it until it reloads them.
    /// </summary>
    public static async Task EnsureExtensionAsync(NpgsqlDataSource dataSource, SearchDbContext db, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        var ddl = Ddl(db).Extension;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await db.Database.ExecuteSqlRawAsync(ddl, cancellationToken);
                break;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && attempt < 3)
            {
                // Two programs ran CREATE EXTENSION IF NOT EXISTS at once on a database without it: both saw it
                // missing, one created it, the other hit the catalog's unique index. Now it exists: run it again.
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                throw await ExtensionDeniedAsync(dataSource, e, cancellationToken);
            }
        }

        await dataSource.ReloadTypesAsync(cancellationToken);
    }

    /// <summary>
    /// The role may not create pgvector here (it exists on the server, not yet in this database). Only an existing
    /// extension is free to use, so the sentence says who may create it: the catalog knows whether it is trusted.
    /// </summary>
    private static async Task<SetupException> ExtensionDeniedAsync(NpgsqlDataSource dataSource, PostgresException denied, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT current_user::text, current_database()::text, inet_server_port(),
                   coalesce((SELECT v.trusted FROM pg_available_extension_versions v JOIN pg_available_extensions a ON a.name = v.name AND a.default_version = v.version
                             WHERE v.name = 'vector'), false)
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var (role, database, trusted) = (reader.GetString(0), reader.GetString(1), reader.GetBoolean(3));
        var host = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).Host;
        var port = await reader.IsDBNullAsync(2, cancellationToken) ? "" : ":" + reader.GetInt32(2);
        var whoMay = trusted
            ? $"a superuser or a role with CREATE on database {database} may create it (pgvector is a trusted extension there)"
            : "only a superuser may create it (pgvector is not a trusted extension)";
        return new SetupException(
            $"Role '{role}' may not create the vector extension in database {database} at {host}{port} ({denied.MessageText}): {whoMay}. " +
            $"Ask an administrator to run CREATE EXTENSION vector once in {database} (the lessons then only use it, which any role may), " +
            "or put a role that may create it in DATABASE_URL.",
            ExitCodes.PermissionDenied, denied);
    }
}

/// <param name="Extension">CREATE EXTENSION IF NOT EXISTS vector (schema public).</param>
/// <param name="Tables">CREATE TABLE statements, without indexes.</param>
/// <param name="Indexes">One CREATE INDEX per declared index, by name.</param>
public sealed record ModelDdl(string Extension, string Tables, IReadOnlyDictionary<string, string> Indexes);
