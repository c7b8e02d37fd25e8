using System.Globalization;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// A fresh database for one test class (a class fixture), dropped when the class is done, so no test ever
/// sees another class's rows.
/// </summary>
public sealed class TestDatabase(PostgresServer server) : IAsyncLifetime
{
    private NpgsqlConnectionStringBuilder? _connectionString;

    public string Name { get; } = "test_" + Guid.NewGuid().ToString("N")[..16];

    public PostgresServer Server => server;

    public NpgsqlConnectionStringBuilder ConnectionString =>
        new((_connectionString ?? throw new InvalidOperationException("The database has not been created.")).ConnectionString);

    /// <summary>Settings that point the module's code at this database (keyword form of DATABASE_URL).</summary>
    public ModuleSettings Settings => ModuleSettings.From(ServerLanes.Lookup(ConnectionString.ConnectionString), "test");

    public async ValueTask InitializeAsync() =>
        _connectionString = await server.CreateDatabaseAsync(Name, TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await server.DropDatabaseAsync(Name);
    }

    public async Task<T?> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync(TestContext.Current.CancellationToken);
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, typeof(T), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs SQL as the server's administrator in this database (setting up roles, triggers, settings).</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    public async Task<List<string>> StringsAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var values = new List<string>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            values.Add(reader.GetString(0));
        }

        return values;
    }
}
