using System.Diagnostics;
using PgVectorModule.Citus;
using PgVectorModule.Configuration;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// PostgreSQL with citus and pgvector for the Citus tests, found as the lesson finds it (CITUS_BINDIR, then the build
/// cache). Where there is none, scripts/db.sh citus build makes it once per machine, from the Citus source vendored
/// beside the repository (or CITUS_SOURCE); where that cannot be had either, each test that needs Citus is skipped with
/// one sentence saying what to provide, or fails with it where every program is required (<see cref="Installed.Required"/>:
/// CI). Citus needs PostgreSQL 16 to 18, whichever server the rest of the suite runs on.
/// </summary>
public sealed class CitusBuild : IAsyncLifetime
{
    private CitusInstallation? _installation;
    private string _missing = "Citus was not looked for.";

    /// <summary>The installation; where there is none, the test is skipped (or fails, when programs are required) with what to provide.</summary>
    public CitusInstallation Installation
    {
        get
        {
            Require();
            return _installation!;
        }
    }

    /// <summary>Called first by a test that needs Citus (directly, or through a lesson or the bench that finds it).</summary>
    public void Require()
    {
        if (_installation is not null)
        {
            return;
        }

        if (Installed.Required)
        {
            throw new InvalidOperationException(_missing);
        }

        Assert.Skip(_missing);
    }

    /// <summary>The settings that find this installation, as a learner's environment would give them.</summary>
    public static OperationsSettings Settings => OperationsSettings.From(Environment.GetEnvironmentVariable);

    public async ValueTask InitializeAsync()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        _installation = await CitusInstallation.FindAsync(Settings, cancellationToken);
        if (_installation is not null)
        {
            return;
        }

        var start = new ProcessStartInfo("bash", [Path.Combine(RepositoryRoot.Path, "scripts", "db.sh"), "citus", "build"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryRoot.Path,
        };
        using var build = Process.Start(start) ?? throw new InvalidOperationException("bash did not start.");
        var output = build.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = build.StandardError.ReadToEndAsync(cancellationToken);
        await build.WaitForExitAsync(cancellationToken);
        _installation = await CitusInstallation.FindAsync(Settings, cancellationToken);
        if (_installation is null)
        {
            var said = ((await errors) + (await output)).Trim().Split('\n').LastOrDefault(l => l.Contains("error", StringComparison.Ordinal)) ?? "";
            _missing =
                $"The Citus tests need PostgreSQL 18 with citus and pgvector, and scripts/db.sh citus build could not make it ({said.Trim()}): " +
                "put citus-14.0.1-src.tar.gz in shared/vendor/ beside the repository, set CITUS_SOURCE to a Citus 14 source, or set CITUS_BINDIR to an installation.";
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
