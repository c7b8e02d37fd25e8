using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>Writes a command's results as indented JSON and its main table as CSV.</summary>
public static class ResultFiles
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static async Task<string> WriteJsonAsync<T>(string folder, string name, T value, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name + ".json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(value, Json) + "\n", cancellationToken);
        return path;
    }

    public static async Task<string> WriteCsvAsync(string folder, string name, IReadOnlyList<string> header,
        IEnumerable<IReadOnlyList<object?>> rows, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name + ".csv");
        var text = new StringBuilder();
        text.AppendLine(string.Join(',', header.Select(Escape)));
        foreach (var row in rows)
        {
            text.AppendLine(string.Join(',', row.Select(v => Escape(Format(v)))));
        }

        await File.WriteAllTextAsync(path, text.ToString(), cancellationToken);
        return path;
    }

    private static string Format(object? value) => value switch
    {
        null => "",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Escape(string value) =>
        value.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
}
