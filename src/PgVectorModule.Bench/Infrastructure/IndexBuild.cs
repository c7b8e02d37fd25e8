using System.Diagnostics;
using PgVectorModule.Search;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>An index built and measured: its build time, its size and the table's.</summary>
public sealed record IndexBuild(string Index, double Seconds, long IndexBytes, long TableBytes)
{
    /// <summary>One CREATE INDEX as the model declares it, timed, on a connection with maintenance_work_mem raised (a graph that fits in memory builds far faster).</summary>
    public static async Task<IndexBuild> MeasureAsync(NpgsqlDataSource dataSource, string name, string method, string ddl, string maintenanceWorkMem, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var drop = new NpgsqlCommand($"DROP INDEX IF EXISTS {name}", connection))
        {
            await drop.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var set = new NpgsqlCommand("SELECT set_config('maintenance_work_mem', $1, false)", connection) { Parameters = { new() { Value = maintenanceWorkMem } } })
        {
            await set.ExecuteNonQueryAsync(cancellationToken);
        }

        var watch = Stopwatch.StartNew();
        await using (var create = new NpgsqlCommand(ddl, connection))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        var seconds = watch.Elapsed.TotalSeconds;
        await using var size = new NpgsqlCommand($"SELECT pg_relation_size('{name}'), pg_table_size('{VectorDocumentConfiguration.TableName}')", connection);
        await using var reader = await size.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new IndexBuild(method, seconds, reader.GetInt64(0), reader.GetInt64(1));
    }
}
