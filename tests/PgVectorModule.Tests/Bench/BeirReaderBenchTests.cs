using PgVectorModule.Bench.Evaluation;
using PgVectorModule.Problems;

namespace PgVectorModule.Tests.Bench;

/// <summary>The BEIR reader: a well-formed folder, and malformed lines named by file and line.</summary>
public sealed class BeirReaderBenchTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("beir-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private void Write(string corpus, string queries, string qrels)
    {
        File.WriteAllText(Path.Combine(_folder, "corpus.jsonl"), corpus);
        File.WriteAllText(Path.Combine(_folder, "queries.jsonl"), queries);
        Directory.CreateDirectory(Path.Combine(_folder, "qrels"));
        File.WriteAllText(Path.Combine(_folder, "qrels", "test.tsv"), qrels);
    }

    private const string GoodCorpus = """
        {"_id": "d1", "title": "First", "text": "Alpha text."}

        {"_id": "d2", "title": null, "text": "Beta text.", "metadata": {}}
        """;

    private const string GoodQueries = """{"_id": "q1", "text": "alpha?"}""" + "\n" + """{"_id": 7, "text": "beta?"}""" + "\n";

    [Fact]
    public void Reads_corpus_queries_and_graded_judgments()
    {
        Write(GoodCorpus, GoodQueries, "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n7\td2\t1\n");
        var dataset = BeirDataset.Read(_folder);

        Assert.Equal(["d1", "d2"], dataset.Corpus.Select(d => d.Id));
        Assert.Equal("", dataset.Corpus[1].Title);
        Assert.Equal(["q1", "7"], dataset.Queries.Select(q => q.Id));
        Assert.Equal(2, dataset.Judgments["q1"]["d1"]);
        Assert.Equal(0, dataset.Judgments["q1"]["d2"]);
        Assert.Equal(1, dataset.Judgments["7"]["d2"]);
        Assert.EndsWith("test.tsv", dataset.QrelsFile, StringComparison.Ordinal);
    }

    [Fact]
    public void A_line_that_is_not_json_names_the_file_and_line()
    {
        Write(GoodCorpus + "\n{\"_id\": \"d3\", \"text\": \"unterminated\n", GoodQueries, "query-id\tcorpus-id\tscore\n");
        var e = Assert.Throws<SetupException>(() => BeirDataset.Read(_folder));
        Assert.Contains("corpus.jsonl line 4", e.Message, StringComparison.Ordinal);
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.InvalidInput, e.ExitCode);
    }

    [Fact]
    public void A_document_without_text_names_the_file_line_and_field()
    {
        Write(GoodCorpus, """{"_id": "q1"}""" + "\n", "query-id\tcorpus-id\tscore\n");
        var e = Assert.Throws<SetupException>(() => BeirDataset.Read(_folder));
        Assert.Contains("queries.jsonl line 1 has no string \"text\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_repeated_id_is_refused()
    {
        Write(GoodCorpus + "\n{\"_id\": \"d1\", \"text\": \"again\"}\n", GoodQueries, "query-id\tcorpus-id\tscore\n");
        var e = Assert.Throws<SetupException>(() => BeirDataset.Read(_folder));
        Assert.Contains("corpus.jsonl line 4 repeats _id 'd1'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_judgment_line_with_missing_fields_or_a_bad_score_names_the_file_and_line()
    {
        Write(GoodCorpus, GoodQueries, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1 d2 1\n");
        var e = Assert.Throws<SetupException>(() => BeirDataset.Read(_folder));
        Assert.Contains("test.tsv line 3 has 1 tab-separated field", e.Message, StringComparison.Ordinal);

        Write(GoodCorpus, GoodQueries, "query-id\tcorpus-id\tscore\nq1\td1\thigh\n");
        e = Assert.Throws<SetupException>(() => BeirDataset.Read(_folder));
        Assert.Contains("test.tsv line 2: the score 'high' is not a whole number", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_folder_or_file_says_what_a_beir_folder_holds()
    {
        var e = Assert.Throws<SetupException>(() => BeirDataset.Read(Path.Combine(_folder, "nope")));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<SetupException>(() => BeirDataset.Read(_folder));
        Assert.Contains("corpus.jsonl is missing", e.Message, StringComparison.Ordinal);
    }
}
