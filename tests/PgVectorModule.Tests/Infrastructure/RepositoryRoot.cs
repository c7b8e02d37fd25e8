namespace PgVectorModule.Tests.Infrastructure;

/// <summary>The repository's root folder (the one holding PgVectorModule.sln), for tests that read its files.</summary>
public static class RepositoryRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "PgVectorModule.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("PgVectorModule.sln not found above " + AppContext.BaseDirectory);
    }
}
