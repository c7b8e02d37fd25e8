using PgVectorModule.Configuration;
using Testcontainers.PostgreSql;

[assembly: AssemblyFixture(typeof(PgVectorModule.Tests.Infrastructure.PostgresServer))]

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// The one PostgreSQL server the whole test run uses (efcore.pg's TestEnvironment pattern). A configured URL wins
/// (TEST_DATABASE_URL, else DATABASE_URL, read through <see cref="ModuleConfiguration"/> like every program's settings);
/// otherwise Testcontainers starts the image docker-compose.yml pins (<see cref="Image"/>) when a Docker engine answers;
/// otherwise every test fails with one message that says how to get a database.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    /// <summary>The course's server image, written once in docker-compose.yml (its x-postgres-image field).</summary>
    public static string Image => ComposeFile.PostgresImage;

    private PostgreSqlContainer? _container;
    private NpgsqlConnectionStringBuilder? _admin;

    /// <summary>
    /// The server's major version, once the fixture has reached it: the tests' private clusters are made with the
    /// installed programs of the same major (<see cref="PrivateCluster"/>).
    /// </summary>
    public static int? Major { get; private set; }

    /// <summary>Where the server came from, for messages.</summary>
    public string Origin { get; private set; } = "";

    /// <summary>A connection string to the server's maintenance database (the tests create their own databases from it).</summary>
    public NpgsqlConnectionStringBuilder Admin => _admin ?? throw new InvalidOperationException("The server fixture has not started.");

    public async ValueTask InitializeAsync()
    {
        // The settings road every program takes: the environment over the nearest .env.
        var configuration = ModuleConfiguration.Build();
        if (ModuleConfiguration.Get(configuration, "TEST_DATABASE_URL") is { } testUrl)
        {
            Origin = "TEST_DATABASE_URL";
            _admin = DatabaseUrl.Parse(testUrl);
        }
        else if (ModuleSettings.From(configuration) is { DatabaseUrlSource: not ModuleSettings.FromDefault } settings)
        {
            Origin = "DATABASE_URL";
            _admin = settings.ConnectionString();
        }
        else
        {
            Origin = $"Testcontainers ({Image})";
            try
            {
                _container = new PostgreSqlBuilder(Image).Build();
                await _container.StartAsync(TestContext.Current.CancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidOperationException(
                    "The tests need PostgreSQL with pgvector and found none: no TEST_DATABASE_URL or DATABASE_URL is set, " +
                    $"and Testcontainers could not start {Image} ({e.Message.Split('\n')[0].Trim()}). " +
                    "Run scripts/test.sh (it starts a local database when there is no Docker), start Docker, " +
                    "or set TEST_DATABASE_URL to a PostgreSQL server with pgvector where the tests may create databases.", e);
            }

            _admin = new NpgsqlConnectionStringBuilder(_container.GetConnectionString());
        }

        _admin.Database = "postgres";
        _admin.Pooling = false;
        await using var connection = new NpgsqlConnection(_admin.ConnectionString);
        try
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
        }
        catch (NpgsqlException e)
        {
            throw new InvalidOperationException(
                $"The tests' database server from {Origin} ({_admin.Host}:{_admin.Port}) does not answer: {e.Message} " +
                "Start it with scripts/db.sh up, or run scripts/test.sh, which does.", e);
        }

        await using var version = new NpgsqlCommand("SELECT current_setting('server_version_num')::int / 10000", connection);
        Major = (int)(await version.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    public async ValueTask DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
    }

    /// <summary>Creates an empty database on the server; the caller drops it with <see cref="DropDatabaseAsync"/>.</summary>
    public async Task<NpgsqlConnectionStringBuilder> CreateDatabaseAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(Admin.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using (var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        return new NpgsqlConnectionStringBuilder(Admin.ConnectionString) { Database = name, Pooling = true };
    }

    public async Task DropDatabaseAsync(string name)
    {
        await using var connection = new NpgsqlConnection(Admin.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}
