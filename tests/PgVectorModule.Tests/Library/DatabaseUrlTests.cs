using PgVectorModule.Configuration;

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
}
