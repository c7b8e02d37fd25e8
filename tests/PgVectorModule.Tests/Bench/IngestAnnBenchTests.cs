using System.Text.Json;
using PgVectorModule.Bench;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>ingest and ann on small sizes: they run end to end and write what the docs quote.</summary>
public sealed class IngestAnnBenchTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("bench-out-").FullName;

    public void Dispose() => Directory.Delete(_output, recursive: true);

    private async Task<(int Exit, string Output)> RunRawAsync(params string[] args)
    {
        var console = new TestConsole().Width(200);
        var exit = await BenchApp.RunAsync([.. args, "--output", _output], new BenchHostOptions { Console = console, Settings = database.Settings },
            TestContext.Current.CancellationToken);
        return (exit, console.Output);
    }

    private async Task<JsonElement> RunAsync(string name, params string[] args)
    {
        var (exit, output) = await RunRawAsync(args);
        Assert.True(exit == ExitCodes.Success, output);
        Assert.True(File.Exists(Path.Combine(_output, name + ".csv")));
        return JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_output, name + ".json"), TestContext.Current.CancellationToken)).RootElement;
    }

    [Fact]
    public async Task Ingest_writes_the_rows_four_ways_and_builds_both_indexes()
    {
        var report = await RunAsync("ingest", "ingest", "--rows", "300", "--per-row-sample", "30", "--batch", "100");
        var methods = report.GetProperty("methods").EnumerateArray().ToList();
        Assert.Equal(["SaveChanges per row", "AddRange + SaveChanges per batch", "multi-row INSERT", "binary COPY"],
            methods.Select(m => m.GetProperty("method").GetString()));
        Assert.Equal(30, methods[0].GetProperty("rows").GetInt32());
        Assert.All(methods, m => Assert.True(m.GetProperty("rowsPerSecond").GetDouble() > 0));
        Assert.Equal(1.0, methods[3].GetProperty("copySpeedup").GetDouble(), 1e-9);
        Assert.Equal(2, report.GetProperty("indexes").GetArrayLength());
        Assert.All(report.GetProperty("indexes").EnumerateArray(), i => Assert.True(i.GetProperty("indexBytes").GetInt64() > 0));
    }

    [Fact]
    public async Task Ann_sweeps_both_indexes_against_the_exact_answer_and_draws_the_chart()
    {
        var report = await RunAsync("ann", "ann", "--rows", "2000", "--queries", "10");
        var results = report.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(12, results.Count);
        Assert.All(results, r => Assert.InRange(r.GetProperty("recallAt10").GetDouble(), 0, 1));
        // The second, EXPLAIN ANALYZE pass times every setting inside the server too.
        Assert.All(results, r => Assert.True(r.GetProperty("serverP50Ms").GetDouble() > 0 && r.GetProperty("hotP50Ms").GetDouble() > 0));
        // The compiled, prepared path sends the same SQL, so it finds the same rows.
        Assert.All(results, r => Assert.Equal(r.GetProperty("recallAt10").GetDouble(), r.GetProperty("hotRecallAt10").GetDouble(), 1e-9));
        Assert.True(report.GetProperty("exact").GetProperty("serverP50Ms").GetDouble() > 0);
        Assert.Equal(16, report.GetProperty("hnswM").GetInt32());
        Assert.Contains("clusters", report.GetProperty("vectors").GetString(), StringComparison.Ordinal);
        // ef_search 320 over 2,000 vectors, and 32 probes over 2 lists, both see (nearly) everything.
        Assert.True(results[5].GetProperty("recallAt10").GetDouble() >= 0.9);
        Assert.Equal(1.0, results[11].GetProperty("recallAt10").GetDouble(), 1e-9);
        var svg = await File.ReadAllTextAsync(Path.Combine(_output, "ann.svg"), TestContext.Current.CancellationToken);
        Assert.StartsWith("<svg", svg, StringComparison.Ordinal);
        // HNSW as LINQ, compiled + prepared and inside the server; IVFFlat as LINQ.
        Assert.Equal(4, svg.Split("<polyline", StringSplitOptions.None).Length - 1);
        Assert.Contains("HNSW, inside the server", svg, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ann_runs_on_embeddings_from_a_file_with_the_queries_held_out_and_the_index_shape_given()
    {
        // A file shaped like eval's cache: a 32-byte text hash, then 384 floats, per record.
        var random = new Random(7);
        var path = Path.Combine(_output, "vectors-384.bin");
        await using (var file = File.Create(path))
        {
            for (var i = 0; i < 400; i++)
            {
                file.Write(new byte[32]);
                var v = Enumerable.Range(0, 384).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
                file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()));
            }
        }

        var report = await RunAsync("ann", "ann", "--vectors", path, "--queries", "10", "--m", "8", "--ef-construction", "32");
        Assert.Equal(390, report.GetProperty("rows").GetInt32());
        Assert.Equal(10, report.GetProperty("queries").GetInt32());
        Assert.Equal(8, report.GetProperty("hnswM").GetInt32());
        Assert.Equal("HNSW (m 8, ef_construction 32)", report.GetProperty("hnsw").GetProperty("index").GetString());
        Assert.StartsWith("embeddings from vectors-384.bin", report.GetProperty("vectors").GetString(), StringComparison.Ordinal);
        // ef_search 320 over 390 rows visits them all: the HNSW answer is the exact one.
        Assert.Equal(1.0, report.GetProperty("results")[5].GetProperty("recallAt10").GetDouble(), 1e-9);
    }

    [Fact]
    public async Task Ann_refuses_a_file_that_is_not_whole_vectors_in_one_sentence()
    {
        var path = Path.Combine(_output, "broken.bin");
        await File.WriteAllBytesAsync(path, new byte[1000], TestContext.Current.CancellationToken);
        var (exit, output) = await RunRawAsync("ann", "--vectors", path);
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("not an embedding cache of 384-dimension vectors", output.Replace("\n", " ", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ann_embeds_texts_from_a_file_once_and_reads_them_from_the_cache_the_second_time()
    {
        var topics = new[] { "vector indexes", "connection pools", "bulk loading", "full-text search", "query plans", "replication" };
        var verbs = new[] { "speed up", "slow down", "explain", "change", "measure" };
        var texts = Path.Combine(_output, "texts.txt");
        await File.WriteAllLinesAsync(texts,
            from t in topics from v in verbs from n in Enumerable.Range(1, 10) select $"How {t} {v} workload number {n} in PostgreSQL.",
            TestContext.Current.CancellationToken);
        var cache = Path.Combine(_output, "cache");

        var report = await RunAsync("ann", "ann", "--texts", texts, "--queries", "10", "--cache", cache);
        Assert.Equal(290, report.GetProperty("rows").GetInt32());
        Assert.StartsWith("embeddings of texts.txt, 10 held out as queries", report.GetProperty("vectors").GetString(), StringComparison.Ordinal);
        // The library's embedding cache, in the part ann and scale share: one folder for the model, its vectors in segments.
        var folder = Assert.Single(Directory.GetDirectories(Path.Combine(cache, "ann")));
        Assert.StartsWith("local-all-MiniLM-L6-v2-384-", Path.GetFileName(folder), StringComparison.Ordinal);
        Assert.Equal(300, EmbeddingCache.ReadVectors(folder, 384)!.Count);

        var (exit, output) = await RunRawAsync("ann", "--texts", texts, "--queries", "10", "--cache", cache);
        Assert.Equal(ExitCodes.Success, exit);
        Assert.Contains("300 texts: 0 embedded now", output, StringComparison.Ordinal);
        Assert.Contains("300 from the cache", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ann_takes_one_source_of_vectors()
    {
        var (exit, output) = await RunRawAsync("ann", "--sdk-docs", "--vectors", "x.bin");
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("ann takes one source of vectors", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Sdk_documentation_passages_are_distinct_sentences_with_references_read_as_names()
    {
        var xml = Path.Combine(_output, "Sample.xml");
        File.WriteAllText(xml, """
            <?xml version="1.0" encoding="utf-8"?>
            <doc><members>
              <member name="M:Sample.Parse(System.String)">
                <summary>Converts the <see cref="T:System.String" /> representation of a number to its equivalent.</summary>
                <param name="s">A string containing a number to convert.</param>
                <returns>The number.</returns>
              </member>
              <member name="M:Sample.TryParse(System.String)">
                <param name="s">A string containing a number to convert.</param>
                <exception cref="T:System.FormatException"><paramref name="s" /> is not in the correct format.</exception>
              </member>
            </members></doc>
            """);
        File.WriteAllText(Path.Combine(_output, "NotDocs.xml"), "<unclosed>");

        var texts = PgVectorModule.Bench.Infrastructure.SdkDocTexts.Read([xml, Path.Combine(_output, "NotDocs.xml")]);

        Assert.Equal(
            ["Converts the String representation of a number to its equivalent.", "A string containing a number to convert.", "s is not in the correct format."],
            texts);
    }
}
