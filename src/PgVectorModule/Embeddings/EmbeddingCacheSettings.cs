namespace PgVectorModule.Embeddings;

/// <summary>
/// Where computed vectors are kept between runs (EMBEDDING_CACHE, EMBEDDING_CACHE_DIR): a folder outside the repository,
/// one subfolder per model identity. Null in <see cref="EmbeddingSettings.Cache"/> means every text is embedded afresh.
/// </summary>
/// <param name="Folder">The cache's root: EMBEDDING_CACHE_DIR, else <see cref="DefaultFolder"/>.</param>
public sealed record EmbeddingCacheSettings(string Folder)
{
    /// <summary>EMBEDDING_CACHE's values.</summary>
    public const string On = "on";

    /// <inheritdoc cref="On"/>
    public const string Off = "off";

    /// <summary>
    /// A part of the cache of its own (the bench keeps each dataset's and the ann texts' vectors apart, so a lesson reads
    /// only the few hundred vectors the lessons made); null for the lessons' and tests' part.
    /// </summary>
    public string? Collection { get; init; }

    /// <summary>
    /// True when the user named the folder for this command (the bench's --cache): a folder that cannot be written then
    /// stops the run with one sentence (exit code 15). Otherwise the cache is passed over and texts are embedded afresh.
    /// </summary>
    public bool Required { get; init; }

    /// <summary>
    /// The per-user cache folder: $XDG_CACHE_HOME (or ~/.cache) on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on
    /// Windows; then pgvector-module/embeddings. Never inside a repository, so no clone carries or commits it.
    /// </summary>
    public static string DefaultFolder()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string root;
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg))
        {
            root = xdg;
        }
        else if (OperatingSystem.IsWindows())
        {
            root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
        }
        else if (string.IsNullOrEmpty(home))
        {
            // A service account without a home: a folder of its own under the temporary folder.
            root = Path.Combine(Path.GetTempPath(), $"{Environment.UserName}-cache");
        }
        else
        {
            root = OperatingSystem.IsMacOS() ? Path.Combine(home, "Library", "Caches") : Path.Combine(home, ".cache");
        }

        return Path.Combine(root, "pgvector-module", "embeddings");
    }
}
