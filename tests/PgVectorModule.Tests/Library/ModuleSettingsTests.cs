using PgVectorModule.Configuration;

using PgVectorModule.Problems;
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
                "# course settings\nDATABASE_URL=\"postgresql://u:p@from-dotenv:5999/db\"\nPGVM_TEST_ONLY_MARKER=1\nPGVM_TEST_BLANK_IN_ENV=from-dotenv\n");
            var child = root.CreateSubdirectory("lessons").CreateSubdirectory("01");
            Environment.SetEnvironmentVariable("PGVM_TEST_BLANK_IN_ENV", " ");

            var configuration = ModuleConfiguration.Build(child.FullName);

            Assert.Equal("postgresql://u:p@from-dotenv:5999/db", ModuleConfiguration.Get(configuration, "DATABASE_URL"));
            Assert.Equal(".env", ModuleConfiguration.SourceOf(configuration, "PGVM_TEST_ONLY_MARKER"));
            Assert.Null(Environment.GetEnvironmentVariable("PGVM_TEST_ONLY_MARKER"));
            // A variable set but blank counts as unset, as in the scripts: .env's value stands.
            Assert.Equal("from-dotenv", ModuleConfiguration.Get(configuration, "PGVM_TEST_BLANK_IN_ENV"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("PGVM_TEST_BLANK_IN_ENV", null);
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_environment_wins_over_dot_env_and_the_url_is_parsed_once_into_a_builder_the_caller_may_change()
    {
        var root = Directory.CreateTempSubdirectory("settings");
        try
        {
            File.WriteAllText(Path.Combine(root.FullName, ".env"), "PGVM_TEST_BOTH=from-dotenv\n");
            Environment.SetEnvironmentVariable("PGVM_TEST_BOTH", "from-environment");

            var configuration = ModuleConfiguration.Build(root.FullName);

            Assert.Equal("from-environment", ModuleConfiguration.Get(configuration, "PGVM_TEST_BOTH"));
            Assert.Equal("environment", ModuleConfiguration.SourceOf(configuration, "PGVM_TEST_BOTH"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("PGVM_TEST_BOTH", null);
            root.Delete(recursive: true);
        }

        var settings = ModuleSettings.From(n => n == "DATABASE_URL" ? "postgresql://u:p@h:5433/db" : null);
        var copy = settings.ConnectionString();
        copy.Timeout = 1;
        Assert.Equal(15, settings.ConnectionString().Timeout);
        Assert.Equal(("h", 5433), (settings.ConnectionString().Host, settings.ConnectionString().Port));
    }

    [Fact]
    public void A_url_that_cannot_be_parsed_is_reported_when_the_connection_string_is_asked_for()
    {
        var settings = ModuleSettings.From(n => n == "DATABASE_URL" ? "mysql://u:p@h/db" : null);

        Assert.Equal("mysql://u:p@h/db", settings.DatabaseUrl);
        var problem = Assert.Throws<SetupException>(() => settings.ConnectionString());
        Assert.Equal(ExitCodes.DatabaseUnavailable, problem.ExitCode);
        Assert.Contains("the scheme is 'mysql'", problem.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, 3)]
    [InlineData("0", 0)]
    [InlineData("10", 10)]
    public void OPENAI_MAX_RETRIES_is_the_embeddings_retries_from_none_to_ten(string? value, int retries)
    {
        var settings = ModuleSettings.From(n => n == "OPENAI_MAX_RETRIES" ? value : null);

        Assert.Equal(retries, settings.Embeddings.OpenAIMaxRetries);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("11")]
    [InlineData("three")]
    public void An_OPENAI_MAX_RETRIES_out_of_range_is_one_sentence(string value)
    {
        var problem = Assert.Throws<SetupException>(() => ModuleSettings.From(n => n == "OPENAI_MAX_RETRIES" ? value : null));

        Assert.Equal(ExitCodes.Failed, problem.ExitCode);
        Assert.Equal($"OPENAI_MAX_RETRIES is '{value}'; it must be a whole number from 0 (no retry) to 10.", problem.Message);
    }

    [Fact]
    public void Every_setting_the_code_reads_is_listed_in_env_example()
    {
        var example = File.ReadAllText(Path.Combine(RepositoryRoot.Path, ".env.example"));

        foreach (var name in new[] { "DATABASE_URL", "TEST_DATABASE_URL", "TEST_KEEP_DATABASE", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT", "DB_MODE",
                     "EMBEDDING_PROVIDER", "OPENAI_API_KEY", "OPENAI_EMBEDDING_MODEL", "OPENAI_EMBEDDING_DIMENSIONS", "OPENAI_BASE_URL", "OPENAI_TIMEOUT_SECONDS", "OPENAI_MAX_RETRIES", "EMBEDDING_BATCH_SIZE", "EMBEDDING_LONG_TEXT", "LOCAL_EMBEDDING_MODEL", "LESSON_TRANSCRIPT",
                     "EMBEDDING_CACHE", "EMBEDDING_CACHE_DIR", "LOCAL_EMBEDDING_MODEL_PATH", "LOCAL_EMBEDDING_MODEL_TOKENIZER", "LOCAL_EMBEDDING_MODEL_POOLING",
                     "LOCAL_EMBEDDING_MODEL_NORMALIZE", "LOCAL_EMBEDDING_MODEL_MAX_TOKENS", "LOCAL_EMBEDDING_MODEL_QUERY_PREFIX", "LOCAL_EMBEDDING_MODEL_DOCUMENT_PREFIX",
                     "RERANK_URL", "RERANK_API_KEY", "RERANK_TIMEOUT_SECONDS", "OPENAI_CHAT_MODEL", "LEARNER" })
        {
            Assert.Matches($"(?m)^#? ?{name}=", example);
        }
    }
}
