using YamlDotNet.RepresentationModel;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>
/// The repository's docker-compose.yml, read as YAML (anchors and aliases resolved). It writes the course's server image
/// once, in its <c>x-postgres-image</c> field; compose's services and the tests' Testcontainers both take it from there.
/// </summary>
public static class ComposeFile
{
    private static readonly Lazy<YamlMappingNode> Document = new(Load);

    public static string Path => System.IO.Path.Combine(RepositoryRoot.Path, "docker-compose.yml");

    /// <summary>The pgvector image of the course database (pgvector/pgvector:VERSION-pgMAJOR).</summary>
    public static string PostgresImage => Scalar(Document.Value, "x-postgres-image");

    /// <summary>Each service's name and its YAML mapping.</summary>
    public static IReadOnlyDictionary<string, YamlMappingNode> Services =>
        ((YamlMappingNode)Document.Value.Children[new YamlScalarNode("services")]).Children
            .ToDictionary(p => ((YamlScalarNode)p.Key).Value!, p => (YamlMappingNode)p.Value);

    /// <summary>The value of <paramref name="key"/> in <paramref name="mapping"/>, as YAML gives it (before compose's interpolation).</summary>
    public static string Scalar(YamlMappingNode mapping, string key)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        return mapping.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode { Value: { } value }
            ? value
            : throw new InvalidOperationException($"docker-compose.yml has no scalar '{key}' where one is expected.");
    }

    private static YamlMappingNode Load()
    {
        using var reader = new StreamReader(Path);
        var stream = new YamlStream();
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }
}
