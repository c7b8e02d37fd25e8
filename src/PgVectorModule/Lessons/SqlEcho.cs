using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore.Diagnostics;
using PgVectorModule.Input;

namespace PgVectorModule.Lessons;

/// <summary>
/// Shows every command EF Core sends, with its parameters, before it runs: the lessons' answer to
/// SQLAlchemy's <c>echo=True</c>. Quieted by <see cref="Lesson.QuietSql"/>; the lesson's transcript
/// records every command either way.
/// </summary>
internal sealed class SqlEcho(Lesson lesson) : DbCommandInterceptor
{
    public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
    {
        Show(command);
        return result;
    }

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        Show(command);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        Show(command);
        return result;
    }

    public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        Show(command);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result)
    {
        Show(command);
        return result;
    }

    public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<object> result, CancellationToken cancellationToken = default)
    {
        Show(command);
        return ValueTask.FromResult(result);
    }

    private void Show(DbCommand command) =>
        lesson.Sent(command.CommandText, DescribeParameters(command.Parameters.Cast<DbParameter>()));

    /// <summary>"@name = value" for each parameter, named as the SQL text names them.</summary>
    internal static List<string> DescribeParameters(IEnumerable<DbParameter> parameters) =>
        parameters.Select(p => $"{Name(p)} = {Describe(p.Value)}").ToList();

    // EF names its parameters "@p0" in SQL, but raw SQL (SqlQuery, ExecuteSql) names them "p0": show both as in the SQL.
    private static string Name(DbParameter parameter) =>
        parameter.ParameterName is { Length: > 0 } name && name[0] is not ('@' or '$' or ':') ? "@" + name : parameter.ParameterName;

    /// <summary>A parameter value as the echo shows it: long text cut at 60 characters, a vector as its first values.</summary>
    internal static string Describe(object? value) => value switch
    {
        null or DBNull => "NULL",
        string s => "'" + (s.Length > 60 ? TextPrefix.Of(s, 57) + "..." : s) + "'",
        Vector v => DescribeVector(v.ToArray()),
        DateTimeOffset d => d.ToString("u", CultureInfo.InvariantCulture),
        DateTime d => d.ToString("u", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string DescribeVector(float[] values) =>
        "[" + string.Join(", ", values.Take(3).Select(x => x.ToString("0.000", CultureInfo.InvariantCulture))) +
        (values.Length > 3 ? ", ..." : "") + $"] ({values.Length} dimensions)";
}
