using PgVectorModule.Configuration;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Scripts;

/// <summary>
/// A copy of the scripts in which <c>scripts/db.sh up</c> made and started a local cluster, as on a learner's first run:
/// what it printed, and the URL. Shared by the classes of <see cref="Collection"/>; the cluster is stopped and its
/// folder deleted at the end.
/// </summary>
public sealed class LocalClusterCheckout : IAsyncLifetime
{
    public const string Collection = "a local cluster made by scripts/db.sh up";

    private ScriptCheckout? _checkout;
    private ScriptResult? _up;

    public ScriptCheckout Checkout => _checkout ?? throw new InvalidOperationException("The checkout has not been made.");

    /// <summary>The first <c>scripts/db.sh up</c>.</summary>
    public ScriptResult Up => _up ?? throw new InvalidOperationException("db.sh up has not run.");

    /// <summary>The URL it printed on stdout.</summary>
    public string Url => Up.StandardOutput.Trim();

    public NpgsqlConnectionStringBuilder ConnectionString => DatabaseUrl.Parse(Url);

    public async ValueTask InitializeAsync()
    {
        _checkout = ScriptCheckout.Create();
        _up = await _checkout.RunAsync("db.sh", ["up"]);
        if (_up.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/db.sh up exited {_up.ExitCode}: {_up.Output}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_checkout is not null)
        {
            await _checkout.DisposeAsync();
        }
    }
}

[CollectionDefinition(LocalClusterCheckout.Collection)]
public sealed class LocalClusterCheckoutCollection : ICollectionFixture<LocalClusterCheckout>;
