using PgVectorModule.Data;
using PgVectorModule.Problems;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>What every command gets: the console, the settings, the output folder, and a schema of its own.</summary>
public sealed class BenchContext(IAnsiConsole console, ModuleSettings settings, string outputFolder)
{
    public IAnsiConsole Console { get; } = console;
    public ModuleSettings Settings { get; } = settings;
    public string OutputFolder { get; } = outputFolder;

    /// <summary>
    /// Checks the database (one clear sentence when it does not answer), creates the command's schema, and returns a
    /// data source whose search path starts there. <paramref name="options"/> become session settings (-c name=value);
    /// <paramref name="maxAutoPrepare"/> above 0 lets Npgsql prepare that many statements per connection once each has run a few times.
    /// </summary>
    public async Task<NpgsqlDataSource> OpenSchemaAsync(string schema, CancellationToken cancellationToken, string? options = null, int maxAutoPrepare = 0)
    {
        await DatabaseProblems.PreflightAsync(Settings.DatabaseTarget(), needsVector: true, cancellationToken);
        var connectionString = Settings.ConnectionString();
        await using (var admin = ModuleDataSource.Create(connectionString))
        {
            if (await SchemaAccess.EnsureAsync(admin, schema, cancellationToken) is { } skipped)
            {
                Console.MarkupLine($"[yellow]{Markup.Escape(skipped)}[/]");
            }
        }

        var builder = new NpgsqlConnectionStringBuilder(connectionString.ConnectionString) { ApplicationName = "PgVectorModule.Bench" };
        if (options is not null)
        {
            builder.Options = options;
        }

        // Index builds and the exact ground truth over 100,000 vectors outlast Npgsql's default 30 s command timeout.
        builder.CommandTimeout = 0;
        builder.MaxAutoPrepare = maxAutoPrepare;
        return ModuleDataSource.Create(builder, schema);
    }

    /// <summary>Fails now, not at the end of a long run, when the output folder cannot be written.</summary>
    public void EnsureOutputWritable()
    {
        try
        {
            Directory.CreateDirectory(OutputFolder);
            var probe = Path.Combine(OutputFolder, $".write-check-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SetupException($"The output folder {OutputFolder} cannot be written ({e.Message.TrimEnd('.')}): choose another with --output FOLDER.",
                ExitCodes.FileUnavailable, e);
        }
    }

    public static SearchDbContext NewDbContext(NpgsqlDataSource dataSource, VectorStoreShape shape) =>
        new(SearchDbContext.CreateOptions(dataSource), shape);

    /// <summary>The machine and server a figure was measured on, written into every result file.</summary>
    /// <summary>One value from a statement the bench writes itself (never user input).</summary>
    public static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand(sql);
        return (T)Convert.ChangeType((await command.ExecuteScalarAsync(cancellationToken))!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task<MachineInfo> MachineAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension WHERE extname = 'vector')");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new MachineInfo(
            Environment.ProcessorCount,
            Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024), 1),
            System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            reader.GetString(0),
            await reader.IsDBNullAsync(1, cancellationToken) ? "not installed" : reader.GetString(1),
            DateTimeOffset.UtcNow);
    }

    public void Saved(params string[] paths)
    {
        foreach (var path in paths)
        {
            Console.MarkupLine($"[grey]wrote {Markup.Escape(Path.GetRelativePath(Directory.GetCurrentDirectory(), path))}[/]");
        }
    }

    public Progress Progress() =>
        Console.Progress().AutoClear(false).HideCompleted(false).Columns(
            new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn());
}

public sealed record MachineInfo(int Cores, double MemoryGiB, string Os, string Runtime, string PostgreSql, string Pgvector, DateTimeOffset MeasuredAt);
