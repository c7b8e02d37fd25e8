using System.Globalization;
using System.Text.RegularExpressions;
using DotNet.Testcontainers.Builders;
using Microsoft.Extensions.Logging.Abstractions;
using PgVectorModule.Configuration;
using PgVectorModule.Problems;
using Testcontainers.PostgreSql;

namespace PgVectorModule.Servers;

/// <summary>
/// The course database as a container of the pgvector image docker-compose.yml pins, started through Testcontainers
/// when a Docker engine answers (Docker Desktop on Windows and macOS, the engine on Linux). It is kept between runs:
/// Testcontainers' reuse finds the container made with the same settings again (and leaves it running when the lesson
/// ends), a label names it as the course's, its data lives in a named volume, and its port is published on 127.0.0.1 only.
/// </summary>
public static partial class CourseContainer
{
    /// <summary>The named volume holding the container's data (the image keeps it below /var/lib/postgresql).</summary>
    public const string Volume = "pgvector-module-lessons-data";

    /// <summary>The label every container the lessons start carries, for <c>docker ps --filter label=...</c>.</summary>
    public const string Label = "org.pgvector-module.course-database";

    /// <summary>The image, written once in docker-compose.yml (its x-postgres-image field), which is built into the library.</summary>
    public static string Image { get; } = ReadImage();

    /// <summary>
    /// Starts (or finds again) the course's container; null when no Docker engine answers. A container that Docker could
    /// not start is one sentence with exit code 18.
    /// </summary>
    /// <param name="password">Gives the superuser's password, asked for only once Docker answers (it may be drawn and kept then).</param>
    public static async Task<CourseServer?> StartAsync(CourseDatabaseSettings settings, Func<Task<string>> password, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(password);
        try
        {
            // Build() is where Testcontainers says no Docker engine answers; nothing is made before that.
            _ = new PostgreSqlBuilder(Image).WithLogger(NullLogger.Instance).Build();
        }
        catch (DockerUnavailableException)
        {
            return null;
        }

        var superuserPassword = await password();
        PostgreSqlContainer container;
        try
        {
            container = new PostgreSqlBuilder(Image)
                .WithUsername(settings.User)
                .WithPassword(superuserPassword)
                .WithDatabase(settings.Database)
                .WithLabel(Label, "true")
                .WithVolumeMount(Volume, "/var/lib/postgresql")
                .WithPortBinding(PostgreSqlBuilder.PostgreSqlPort, assignRandomHostPort: true)
                // Docker publishes on every interface unless told otherwise: another machine must not reach the superuser.
                .WithCreateParameterModifier(parameters =>
                {
                    foreach (var bindings in parameters.HostConfig?.PortBindings?.Values ?? [])
                    {
                        foreach (var binding in bindings)
                        {
                            binding.HostIP = "127.0.0.1";
                        }
                    }
                })
                .WithReuse(true)
                .WithLogger(NullLogger.Instance)
                .Build();
        }
        catch (DockerUnavailableException)
        {
            return null;
        }

        try
        {
            await container.StartAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new SetupException(
                $"A Docker engine answers, but the pgvector container ({Image}) did not start: {e.Message.Split('\n')[0].Trim()}. " +
                "Check Docker (docker run --rm hello-world), set DB_MODE=local to use the installed PostgreSQL instead, or set DATABASE_URL to a server with pgvector.",
                ExitCodes.LocalServerFailed, e);
        }

        var port = container.GetMappedPublicPort(PostgreSqlBuilder.PostgreSqlPort);
        var url = $"postgresql://{Uri.EscapeDataString(settings.User)}:{Uri.EscapeDataString(superuserPassword)}@127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/{Uri.EscapeDataString(settings.Database)}";
        return new CourseServer(url, "a pgvector container",
            $"Using the pgvector container {container.Name.TrimStart('/')} ({Image}) on 127.0.0.1:{port}, its data in the Docker volume {Volume}; " +
            $"it stays up for the next lesson: stop it with docker stop {container.Name.TrimStart('/')}.");
    }

    private static string ReadImage()
    {
        using var stream = typeof(CourseContainer).Assembly.GetManifestResourceStream("PgVectorModule.docker-compose.yml")
                           ?? throw new InvalidOperationException("docker-compose.yml is not built into the library.");
        using var reader = new StreamReader(stream);
        return ImageLine().Match(reader.ReadToEnd()) is { Success: true } match
            ? match.Groups[1].Value
            : throw new InvalidOperationException("docker-compose.yml has no x-postgres-image line.");
    }

    [GeneratedRegex(@"^x-postgres-image:\s*&\S+\s+(\S+)", RegexOptions.Multiline)]
    private static partial Regex ImageLine();
}
