using System.Text.RegularExpressions;
using PgVectorModule.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace PgVectorModule.Tests.Scripts;

/// <summary>
/// docker-compose.yml, read as compose reads it (YAML, anchors resolved; Docker cannot run here): nothing is published
/// beyond this machine, no server trusts a connection without a password, none has a password anyone could guess, and
/// the image is written once, the one the tests' Testcontainers start, of the PostgreSQL major CI tests.
/// </summary>
public partial class ComposeFileTests
{
    private const string RequiredPassword = "${POSTGRES_PASSWORD:?";

    [Fact]
    public void Every_published_port_is_on_127_0_0_1_only()
    {
        var published = ComposeFile.Services
            .Where(s => s.Value.Children.ContainsKey(new YamlScalarNode("ports")))
            .SelectMany(s => ((YamlSequenceNode)s.Value.Children[new YamlScalarNode("ports")]).Children.Select(p => (Service: s.Key, Port: ((YamlScalarNode)p).Value!)))
            .ToList();

        Assert.Equal(["citus-coordinator", "pgbouncer", "postgres", "replica"], published.Select(p => p.Service).Order(StringComparer.Ordinal));
        Assert.All(published, p => Assert.Matches(@"^127\.0\.0\.1:\$\{[A-Z_]+:-[0-9]+\}:5432$", p.Port));
    }

    [Fact]
    public void No_server_trusts_connections_and_none_has_a_default_password()
    {
        var text = File.ReadAllText(ComposeFile.Path);

        Assert.DoesNotContain("POSTGRES_HOST_AUTH_METHOD", text, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(?i)\btrust\b", text);
        // ${POSTGRES_PASSWORD} appears only in its required form (${VAR:?sentence}): compose refuses to start without it.
        Assert.Equal(PasswordUses().Count(text), RequiredPasswordUses().Count(text));
        Assert.DoesNotContain(":postgres@", text, StringComparison.Ordinal);

        foreach (var (name, service) in ComposeFile.Services)
        {
            if (!service.Children.TryGetValue(new YamlScalarNode("environment"), out var environment))
            {
                continue;
            }

            foreach (var (key, value) in ((YamlMappingNode)environment).Children)
            {
                var variable = ((YamlScalarNode)key).Value!;
                var setting = ((YamlScalarNode)value).Value!;
                if (variable is "POSTGRES_PASSWORD" or "PGPASSWORD")
                {
                    Assert.True(setting.StartsWith(RequiredPassword, StringComparison.Ordinal), $"{name}: {variable} is '{setting}'");
                }
                else if (variable == "DATABASE_URL")
                {
                    Assert.Contains(":" + RequiredPassword, setting, StringComparison.Ordinal);
                }
            }
        }
    }

    [Fact]
    public void The_refusal_without_a_password_is_one_sentence_with_the_fix()
    {
        var refusal = RequiredPasswordUses().Match(File.ReadAllText(ComposeFile.Path)).Groups["sentence"].Value;

        Assert.Equal("POSTGRES_PASSWORD is not set - run scripts/db.sh up, which generates one, or set POSTGRES_PASSWORD in .env", refusal);
    }

    [Fact]
    public void The_image_is_written_once_and_is_the_one_testcontainers_starts()
    {
        var text = File.ReadAllText(ComposeFile.Path);

        Assert.Single(Regex.Matches(text, Regex.Escape("pgvector/pgvector:")));
        Assert.Matches(@"^pgvector/pgvector:\d+\.\d+\.\d+-pg\d+$", ComposeFile.PostgresImage);
        Assert.Equal(ComposeFile.PostgresImage, PostgresServer.Image);
        Assert.Equal(ComposeFile.PostgresImage, ComposeFile.Scalar(ComposeFile.Services["postgres"], "image"));
        Assert.Equal(ComposeFile.PostgresImage, ComposeFile.Scalar(ComposeFile.Services["replica"], "image"));
    }

    [Fact]
    public void The_images_postgresql_major_is_one_scripts_db_sh_builds_for_ci()
    {
        var major = ImageMajor().Match(ComposeFile.PostgresImage).Groups["major"].Value;
        var provision = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "scripts", "lib", "provision.sh"));

        // POSTGRES_SOURCES: the majors db.sh builds from Debian's pinned source packages for the second CI lane.
        Assert.Matches($"(?m)^  \"{major} [0-9.]+-[0-9]+ [0-9a-f]{{64}}\"$", provision);
    }

    [Fact]
    public void The_images_postgresql_major_is_the_one_ci_tests_beside_debians()
    {
        var major = ImageMajor().Match(ComposeFile.PostgresImage).Groups["major"].Value;
        var ci = File.ReadAllText(Path.Combine(RepositoryRoot.Path, ".ci", "run"));

        Assert.Matches($"(?m)^export TEST_ALSO_ON_POSTGRES={major}$", ci);
    }

    [Fact]
    public void Every_file_compose_mounts_from_the_repository_exists()
    {
        var mounts = ComposeFile.Services.Values
            .Where(s => s.Children.ContainsKey(new YamlScalarNode("volumes")))
            .SelectMany(s => ((YamlSequenceNode)s.Children[new YamlScalarNode("volumes")]).Children.Select(v => ((YamlScalarNode)v).Value!))
            .Where(v => v.StartsWith("./", StringComparison.Ordinal))
            .Select(v => v.Split(':')[0])
            .ToList();

        Assert.NotEmpty(mounts);
        Assert.All(mounts, m => Assert.True(File.Exists(Path.Combine(RepositoryRoot.Path, m)), m));
    }

    [GeneratedRegex(@"\$\{POSTGRES_PASSWORD\b")]
    private static partial Regex PasswordUses();

    [GeneratedRegex(@"\$\{POSTGRES_PASSWORD:\?(?<sentence>[^}]+)\}")]
    private static partial Regex RequiredPasswordUses();

    [GeneratedRegex(@"-pg(?<major>\d+)$")]
    private static partial Regex ImageMajor();
}
