using PgVectorModule.Configuration;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

public class DatabaseUrlTests
{
    [Fact]
    public void Uri_form_maps_every_part()
    {
        var cs = DatabaseUrl.Parse("postgresql://alice:s3cret@db.example.test:6543/agent_db?sslmode=require&application_name=course");

        Assert.Equal("db.example.test", cs.Host);
        Assert.Equal(6543, cs.Port);
        Assert.Equal("alice", cs.Username);
        Assert.Equal("s3cret", cs.Password);
        Assert.Equal("agent_db", cs.Database);
        Assert.Equal(SslMode.Require, cs.SslMode);
        Assert.Equal("course", cs.ApplicationName);
    }

    [Theory]
    [InlineData("postgres://u:p@localhost/db")]
    [InlineData("postgresql+psycopg2://u:p@localhost/db")]
    public void Uri_form_accepts_the_scheme_spellings_python_uses(string url)
    {
        var cs = DatabaseUrl.Parse(url);

        Assert.Equal("localhost", cs.Host);
        Assert.Equal(5432, cs.Port);
        Assert.Equal("db", cs.Database);
    }

    [Fact]
    public void Uri_form_decodes_percent_encoded_credentials()
    {
        var cs = DatabaseUrl.Parse("postgresql://app%40corp:p%3Aw%2Fd%40!@127.0.0.1:5432/my%20db");

        Assert.Equal("app@corp", cs.Username);
        Assert.Equal("p:w/d@!", cs.Password);
        Assert.Equal("my db", cs.Database);
    }

    [Fact]
    public void Uri_form_accepts_an_ipv6_host()
    {
        var cs = DatabaseUrl.Parse("postgresql://u:p@[::1]:5433/db");

        Assert.Equal("::1", cs.Host);
        Assert.Equal(5433, cs.Port);
    }

    [Theory]
    [InlineData("disable", SslMode.Disable)]
    [InlineData("prefer", SslMode.Prefer)]
    [InlineData("verify-full", SslMode.VerifyFull)]
    public void Sslmode_values_map_to_npgsql(string mode, SslMode expected) =>
        Assert.Equal(expected, DatabaseUrl.Parse($"postgresql://u:p@h/db?sslmode={mode}").SslMode);

    [Fact]
    public void Keyword_form_is_passed_to_npgsql()
    {
        var cs = DatabaseUrl.Parse("Host=localhost;Port=5433;Username=postgres;Password=pw;Database=agent_db");

        Assert.Equal("localhost", cs.Host);
        Assert.Equal(5433, cs.Port);
        Assert.Equal("postgres", cs.Username);
        Assert.Equal("agent_db", cs.Database);
    }

    [Theory]
    [InlineData("", "it is empty")]
    [InlineData("   ", "it is empty")]
    [InlineData("mysql://u:p@localhost/db", "the scheme is 'mysql'")]
    [InlineData("postgresql://u:p@localhost/db?sslmode=sometimes", "sslmode 'sometimes'")]
    [InlineData("postgresql://u:p@localhost/db?frobnicate=1", "the parameter 'frobnicate' is not supported")]
    [InlineData("postgresql://u:p@localhost:notaport/db", "not a valid URI")]
    [InlineData("localhost:5432", "neither a postgresql:// URI")]
    [InlineData("Host=localhost;Colour=blue", "Colour")]
    [InlineData("Username=postgres;Database=x", "names no Host")]
    public void A_bad_url_gets_one_sentence_with_the_fix_and_exit_code_2(string url, string reason)
    {
        var e = Assert.Throws<SetupException>(() => DatabaseUrl.Parse(url));

        Assert.Equal(ExitCodes.DatabaseUnavailable, e.ExitCode);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains("Set it to postgresql://user:password@host:5432/database", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Messages_never_show_the_password()
    {
        var e = Assert.Throws<SetupException>(() => DatabaseUrl.Parse("postgresql://u:hunter2@localhost/db?frobnicate=1"));
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);

        Assert.Equal("postgresql://u:****@h/db", DatabaseUrl.Redact("postgresql://u:hunter2@h/db"));
        Assert.Equal("Host=h;Password=****;Database=d", DatabaseUrl.Redact("Host=h;Password=hunter2;Database=d"));
    }

    /// <summary>Every way a URL or connection string can carry a password (libpq's, Npgsql's keywords and their aliases).</summary>
    public static TheoryData<string, string> Spellings { get; } = new()
    {
        { "postgresql://u:hunter2@h/db", "postgresql://u:****@h/db" },
        { "postgresql://u:hun%40ter2@h:5433/db?sslmode=require", "postgresql://u:****@h:5433/db?sslmode=require" },
        { "postgresql://u@h/db?password=hunter2", "postgresql://u@h/db?password=****" },
        { "postgresql://h/db?user=u&PASSWORD=hunter2&sslmode=require", "postgresql://h/db?user=u&PASSWORD=****&sslmode=require" },
        { "postgresql://u:hunter2@h/db?sslpassword=hunter2", "postgresql://u:****@h/db?sslpassword=****" },
        { "Host=h;Password=hunter2;Database=d", "Host=h;Password=****;Database=d" },
        { "Host=h;PWD=hunter2;Database=d", "Host=h;PWD=****;Database=d" },
        { "Host=h; Pwd = hunter2 ;Database=d", "Host=h; Pwd =****;Database=d" },
        { "Host=h;psw=hunter2", "Host=h;psw=****" },
        { "Host=h;SSL Password=hunter2;Database=d", "Host=h;SSL Password=****;Database=d" },
        { "Host=h;Password=\"hun;ter2\";Database=d", "Host=h;Password=****;Database=d" },
        { "Host=h;Password='hun;''ter2';Database=d", "Host=h;Password=****;Database=d" },
    };

    [Theory]
    [MemberData(nameof(Spellings))]
    public void Redact_hides_every_spelling_of_the_password(string url, string redacted)
    {
        Assert.Equal(redacted, DatabaseUrl.Redact(url));
        Assert.DoesNotContain("hunter2", DatabaseUrl.Redact(url), StringComparison.Ordinal);
        Assert.DoesNotContain("ter2", DatabaseUrl.Redact(url), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgresql://u@h/db?password=hunter2&frobnicate=1")]
    [InlineData("postgresql://u:hunter2@h/db?frobnicate=1")]
    [InlineData("Host=h;PWD=hunter2;Frobnicate=1")]
    [InlineData("Host=h;Pwd=hunter2;Colour=blue")]
    [InlineData("Host=h;Password=\"a;hunter2\";Colour=blue")]
    public void The_exit_2_sentence_never_shows_the_password(string url)
    {
        var e = Assert.Throws<SetupException>(() => DatabaseUrl.Parse(url));

        Assert.Equal(ExitCodes.DatabaseUnavailable, e.ExitCode);
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Host=127.0.0.1;PWD=hunter2;Frobnicate=1")]
    [InlineData("postgresql://postgres@127.0.0.1/db?password=hunter2&frobnicate=1")]
    public async Task A_lesson_process_given_a_bad_url_never_prints_its_password(string url)
    {
        var result = await LessonProcess.RunLessonAsync("01", new Dictionary<string, string> { ["DATABASE_URL"] = url });

        Assert.True(result.ExitCode == ExitCodes.DatabaseUnavailable, $"exit {result.ExitCode}:\n{result.Output}");
        Assert.Contains("cannot be used", result.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", System.Text.Json.JsonSerializer.Serialize(result.Transcript), StringComparison.Ordinal);
    }

    [Fact]
    public void Uri_form_takes_user_and_password_as_libpq_does_in_the_query()
    {
        var cs = DatabaseUrl.Parse("postgresql://h/db?user=alice&password=s%26cret");

        Assert.Equal("alice", cs.Username);
        Assert.Equal("s&cret", cs.Password);
    }
}
