using System.Diagnostics;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>Latency samples in milliseconds and their percentiles (nearest rank).</summary>
public sealed class Latency
{
    private readonly List<double> _ms = [];

    public int Count => _ms.Count;

    public void Add(TimeSpan elapsed) => _ms.Add(elapsed.TotalMilliseconds);

    public double TotalMs => _ms.Sum();

    public double Percentile(double p)
    {
        if (_ms.Count == 0)
        {
            return double.NaN;
        }

        var sorted = _ms.Order().ToList();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    public double P50 => Percentile(50);
    public double P95 => Percentile(95);

    /// <summary>Queries per second, one client, back to back.</summary>
    public double Qps => _ms.Count == 0 ? double.NaN : _ms.Count / (TotalMs / 1000);

    /// <summary>
    /// Runs query 0..<paramref name="queries"/>-1 back to back and times each, after the first five untimed (they pay for
    /// connection setup, query compilation and cold pages); returns the latencies and the rows the timed runs returned.
    /// </summary>
    public static async Task<(Latency Latency, long Returned)> TimeAsync(int queries, Func<int, Task<int>> run, Action? afterEach = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        for (var i = 0; i < Math.Min(5, queries); i++)
        {
            await run(i);
        }

        var latency = new Latency();
        var returned = 0L;
        for (var i = 0; i < queries; i++)
        {
            var watch = Stopwatch.StartNew();
            returned += await run(i);
            latency.Add(watch.Elapsed);
            afterEach?.Invoke();
        }

        return (latency, returned);
    }
}
