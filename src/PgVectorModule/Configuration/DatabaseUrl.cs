using System.Globalization;
using PgVectorModule.Problems;

namespace PgVectorModule.Configuration;

/// <summary>
/// Turns DATABASE_URL into an Npgsql connection string. Two forms are accepted:
/// the URI form libpq, psycopg and SQLAlchemy use (<c>postgresql://user:pass@host:5432/db?sslmode=require</c>)
/// and Npgsql's own keyword form (<c>Host=localhost;Username=postgres;Database=agent_db</c>).
/// </summary>
public static class DatabaseUrl
{
    public static NpgsqlConnectionStringBuilder Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var text = value.Trim();
        if (text.Length == 0)
        {
            throw Invalid(value, "it is empty");
        }

        return text.Contains("://", StringComparison.Ordinal) ? ParseUri(text) : ParseKeywords(text);
    }

    private static NpgsqlConnectionStringBuilder ParseUri(string text)
    {
        var schemeEnd = text.IndexOf("://", StringComparison.Ordinal);
        var scheme = text[..schemeEnd];
        // SQLAlchemy writes the driver into the scheme (postgresql+psycopg2://); the driver means nothing here.
        var baseScheme = scheme.Split('+')[0].ToLowerInvariant();
        if (baseScheme is not ("postgresql" or "postgres"))
        {
            throw Invalid(text, $"the scheme is '{scheme}', expected postgresql://");
        }

        if (!Uri.TryCreate("postgresql" + text[schemeEnd..], UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw Invalid(text, "it is not a valid URI (postgresql://user:password@host:5432/database)");
        }

        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host,
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
        };

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0)
        {
            builder.Database = database;
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            var val = kv.Length == 2 ? Uri.UnescapeDataString(kv[1].Replace('+', ' ')) : "";
            ApplyQueryParameter(builder, text, key, val);
        }

        return builder;
    }

    // The libpq parameters a course reader is likely to meet in a URL, mapped to Npgsql's names.
    private static void ApplyQueryParameter(NpgsqlConnectionStringBuilder builder, string text, string key, string value)
    {
        switch (key.ToLowerInvariant())
        {
            case "sslmode":
                builder.SslMode = value.ToLowerInvariant() switch
                {
                    "disable" => SslMode.Disable,
                    "allow" => SslMode.Allow,
                    "prefer" => SslMode.Prefer,
                    "require" => SslMode.Require,
                    "verify-ca" => SslMode.VerifyCA,
                    "verify-full" => SslMode.VerifyFull,
                    _ => throw Invalid(text, $"sslmode '{value}' is not one of disable, allow, prefer, require, verify-ca, verify-full"),
                };
                break;
            case "sslrootcert":
                builder.RootCertificate = value;
                break;
            case "application_name":
                builder.ApplicationName = value;
                break;
            case "connect_timeout":
                builder.Timeout = ParseInt(text, key, value);
                break;
            case "options":
                builder.Options = value;
                break;
            case "target_session_attrs":
                builder.TargetSessionAttributes = value;
                break;
            case "user":
                builder.Username = value;
                break;
            case "password":
                builder.Password = value;
                break;
            case "passfile":
                builder.Passfile = value;
                break;
            default:
                throw Invalid(text, $"the parameter '{key}' is not supported (use sslmode, sslrootcert, application_name, connect_timeout, options, target_session_attrs, user, password, passfile)");
        }
    }

    private static int ParseInt(string text, string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw Invalid(text, $"'{key}' must be a whole number, not '{value}'");

    private static NpgsqlConnectionStringBuilder ParseKeywords(string text)
    {
        if (!text.Contains('=', StringComparison.Ordinal))
        {
            throw Invalid(text, "it is neither a postgresql:// URI nor a Host=...;Database=... connection string");
        }

        try
        {
            var builder = new NpgsqlConnectionStringBuilder(text);
            if (string.IsNullOrEmpty(builder.Host))
            {
                throw Invalid(text, "it names no Host");
            }

            return builder;
        }
        catch (ArgumentException e)
        {
            throw Invalid(text, e.Message);
        }
    }

    /// <summary>
    /// The URL or connection string with every password hidden, for messages: the URI's user information and its
    /// password and sslpassword parameters, and the keyword form's Password, its aliases PWD and PSW, and SSL Password,
    /// quoted values included. Text that cannot be parsed is redacted all the same: a message never shows a secret.
    /// </summary>
    public static string Redact(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Contains("://", StringComparison.Ordinal) ? RedactUri(value) : RedactKeywords(value);
    }

    private const string Hidden = "****";

    /// <summary>Password, PWD, PSW, SSL Password, sslpassword: Npgsql's keywords and their aliases, libpq's parameters.</summary>
    private static bool IsSecret(string key)
    {
        var name = key.Replace(" ", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).Trim().ToLowerInvariant();
        return name is "pwd" or "psw" || name.EndsWith("password", StringComparison.Ordinal);
    }

    private static string RedactUri(string value)
    {
        var start = value.IndexOf("://", StringComparison.Ordinal) + 3;
        // The last '@' ends the user information (a password may hold an unescaped '@'); if it stands in the query
        // instead, more than the password is hidden, never less.
        var at = value.LastIndexOf('@');
        var colon = at > start ? value.IndexOf(':', start, at - start) : -1;
        var text = colon > 0 ? value[..(colon + 1)] + Hidden + value[at..] : value;

        var query = text.IndexOf('?', colon > 0 ? colon + 1 + Hidden.Length : start);
        if (query < 0)
        {
            return text;
        }

        var parameters = text[(query + 1)..].Split('&').Select(pair =>
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            return equals > 0 && IsSecret(Uri.UnescapeDataString(pair[..equals])) ? pair[..(equals + 1)] + Hidden : pair;
        });
        return text[..(query + 1)] + string.Join('&', parameters);
    }

    /// <summary>Keyword=value pairs split as a connection string is: on ';' outside a quoted value ('...' or "...", a doubled quote inside).</summary>
    private static string RedactKeywords(string value)
    {
        var result = new System.Text.StringBuilder(value.Length);
        var i = 0;
        while (i < value.Length)
        {
            var equals = value.IndexOf('=', i);
            var semicolon = value.IndexOf(';', i);
            if (equals < 0 || (semicolon >= 0 && semicolon < equals))
            {
                // A part without a value: kept as it is, up to and including its ';'.
                var end = semicolon < 0 ? value.Length : semicolon + 1;
                result.Append(value, i, end - i);
                i = end;
                continue;
            }

            var valueEnd = ValueEnd(value, equals + 1);
            result.Append(value, i, equals + 1 - i);
            if (IsSecret(value[i..equals]))
            {
                result.Append(Hidden);
            }
            else
            {
                result.Append(value, equals + 1, valueEnd - equals - 1);
            }

            i = valueEnd;
            if (i < value.Length)
            {
                result.Append(';');
                i++;
            }
        }

        return result.ToString();
    }

    /// <summary>Where the value starting at <paramref name="start"/> ends: the ';' after it, or the end of the text.</summary>
    private static int ValueEnd(string text, int start)
    {
        var i = start;
        while (i < text.Length && text[i] == ' ')
        {
            i++;
        }

        if (i < text.Length && text[i] is '"' or '\'')
        {
            var quote = text[i];
            for (i++; i < text.Length; i++)
            {
                if (text[i] == quote)
                {
                    if (i + 1 < text.Length && text[i + 1] == quote)
                    {
                        i++;
                        continue;
                    }

                    break;
                }
            }
        }

        var semicolon = i < text.Length ? text.IndexOf(';', i) : -1;
        return semicolon < 0 ? text.Length : semicolon;
    }

    private static SetupException Invalid(string text, string reason) =>
        new($"DATABASE_URL '{Redact(text)}' cannot be used: {reason}. " +
            "Set it to postgresql://user:password@host:5432/database (or Host=...;Username=...;Password=...;Database=...) in the environment or in .env.",
            ExitCodes.DatabaseUnavailable);
}
