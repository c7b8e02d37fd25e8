using System.Security.Cryptography;
using System.Text;

namespace PgVectorModule.Data;

/// <summary>
/// A role's password as PostgreSQL stores it under scram-sha-256 (RFC 5802, RFC 7677), computed on the client:
/// <c>SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey</c>. <c>ALTER ROLE r PASSWORD 'SCRAM-SHA-256$...'</c> stores it as
/// it is, so the password itself never reaches the server, its log or pg_stat_statements, which keep statements
/// verbatim; what they keep instead lets a client prove it knows the password, not learn it. psql's \password and
/// libpq's PQencryptPasswordConn do the same.
/// </summary>
public static class ScramVerifier
{
    /// <summary>PostgreSQL's default (scram_iterations, 4096 before PostgreSQL 16 made it a setting).</summary>
    public const int DefaultIterations = 4096;

    /// <summary>The salt length PostgreSQL uses, in bytes.</summary>
    public const int SaltLength = 16;

    /// <summary>The verifier of <paramref name="password"/> with a new random salt.</summary>
    public static string Create(string password) => Create(password, RandomNumberGenerator.GetBytes(SaltLength), DefaultIterations);

    /// <summary>
    /// The verifier of <paramref name="password"/> with this salt and iteration count. The password must be printable
    /// ASCII, which SASLprep (the normalization the server applies first) leaves as it is; a generated password is.
    /// </summary>
    public static string Create(string password, byte[] salt, int iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(salt);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        if (password.Length == 0 || password.Any(c => c is < ' ' or > '~'))
        {
            throw new ArgumentException("The password must be printable ASCII: SASLprep would change other text, and the verifier would not match.", nameof(password));
        }

        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, SHA256.HashSizeInBytes);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }
}
