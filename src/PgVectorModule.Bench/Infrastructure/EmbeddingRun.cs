namespace PgVectorModule.Bench.Infrastructure;

/// <param name="Texts">Texts asked for.</param>
/// <param name="Embedded">Texts computed in this run (the rest came from the cache).</param>
/// <param name="TokensPerSecond">Word pieces the model read per second (with [CLS] and [SEP]; chunk overlaps counted, truncated tails not).</param>
/// <param name="MaxTokens">Word pieces per sequence; longer texts are embedded as chunks (LongText).</param>
public sealed record EmbeddingRun(int Texts, int Embedded, int FromCache, double Seconds, double DocumentsPerSecond, double TokensPerSecond,
    int BatchSize, int MaxTokens, string LongText, int IntraOpThreads);
