using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// A class fixture: documents embedded by the local model and loaded the way the lessons load theirs
/// (<see cref="VectorStore.LoadAsync"/>), in a schema of their own in a database of their own.
/// </summary>
public abstract class LoadedCorpus(PostgresServer server, string schema, IReadOnlyList<CorpusDocument> documents) : IAsyncLifetime
{
    private readonly TestDatabase _database = new(server);
    private NpgsqlDataSource? _dataSource;

    public string Schema => schema;
    public TextEmbedder Embedder { get; } = TextEmbedder.Create(new EmbeddingSettings());
    public NpgsqlDataSource DataSource => _dataSource!;
    public TestDatabase Database => _database;

    public SearchDbContext NewDbContext() => new(SearchDbContext.CreateOptions(DataSource), new VectorStoreShape(Embedder.Dimensions));

    public async ValueTask InitializeAsync()
    {
        await _database.InitializeAsync();
        _dataSource = ModuleDataSource.Create(_database.ConnectionString, schema);
        await using (var create = _dataSource.CreateCommand($"CREATE SCHEMA {schema}"))
        {
            await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        await using var db = NewDbContext();
        await VectorStore.LoadAsync(DataSource, db, Embedder, documents, progress: null, TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        Embedder.Dispose();
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        await _database.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
