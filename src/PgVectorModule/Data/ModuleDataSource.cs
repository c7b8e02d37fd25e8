namespace PgVectorModule.Data;

/// <summary>Builds the one <see cref="NpgsqlDataSource"/> a program shares: pooled connections with pgvector's types.</summary>
public static class ModuleDataSource
{
    /// <param name="connectionString">From DATABASE_URL.</param>
    /// <param name="schema">
    /// When given, the schema that unqualified names resolve to first (each lesson works in its own, so two
    /// lessons never touch each other's tables); <c>public</c> stays on the path for the extension's types.
    /// </param>
    public static NpgsqlDataSource Create(NpgsqlConnectionStringBuilder connectionString, string? schema = null)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        var builder = new NpgsqlConnectionStringBuilder(connectionString.ConnectionString);
        if (schema is not null)
        {
            builder.SearchPath = $"{schema}, public";
        }

        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = "PgVectorModule";
        }

        var dataSourceBuilder = new NpgsqlDataSourceBuilder(builder.ConnectionString);
        dataSourceBuilder.UseVector();
        return dataSourceBuilder.Build();
    }
}
