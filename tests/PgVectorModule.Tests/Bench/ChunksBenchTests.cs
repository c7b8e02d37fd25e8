using System.Text.Json;
using PgVectorModule.Bench;
using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Bench.Infrastructure;
using PgVectorModule.Chunking;
using PgVectorModule.Embeddings;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;
using Spectre.Console.Testing;

namespace PgVectorModule.Tests.Bench;

/// <summary>The chunks command end to end, on a tiny BEIR folder the test writes, against a database of its own.</summary>
public sealed class ChunksBenchTests(TestDatabase database) : IClassFixture<TestDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("bench-chunks-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Dataset => Path.Combine(_folder, "dataset");

    private static readonly (string Id, string Title, string Text)[] Corpus =
    [
        ("10", "HNSW graphs", "Hierarchical navigable small world graphs find approximate nearest neighbours quickly. Each layer is sparser than the one below it. A search starts at the top and walks down."),
        ("11", "GIN indexes", "A GIN index over a tsvector makes PostgreSQL full-text search fast. It maps each lexeme to the rows that hold it."),
        ("12", "Bulk loading", "Binary COPY writes many rows far faster than one INSERT per row. It streams rows in PostgreSQL's own format."),
        ("13", "Baking bread", "Flour, water, salt and yeast, kneaded and left to rise overnight. Bake it hot, with steam."),
        ("14", "Ocean tides", "The moon's gravity pulls the oceans into two bulges that follow it around the earth. The sun adds a smaller pull."),
    ];

    [Fact]
    public async Task Chunks_scores_each_chunking_both_halves_and_the_second_stage_and_writes_json()
    {
        Directory.CreateDirectory(Path.Combine(Dataset, "qrels"));
        File.WriteAllLines(Path.Combine(Dataset, "corpus.jsonl"), Corpus.Select(d => JsonSerializer.Serialize(new Dictionary<string, string> { ["_id"] = d.Id, ["title"] = d.Title, ["text"] = d.Text })));
        File.WriteAllLines(Path.Combine(Dataset, "queries.jsonl"),
        [
            """{"_id": "1", "text": "approximate nearest neighbour graph index"}""",
            """{"_id": "2", "text": "how to load many rows quickly"}""",
            """{"_id": "3", "text": "why does the sea rise and fall"}""",
            """{"_id": "4", "text": "a query without judgments is skipped"}""",
        ]);
        File.WriteAllText(Path.Combine(Dataset, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\n1\t10\t1\n2\t12\t1\n3\t14\t1\n");
        var output = Path.Combine(_folder, "out");
        var console = new TestConsole().Width(200);

        var exit = await BenchApp.RunAsync(["chunks", "--dataset", Dataset, "--output", output, "--cache", Path.Combine(_folder, "cache"), "--chunkings", "2", "--index-sizes"],
            new BenchHostOptions { Console = console, Settings = database.Settings }, TestContext.Current.CancellationToken);

        Assert.True(exit == ExitCodes.Success, console.Output);
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "chunks.json"), TestContext.Current.CancellationToken));
        var root = json.RootElement;
        // Even ids choose the settings, odd ids are held out.
        Assert.Equal((1, 2), (root.GetProperty("tuneQueries").GetInt32(), root.GetProperty("heldOutQueries").GetInt32()));

        // Each chunking's rows are the chunks TextChunker cuts, counted with the model's own word pieces; each has its HNSW index measured.
        using var embedder = TextEmbedder.Create(new EmbeddingSettings());
        var tokenizer = ((LocalEmbeddingGenerator)embedder.Generator).Tokenizer;
        var costs = root.GetProperty("costs").EnumerateArray().ToList();
        Assert.Equal(1 + 2, costs.Count);
        foreach (var (settings, cost) in ChunksCommand.Chunkings.Take(2).Zip(costs.Skip(1)))
        {
            var chunks = Corpus.SelectMany(d => TextChunker.Cut(d.Text, t => tokenizer.Encode(t).Length, settings)).ToList();
            Assert.Equal(settings.ToString(), cost.GetProperty("chunking").GetString());
            Assert.Equal(chunks.Count, cost.GetProperty("rows").GetInt32());
            Assert.Equal(chunks.Sum(c => c.Tokens), cost.GetProperty("wordPieces").GetInt64());
            Assert.True(cost.GetProperty("indexBytes").GetInt64() > 0);
        }

        // Every row is scored on both halves; the documents, each chunking two ways, BM25, eight fusions, four second stages and two more, the citations.
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(1 + 2 * 2 + 1 + 8 + 4 + 2 + 1, rows.Count);
        Assert.All(rows, r => Assert.All(new[] { "tuneNdcg", "tuneRecall", "heldOutNdcg", "heldOutRecall" }, p => Assert.InRange(r.GetProperty(p).GetDouble(), 0, 1)));
        Assert.StartsWith("citations", rows[^1].GetProperty("method").GetString(), StringComparison.Ordinal);
        Assert.Equal(["first stage, vector", "first stage, hybrid", "second stage"], root.GetProperty("chosen").EnumerateObject().Select(p => p.Name));
        // On these five documents every method with a vector leg finds each query's one relevant document within its 100
        // results; BM25 alone finds none for a question that shares no word with it ("why does the sea rise and fall").
        Assert.All(rows.Take(rows.Count - 1).Where(r => r.GetProperty("method").GetString() != "keyword (BM25)"),
            r => Assert.Equal(1, r.GetProperty("heldOutRecall").GetDouble()));
        Assert.Equal(0.5, rows.Single(r => r.GetProperty("method").GetString() == "keyword (BM25)").GetProperty("heldOutRecall").GetDouble());
    }

    [Theory]
    [InlineData("10", 0)]
    [InlineData("7", 1)]
    [InlineData("q-x", 0)]
    public void Queries_split_by_the_parity_of_their_id(string id, int half) => Assert.Equal(half, ChunksCommand.Half(id));
}
