namespace PgVectorModule.Search;

/// <summary>
/// Okapi BM25's two knobs. For each query term a document holds, BM25 adds
/// <c>idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average length))</c>:
/// <list type="bullet">
/// <item><see cref="K1"/> saturates term frequency: the second occurrence of a word counts less than the first, and
/// with k1 = 1.2 a term's weight can at most reach 2.2 times one occurrence's, however often it repeats.</item>
/// <item><see cref="B"/> normalizes length: 0 ignores it, 1 divides fully by the document's length relative to the
/// average, so a long document does not win merely by holding more words.</item>
/// </list>
/// The defaults are the textbook values (Lucene's and Elasticsearch's k1, Robertson's b), left untuned: the sweep over
/// k1 and b on SciFact's train judgments (<c>bench eval --sweep</c>, figures in docs/benchmarks.md) found no setting worth the change.
/// </summary>
public sealed record Bm25Parameters(double K1 = Bm25Parameters.DefaultK1, double B = Bm25Parameters.DefaultB)
{
    public const double DefaultK1 = 1.2;
    public const double DefaultB = 0.75;

    public static Bm25Parameters Default { get; } = new();
}
