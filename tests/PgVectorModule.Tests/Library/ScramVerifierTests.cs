using System.Security.Cryptography;
using System.Text;
using PgVectorModule.Data;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>The SCRAM-SHA-256 verifier computed on the client: RFC 7677's example, the server's own, and a real login.</summary>
public class ScramVerifierTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_verifier_answers_RFC_7677s_example_exchange()
    {
        // RFC 7677, section 3: user "user", password "pencil", this salt, 4096 iterations, and the messages exchanged.
        var verifier = ScramVerifier.Create("pencil", Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
        var (storedKey, serverKey) = Keys(verifier);
        var authMessage = Encoding.UTF8.GetBytes(
            "n=user,r=rOprNGfwEbeRWgbNEkqO," +
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");

        // The server proves itself with HMAC(ServerKey, AuthMessage): the example's v=.
        Assert.Equal("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", Convert.ToBase64String(HMACSHA256.HashData(serverKey, authMessage)));
        // The client's proof p= is ClientKey XOR HMAC(StoredKey, AuthMessage); the server checks SHA-256(ClientKey) == StoredKey.
        var proof = Convert.FromBase64String("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        var signature = HMACSHA256.HashData(storedKey, authMessage);
        var clientKey = proof.Zip(signature, (a, b) => (byte)(a ^ b)).ToArray();
        Assert.Equal(storedKey, SHA256.HashData(clientKey));
        Assert.StartsWith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$", verifier, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_verifier_equals_the_one_PostgreSQL_computes_from_the_same_salt()
    {
        // A throwaway constant password: this test alone sends one in clear, to read back what the server made of it.
        var role = "scram_test_" + Guid.NewGuid().ToString("N")[..12];
        await database.ExecuteAsync($"SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD 'not-a-secret'");
        try
        {
            var stored = await database.ScalarAsync<string>($"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'");
            var parts = stored!.Split('$', ':');
            var (iterations, salt) = (int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), Convert.FromBase64String(parts[2]));

            Assert.Equal(stored, ScramVerifier.Create("not-a-secret", salt, iterations));
        }
        finally
        {
            await database.ExecuteAsync($"DROP ROLE {role}");
        }
    }

    [Fact]
    public async Task A_role_given_the_verifier_logs_in_with_the_password_and_not_with_another()
    {
        var role = "scram_test_" + Guid.NewGuid().ToString("N")[..12];
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        await database.ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD '{ScramVerifier.Create(password)}'");
        try
        {
            Assert.Equal(role, await LoginAsync(role, password));
            var refused = await Assert.ThrowsAsync<PostgresException>(() => LoginAsync(role, password + "x"));
            Assert.Equal(PostgresErrorCodes.InvalidPassword, refused.SqlState);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await database.ExecuteAsync($"DROP ROLE {role}");
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("pässword")]
    [InlineData("tab\there")]
    public void A_password_SASLprep_would_change_is_refused(string password) =>
        Assert.Throws<ArgumentException>(() => ScramVerifier.Create(password));

    private async Task<string?> LoginAsync(string role, string password)
    {
        var cs = database.ConnectionString;
        cs.Username = role;
        cs.Password = password;
        cs.Pooling = false;
        await using var connection = new NpgsqlConnection(cs.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("SELECT current_user", connection);
        return (string?)await command.ExecuteScalarAsync(Ct);
    }

    private static (byte[] StoredKey, byte[] ServerKey) Keys(string verifier)
    {
        // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
        var keys = verifier.Split('$')[2].Split(':');
        return (Convert.FromBase64String(keys[0]), Convert.FromBase64String(keys[1]));
    }
}
