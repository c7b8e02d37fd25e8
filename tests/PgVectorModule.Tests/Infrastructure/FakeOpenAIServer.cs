using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PgVectorModule.Tests.Infrastructure;

/// <summary>One POST /v1/embeddings the fake server received.</summary>
public sealed record RecordedRequest(
    string? Authorization,
    string? Model,
    int? Dimensions,
    string? EncodingFormat,
    IReadOnlyList<string>? Inputs,
    bool InputWasArrayOfStrings,
    int StatusReturned);

/// <summary>
/// Loopback stand-in for POST /v1/embeddings on 127.0.0.1 at a free port. Checks the bearer key (401 otherwise),
/// records each request's JSON shape, answers deterministic unit vectors (base64 float32 when the client asks,
/// as the OpenAI SDK always does), and can answer 429 a given number of times first.
/// </summary>
public sealed class FakeOpenAIServer(string validApiKey) : LoopbackHttpServer
{
    public string ValidApiKey { get; } = validApiKey;
    /// <summary>What to pass as OpenAIClientOptions.Endpoint.</summary>
    public Uri Endpoint => new($"http://127.0.0.1:{Port}/v1");
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();
    /// <summary>Header values sent with each 429 (e.g. "Retry-After" = "0", "retry-after-ms" = "1").</summary>
    public Dictionary<string, string> RateLimitHeaders { get; } = new() { ["Retry-After"] = "0", ["retry-after-ms"] = "1" };

    /// <summary>When set, vectors of this length come back whatever was asked (a misbehaving server).</summary>
    public int? OverrideDimensions { get; set; }

    /// <summary>The vector this server returns for <paramref name="text"/>: seeded by SHA-256 of the text, unit length.</summary>
    public static float[] VectorFor(string text, int dimensions)
    {
        byte[] seed = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        var rng = new Random(BitConverter.ToInt32(seed, 0));
        var v = new float[dimensions];
        double sq = 0;
        for (int i = 0; i < dimensions; i++) { v[i] = (float)(rng.NextDouble() * 2 - 1); sq += v[i] * v[i]; }
        float inv = (float)(1 / Math.Sqrt(sq));
        for (int i = 0; i < dimensions; i++)
        {
            v[i] *= inv;
        }

        return v;
    }

    protected override async Task HandleAsync(HttpListenerContext context, HttpListenerResponse res)
    {
        HttpListenerRequest req = context.Request;
        if (req.HttpMethod != "POST" || req.Url?.AbsolutePath != "/v1/embeddings")
        {
            await WriteJsonAsync(res, 404, Error("Not found", "invalid_request_error", null));
            return;
        }
        string auth = req.Headers["Authorization"] ?? "";
        string body = await ReadBodyAsync(req);

        JsonNode? json = JsonNode.Parse(body);
        string? model = json?["model"]?.GetValue<string>();
        int? dims = json?["dimensions"]?.GetValue<int>();
        string? format = json?["encoding_format"]?.GetValue<string>();
        JsonNode? input = json?["input"];
        bool isStringArray = input is JsonArray arr && arr.All(n => n?.GetValueKind() == JsonValueKind.String);
        List<string>? inputs = isStringArray ? ((JsonArray)input!).Select(n => n!.GetValue<string>()).ToList() : null;

        int status;
        JsonNode reply;
        if (auth != "Bearer " + ValidApiKey)
        {
            status = 401;
            reply = Error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key");
        }
        else if (TakeRateLimit())
        {
            status = 429;
            foreach (var (k, v) in RateLimitHeaders)
            {
                res.AddHeader(k, v);
            }

            reply = Error("Rate limit reached.", "requests", "rate_limit_exceeded");
        }
        else if (model is null || inputs is null || inputs.Count == 0 || inputs.Any(string.IsNullOrEmpty))
        {
            status = 400;
            reply = Error("'input' must be a non-empty array of non-empty strings.", "invalid_request_error", null);
        }
        else
        {
            status = 200;
            int d = OverrideDimensions ?? dims ?? 1536;
            var data = new JsonArray();
            int tokens = 0;
            for (int i = 0; i < inputs.Count; i++)
            {
                float[] v = VectorFor(inputs[i], d);
                JsonNode emb = format == "base64"
                    ? JsonValue.Create(Convert.ToBase64String(MemoryMarshalBytes(v)))
                    : new JsonArray(v.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
                data.Add(new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = emb });
                tokens += inputs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            }
            var payload = new JsonObject
            {
                ["object"] = "list",
                ["data"] = data,
                ["model"] = model,
                ["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens },
            };
            reply = payload;
        }
        // Recorded before answering, so a client that has its answer always finds its request here.
        Requests.Enqueue(new RecordedRequest(auth, model, dims, format, inputs, isStringArray, status));
        await WriteJsonAsync(res, status, reply);
    }

    private static byte[] MemoryMarshalBytes(float[] v)
    {
        var bytes = new byte[v.Length * sizeof(float)];
        Buffer.BlockCopy(v, 0, bytes, 0, bytes.Length);       // little-endian float32, as the API sends
        return bytes;
    }

    private static JsonNode Error(string message, string type, string? code) => JsonNode.Parse(OpenAIError(message, type, code))!;

    private static Task WriteJsonAsync(HttpListenerResponse res, int status, JsonNode payload) =>
        LoopbackHttpServer.WriteJsonAsync(res, status, payload.ToJsonString());
}
