using PgVectorModule.Configuration;

using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

public class ModuleSettingsTests
{
    [Fact]
    public void Defaults_point_at_the_course_database()
    {
        var settings = ModuleSettings.From(_ => null);

        Assert.Equal("postgresql://postgres:postgres@localhost:5432/agent_db", settings.DatabaseUrl);
        Assert.Equal("default", settings.DatabaseUrlSource);
        var cs = settings.ConnectionString();
        Assert.Equal(("localhost", 5432, "postgres", "agent_db"), (cs.Host, cs.Port, cs.Username, cs.Database));
    }

    [Fact]
    public void A_set_value_wins_over_the_default_and_blank_counts_as_unset()
    {
        Assert.Equal("Host=elsewhere", ModuleSettings.From(n => n == "DATABASE_URL" ? " Host=elsewhere " : null).DatabaseUrl);
        Assert.Equal(ModuleSettings.DefaultDatabaseUrl, ModuleSettings.From(n => n == "DATABASE_URL" ? "  " : null).DatabaseUrl);
    }

    [Fact]
    public void Dot_env_is_found_in_a_parent_folder_and_read_without_touching_the_environment()
    {
        var root = Directory.CreateTempSubdirectory("settings");
        try
        {
            File.WriteAllText(Path.Combine(root.FullName, ".env"),
                "# course settings\nDATABASE_URL=postgresql://u:p@from-dotenv:5999/db\nPGVM_TEST_ONLY_MARKER=1\n");
            var child = root.CreateSubdirectory("lessons").CreateSubdirectory("01");

            var values = DotEnvFile.Read(child.FullName);

            Assert.Equal("postgresql://u:p@from-dotenv:5999/db", values["DATABASE_URL"]);
            Assert.Null(Environment.GetEnvironmentVariable("PGVM_TEST_ONLY_MARKER"));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void Every_setting_the_code_reads_is_listed_in_env_example()
    {
        var example = File.ReadAllText(Path.Combine(RepositoryRoot.Path, ".env.example"));

        foreach (var name in new[] { "DATABASE_URL", "TEST_DATABASE_URL", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT", "DB_MODE",
                     "EMBEDDING_PROVIDER", "OPENAI_API_KEY", "OPENAI_EMBEDDING_MODEL", "OPENAI_EMBEDDING_DIMENSIONS", "OPENAI_BASE_URL", "EMBEDDING_BATCH_SIZE", "EMBEDDING_LONG_TEXT", "LOCAL_EMBEDDING_MODEL", "LESSON_TRANSCRIPT" })
        {
            Assert.Matches($"(?m)^#? ?{name}=", example);
        }
    }
}
