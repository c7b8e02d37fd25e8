namespace PgVectorModule.Problems;

/// <summary>
/// The database a program talks to, as a failure is explained against it: where it is (the connection string) and
/// where that came from, in words ("the default DATABASE_URL", "DATABASE_URL from the environment").
/// </summary>
public sealed record DatabaseTarget(NpgsqlConnectionStringBuilder ConnectionString, string Origin);
