using System.Security.Cryptography;
using System.Text;
using PgVectorModule.Configuration;
using PgVectorModule.Data;

namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Security considerations: connection security, credentials, access control, SQL injection.</summary>
public sealed partial class ProductionLesson
{
    private static async Task SslAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        lesson.Step("sslmode", "sslmode and where credentials come from",
            "DATABASE_URL carries sslmode (Npgsql's SSL Mode): only verify-full checks the certificate and the host name; the default, prefer, checks neither. " +
            "Credentials come from the environment or .env, never from code.");
        // Every mode and what it checks, and whether this connection is encrypted: a detail.
        IReadOnlyList<IReadOnlyDictionary<string, object?>> ssl;
        using (lesson.Detail())
        {
            lesson.Table(new[]
                {
                    ("disable", "nothing: plain text", "a local socket or loopback only"),
                    ("allow", "tries plain text first, encrypts only if the server refuses it; no certificate check", "nothing worth having: an attacker in the middle can keep it in plain text"),
                    ("prefer (Npgsql's and libpq's default)", "tries SSL first, falls back to plain text; no certificate check", "the default; an attacker in the middle can downgrade or impersonate"),
                    ("require", "always encrypted; the certificate is not checked", "stops eavesdropping, not impersonation"),
                    ("verify-ca", "encrypted; the certificate is signed by a trusted CA (sslrootcert)", "the server is one your CA vouches for"),
                    ("verify-full", "as verify-ca, and the host name matches the certificate", "what a managed cloud database should use"),
                },
                ("sslmode", r => r.Item1), ("what it checks", r => r.Item2), ("use it for", r => r.Item3));
            ssl = await lesson.QueryAsync("SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl", cancellationToken);
        }

        lesson.Code("""
            # Python (pydantic-settings): typed settings from the environment or .env
            class Settings(BaseSettings):
                database_url: str
                model_config = SettingsConfigDict(env_file=".env")

            // C#, this course: the environment, then .env, then documented defaults
            var settings = ModuleSettings.Load();
            // C#, ASP.NET Core: environment, user secrets or a vault, checked at startup
            builder.Services.AddOptions<DatabaseOptions>().BindConfiguration("Database")
                .ValidateDataAnnotations().ValidateOnStart();
            """, "Python and C#");
        lesson.Say($"This run: DATABASE_URL from the {lesson.Settings.DatabaseUrlSource}, " +
                   $"'{DatabaseUrl.Redact(lesson.Settings.DatabaseUrl)}', SSL Mode {lesson.Settings.ConnectionString().SslMode}, encrypted now: {ssl[0]["ssl"]}.");
    }

    private static async Task ReadOnlyRoleAsync(Lesson lesson, Vector question, CancellationToken cancellationToken)
    {
        lesson.DeepDive("read-only-role", "A read-only role",
            "Searching needs SELECT only. A login role (named after this schema and database: roles are per server) gets SELECT on the schema's tables, " +
            "and ALTER DEFAULT PRIVILEGES for tables created later, which the Python module's GRANT misses.");
        var database = (string)(await lesson.QueryAsync("SELECT current_database() AS db", cancellationToken))[0]["db"]!;
        var role = ReaderRole(lesson.Schema, database);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        try
        {
            lesson.Sql($"""
                CREATE ROLE {role} LOGIN;                    -- when it does not exist yet
                ALTER ROLE {role} WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:****'; -- a new random password every run, sent as its verifier
                """, ["A password in clear text would reach the server as it is, and pg_stat_statements and the server log would keep it. " +
                      "The verifier is computed here (ScramVerifier below: PBKDF2 and HMAC-SHA-256), stored by the server as it is, and proves the password without revealing it."]);
            using (lesson.QuietSql())
            {
                await lesson.ExecuteAsync($"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END $$", cancellationToken);
            }

            // Straight to the data source, not through the lesson: the transcript records every statement the lesson sends.
            await using (var setPassword = lesson.DataSource.CreateCommand($"ALTER ROLE {role} WITH LOGIN PASSWORD '{ScramVerifier(password)}'"))
            {
                await setPassword.ExecuteNonQueryAsync(cancellationToken);
            }

            await lesson.ExecuteAsync($"GRANT USAGE ON SCHEMA {lesson.Schema} TO {role}", cancellationToken);
            await lesson.ExecuteAsync($"GRANT SELECT ON ALL TABLES IN SCHEMA {lesson.Schema} TO {role}", cancellationToken);
            await lesson.ExecuteAsync($"ALTER DEFAULT PRIVILEGES IN SCHEMA {lesson.Schema} GRANT SELECT ON TABLES TO {role}", cancellationToken);
            // A table made after the grants: only the default privileges let the reader see it.
            await lesson.ExecuteAsync("DROP TABLE IF EXISTS release_notes", cancellationToken);
            await lesson.ExecuteAsync("CREATE TABLE release_notes AS SELECT id, title FROM vector_documents WHERE source = 'blog' ORDER BY id LIMIT 3", cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            lesson.Say($"This user may not create roles ({e.MessageText}); ask an administrator for a read-only role and skip to the next step.", Tone.Warning);
            await ParametersAsync(lesson, lesson.DataSource, cancellationToken);
            return;
        }

        try
        {
            var readerConnection = lesson.Settings.ConnectionString();
            readerConnection.Username = role;
            readerConnection.Password = password;
            readerConnection.ApplicationName = "lesson07-reader";
            await using (var reader = ModuleDataSource.Create(readerConnection, lesson.Schema))
            {
                lesson.Say($"A second data source, as {role}:", Tone.Aside);
                const string search = "SELECT title FROM vector_documents ORDER BY embedding <=> @q LIMIT 3";
                lesson.Sql(search, ["@q = [the question's vector]"]);
                await using (var command = reader.CreateCommand(search))
                {
                    command.Parameters.AddWithValue("q", question);
                    var titles = new List<string>();
                    await using var rows = await command.ExecuteReaderAsync(cancellationToken);
                    while (await rows.ReadAsync(cancellationToken))
                    {
                        titles.Add(rows.GetString(0));
                    }

                    lesson.Table(titles, ("title (searched as the read-only role)", t => t));
                }

                const string later = "SELECT count(*) FROM release_notes";
                lesson.Sql(later, ["release_notes was created after the GRANT: the default privileges gave the reader SELECT on it"]);
                await using (var command = reader.CreateCommand(later))
                {
                    lesson.Say($"release_notes, read as the reader: {await command.ExecuteScalarAsync(cancellationToken)} rows.");
                }

                const string insert = "INSERT INTO vector_documents (title, content, source) VALUES ('injected', 'by the reader', 'docs')";
                lesson.Sql(insert);
                try
                {
                    await using var command = reader.CreateCommand(insert);
                    await command.ExecuteNonQueryAsync(cancellationToken);
                    lesson.Say("The INSERT went through: the role can write.", Tone.Bad);
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
                {
                    lesson.Say($"Refused: {e.SqlState} {e.MessageText}", Tone.Good);
                }

                await ParametersAsync(lesson, reader, cancellationToken);
            }
        }
        finally
        {
            // The role is the lesson's: it goes when the lesson is done. DROP ROLE refuses while the role holds
            // privileges, so each grant is taken back first, by the owner who gave it. (DROP OWNED BY does all of it in
            // one statement, but only for a superuser or a member of the role, which the learner who created it is not.)
            // The clean-up is a detail.
            using (lesson.Detail())
            {
                await lesson.ExecuteAsync($"REVOKE ALL ON ALL TABLES IN SCHEMA {lesson.Schema} FROM {role}", CancellationToken.None);
                await lesson.ExecuteAsync($"ALTER DEFAULT PRIVILEGES IN SCHEMA {lesson.Schema} REVOKE ALL ON TABLES FROM {role}", CancellationToken.None);
                await lesson.ExecuteAsync($"REVOKE ALL ON SCHEMA {lesson.Schema} FROM {role}", CancellationToken.None);
                await lesson.ExecuteAsync($"DROP ROLE IF EXISTS {role}", CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// The password as PostgreSQL stores it under scram-sha-256 (RFC 5802, 7677): a random salt, PBKDF2 over SHA-256
    /// (4096 rounds), and two keys derived from the result. What psql's \password sends. The library's tested version,
    /// with its checks, is PgVectorModule.Data.ScramVerifier.
    /// </summary>
    private static string ScramVerifier(string password)
    {
        const int iterations = 4096;
        var salt = RandomNumberGenerator.GetBytes(16);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var storedKey = SHA256.HashData(HMACSHA256.HashData(salted, "Client Key"u8));
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }

    /// <summary>The read-only role of this run's schema in this database: lesson07_reader_agent_db, alice_lesson07_reader_agent_db.</summary>
    public static string ReaderRole(string schema, string database) => Learner.RoleName(schema, "reader", database);

    private static async Task ParametersAsync(Lesson lesson, NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        lesson.Step("parameters", "Parameters, not concatenation", $"A source filter typed by a user: {HostileSource}. Pasted into the SQL it becomes SQL; sent as a parameter it stays a value.");
        var concatenated = $"SELECT count(*) FROM vector_documents WHERE source = '{HostileSource}'";
        lesson.Sql(concatenated, ["string concatenation: the quote ends the literal, OR '1'='1' matches every row"]);
        await using var bad = source.CreateCommand(concatenated);
        var all = (long)(await bad.ExecuteScalarAsync(cancellationToken))!;
        const string parameterized = "SELECT count(*) FROM vector_documents WHERE source = @source";
        lesson.Sql(parameterized, [$"@source = '{HostileSource}'"]);
        await using var good = source.CreateCommand(parameterized);
        good.Parameters.AddWithValue("source", HostileSource);
        var none = (long)(await good.ExecuteScalarAsync(cancellationToken))!;
        lesson.Say($"Concatenated: {all} rows. Parameterized: {none} rows. EF Core's LINQ and FromSql($\"...{{value}}\") always send parameters; FromSqlRaw with string concatenation does not.");
    }
}
