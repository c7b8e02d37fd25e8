using PgVectorModule.Configuration;
using PgVectorModule.Data;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// A login role of one test's own on the shared test server, with no rights beyond logging in (what class servers
/// and managed services hand out). Roles belong to the whole server, so the name is unique; disposing drops what the
/// role owns and was granted in the test's database, then the role.
/// </summary>
public sealed class TestRole : IAsyncDisposable
{
    private readonly TestDatabase _database;

    private TestRole(TestDatabase database, string name, string password)
    {
        _database = database;
        Name = name;
        Password = password;
    }

    public string Name { get; }
    public string Password { get; }

    /// <summary>DATABASE_URL (keyword form) for the test database, logged in as this role.</summary>
    public string DatabaseUrl
    {
        get
        {
            var cs = _database.ConnectionString;
            cs.Username = Name;
            cs.Password = Password;
            return cs.ConnectionString;
        }
    }

    public ModuleSettings Settings => ModuleSettings.From(n => n == "DATABASE_URL" ? DatabaseUrl : null, "environment");

    public static async Task<TestRole> CreateAsync(TestDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        var role = new TestRole(database, "test_role_" + Guid.NewGuid().ToString("N")[..12], Guid.NewGuid().ToString("N"));
        // The verifier, not the password: the shared server's pg_stat_statements keeps statements verbatim.
        await database.ExecuteAsync($"CREATE ROLE {role.Name} LOGIN PASSWORD '{ScramVerifier.Create(role.Password)}'");
        return role;
    }

    public async ValueTask DisposeAsync()
    {
        // The lesson's pooled connections as this role must go first, or the role's session outlives it.
        NpgsqlConnection.ClearAllPools();
        await _database.ExecuteAsync($"DROP OWNED BY {Name} CASCADE; DROP ROLE {Name}");
    }
}
