namespace PgVectorModule.Data;

/// <summary>Builds the one <see cref="NpgsqlDataSource"/> a program shares: pooled connections with pgvector's types.</summary>
public static class ModuleDataSource
{
    /// <param name="connectionString">From DATABASE_URL (<see cref="ModuleSettings.ConnectionString"/>).</param>
    /// <param name="schema">
    /// When given, the schema that unqualified names resolve to first (each lesson works in its own, so two
    /// lessons never touch each other's tables); <c>public</c> stays on the path for the extension's types.
    /// </param>
    public static NpgsqlDataSource Create(NpgsqlConnectionStringBuilder connectionString, string? schema = null)
    {
        var dataSourceBuilder = new NpgsqlDataSourceBuilder(ForSchema(connectionString, schema).ConnectionString);
        dataSourceBuilder.UseVector();
        return dataSourceBuilder.Build();
    }

    /// <summary>A copy of <paramref name="connectionString"/> whose search path starts at <paramref name="schema"/>, named for pg_stat_activity.</summary>
    public static NpgsqlConnectionStringBuilder ForSchema(NpgsqlConnectionStringBuilder connectionString, string? schema)
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

        return builder;
    }
}
