using System.Globalization;
using System.Net;
using System.Text;

namespace PgVectorModule.Bench.Ann;

/// <summary>
/// Recall against p50 latency (log scale) for both index types, as a self-contained SVG. HNSW is drawn three times:
/// the lessons' LINQ (solid), the compiled query with prepared statements (dashed), and the time inside the server
/// (dotted), so the gap between what PostgreSQL spends and what a .NET caller waits shows.
/// </summary>
public static class AnnChart
{
    private const int Width = 760, Height = 460, Left = 70, Right = 30, Top = 50, Bottom = 60;

    public static string Render(IReadOnlyList<AnnResult> results, string title, double exactP50Ms, string? subtitle = null)
    {
        ArgumentNullException.ThrowIfNull(results);
        var all = results.SelectMany(r => new[] { r.P50Ms, r.HotP50Ms, r.ServerP50Ms }).Where(ms => ms > 0).ToList();
        var minMs = Math.Min(all.Min(), AnnCommand.TargetP50Ms);
        var maxMs = Math.Max(all.Max(), AnnCommand.TargetP50Ms);
        var x0 = Math.Floor(Math.Log10(minMs) * 2) / 2;
        var x1 = Math.Ceiling(Math.Log10(maxMs) * 2) / 2;
        if (x1 - x0 < 1)
        {
            x1 = x0 + 1;
        }

        var y0 = Math.Min(0.9, Math.Floor(results.Min(r => r.RecallAt10) * 10) / 10);
        double X(double ms) => Left + (Math.Log10(ms) - x0) / (x1 - x0) * (Width - Left - Right);
        double Y(double recall) => Top + (1 - (recall - y0) / (1 - y0)) * (Height - Top - Bottom);
        static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);

        var svg = new StringBuilder();
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{Width}" height="{Height}" viewBox="0 0 {Width} {Height}" font-family="sans-serif" font-size="12">""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<rect width="{Width}" height="{Height}" fill="white"/>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{Width / 2}" y="22" text-anchor="middle" font-size="15">{WebUtility.HtmlEncode(title)}</text>""");
        if (subtitle is not null)
        {
            svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{Width / 2}" y="40" text-anchor="middle" font-size="10" fill="#555">{WebUtility.HtmlEncode(subtitle)}</text>""");
        }

        for (var decade = Math.Ceiling(x0); decade <= x1; decade++)
        {
            foreach (var m in new[] { 1, 2, 5 })
            {
                var ms = m * Math.Pow(10, decade);
                if (Math.Log10(ms) < x0 || Math.Log10(ms) > x1)
                {
                    continue;
                }

                svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{F(X(ms))}" y1="{Top}" x2="{F(X(ms))}" y2="{Height - Bottom}" stroke="#eee"/><text x="{F(X(ms))}" y="{Height - Bottom + 18}" text-anchor="middle">{ms.ToString("0.###", CultureInfo.InvariantCulture)}</text>""");
            }
        }

        var step = 1 - y0 > 0.5 ? 0.1 : 0.05;
        for (var r = Math.Ceiling(y0 / step) * step; r <= 1.0001; r += step)
        {
            svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{Left}" y1="{F(Y(r))}" x2="{Width - Right}" y2="{F(Y(r))}" stroke="#eee"/><text x="{Left - 8}" y="{F(Y(r) + 4)}" text-anchor="end">{r.ToString("0.00", CultureInfo.InvariantCulture)}</text>""");
        }

        // The target (AnnCommand.TargetRecall at AnnCommand.TargetP50Ms or less) is the upper-left of both dashed lines.
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{Left}" y1="{F(Y(AnnCommand.TargetRecall))}" x2="{Width - Right}" y2="{F(Y(AnnCommand.TargetRecall))}" stroke="#999" stroke-dasharray="4 4"/>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{F(X(AnnCommand.TargetP50Ms))}" y1="{Top}" x2="{F(X(AnnCommand.TargetP50Ms))}" y2="{Height - Bottom}" stroke="#999" stroke-dasharray="4 4"/>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<rect x="{Left}" y="{Top}" width="{Width - Left - Right}" height="{Height - Top - Bottom}" fill="none" stroke="#333"/>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{(Left + Width - Right) / 2}" y="{Height - 18}" text-anchor="middle">p50 latency per query, ms (log scale); exact scan p50 {exactP50Ms.ToString("0.##", CultureInfo.InvariantCulture)} ms</text>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="18" y="{(Top + Height - Bottom) / 2}" text-anchor="middle" transform="rotate(-90 18 {(Top + Height - Bottom) / 2})">recall@10</text>""");

        var series = new (string Index, string Name, string Colour, string Dash, string? Label, Func<AnnResult, double> Ms)[]
        {
            ("HNSW", "HNSW, LINQ", "#1f77b4", "", "ef ", r => r.P50Ms),
            ("HNSW", "HNSW, compiled + prepared", "#1f77b4", "6 4", null, r => r.HotP50Ms),
            ("HNSW", "HNSW, inside the server", "#1f77b4", "2 3", null, r => r.ServerP50Ms),
            ("IVFFlat", "IVFFlat, LINQ", "#ff7f0e", "", "probes ", r => r.P50Ms),
        };
        // Bottom right: slow and poor, the corner no sweep worth running ends in.
        var legendY = Height - Bottom - (series.Length * 18) + 4;
        foreach (var (index, name, colour, dash, label, ms) in series)
        {
            var points = results.Where(r => r.Index == index && ms(r) > 0).OrderBy(r => r.Value).ToList();
            if (points.Count == 0)
            {
                continue;
            }

            var dashes = dash.Length == 0 ? "" : $" stroke-dasharray=\"{dash}\"";
            svg.AppendLine(CultureInfo.InvariantCulture, $"""<polyline fill="none" stroke="{colour}" stroke-width="2"{dashes} points="{string.Join(' ', points.Select(p => $"{F(X(ms(p)))},{F(Y(p.RecallAt10))}"))}"/>""");
            foreach (var p in points)
            {
                svg.AppendLine(CultureInfo.InvariantCulture, $"""<circle cx="{F(X(ms(p)))}" cy="{F(Y(p.RecallAt10))}" r="{(label is null ? 2.5 : 4)}" fill="{colour}"/>""");
                if (label is not null)
                {
                    svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{F(X(ms(p)) + 6)}" y="{F(Y(p.RecallAt10) + 14)}" fill="{colour}" font-size="10">{label}{p.Value}</text>""");
                }
            }

            svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{Width - Right - 200}" y1="{legendY - 4}" x2="{Width - Right - 178}" y2="{legendY - 4}" stroke="{colour}" stroke-width="2"{dashes}/><text x="{Width - Right - 172}" y="{legendY}">{WebUtility.HtmlEncode(name)}</text>""");
            legendY += 18;
        }

        svg.AppendLine("</svg>");
        return svg.ToString();
    }
}
