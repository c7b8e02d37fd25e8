using System.Globalization;
using PgVectorModule.Chunking;
using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson10;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Lesson10Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    private const string HnswScan = $"Index Scan using {ChunksContext.HnswIndex}";
    private const string GinScan = $"Bitmap Index Scan on {ChunksContext.GinIndex}";

    [Fact]
    public async Task Runs_end_to_end_twice_from_chunks_to_a_cited_answer()
    {
        List<string>? tablesAfterFirstRun = null;
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<SearchToAnswersLesson>(database.Settings);

            Assert.True(result.ExitCode == 0, $"run {run} exited {result.ExitCode}:\n{result.Output}");
            Assert.True(result.Transcript.Completed);
            AssertTeaches(result.Transcript);

            // The default question's answer is in the corpus: the overfitting abstract comes first, and the extractive
            // answer quotes its sentence about stopping early, citing passage 1.
            var search = result.Transcript.Step("parent-documents").Tables.Single(t => t.Columns.Contains("snippet"));
            Assert.Equal(SearchToAnswersLesson.DemonstrationTitle, search.Rows[0]["title"]);
            var answer = result.Transcript.Step("answer");
            Assert.Contains(answer.Notes, n => n.StartsWith("Extractive answer", StringComparison.Ordinal));
            Assert.Contains("Stopping early, adding noise to inputs and shrinking weights", Assert.Single(answer.Tables, t => t.Columns.Contains("answer sentence")).Rows[0]["answer sentence"], StringComparison.Ordinal);

            // One migration applied, every document loaded with its chunks, nothing else left behind.
            Assert.Equal(1, await database.ScalarAsync<long>("SELECT count(*) FROM lesson10.\"__EFMigrationsHistory\""));
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson10.documents"));
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(DISTINCT document_id) FROM lesson10.chunks"));
            Assert.Equal(0, await database.ScalarAsync<long>($"SELECT count(*) FROM lesson10.chunks WHERE token_count > {SearchToAnswersLesson.ChunkBudget} OR embedding IS NULL"));
            var tables = await database.StringsAsync("SELECT tablename FROM pg_tables WHERE schemaname = 'lesson10' ORDER BY tablename");
            Assert.Equal(["__EFMigrationsHistory", "chunks", "documents"], tables);
            Assert.Equal(tablesAfterFirstRun ?? tables, tables);
            tablesAfterFirstRun = tables;
        }
    }

    [Fact]
    public async Task Runs_as_a_process_twice_with_a_question()
    {
        const string question = "why do retrieved passages matter for generated answers?";
        var environment = new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString };

        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonProcess.RunLessonAsync("10", environment, question);

            Assert.True(result.ExitCode == 0, $"run {run}: {result.Output}");
            Assert.True(result.Transcript!.Completed);
            AssertTeaches(result.Transcript);
            Assert.Contains(question, result.Transcript.SentSql(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_lesson_and_the_library_cut_every_text_alike()
    {
        // A word's word pieces stand in for the model's here: what matters is that both cut the same places.
        static int Pieces(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Sum(w => 1 + (w.Length / 5));
        foreach (var document in SampleCorpus.All)
        {
            foreach (var (size, overlap) in new[] { (16, 4), (32, 8), (48, 0) })
            {
                Assert.Equal(Shape(SearchToAnswersLesson.FixedWindows(document.Content, Pieces, size, overlap)),
                    Shape(TextChunker.FixedWindows(document.Content, Pieces, size, overlap)));
            }

            foreach (var budget in new[] { 12, 48, 256 })
            {
                Assert.Equal(Shape(SearchToAnswersLesson.SentencePacks(document.Content, Pieces, budget)),
                    Shape(TextChunker.SentencePacks(document.Content, Pieces, budget)));
            }
        }
    }

    [Fact]
    public void Chunkings_cut_where_they_say()
    {
        static int Pieces(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        const string text = "One two three four. Five six seven. Eight nine ten eleven twelve.\n\nThirteen fourteen.";

        // Windows of 5 words, 2 repeated: each window starts two words before the last one ended.
        var windows = SearchToAnswersLesson.FixedWindows(text, Pieces, 5, 2);
        Assert.Equal(["One two three four. Five", "four. Five six seven. Eight", "seven. Eight nine ten eleven", "ten eleven twelve. Thirteen fourteen."],
            windows.Select(w => w.Text));
        Assert.All(windows, w => Assert.True(w.Tokens <= 5));

        // Sentences packed up to 8 words: never a sentence cut, never over the budget.
        var sentences = SearchToAnswersLesson.SentencePacks(text, Pieces, 8);
        Assert.Equal(["One two three four. Five six seven.", "Eight nine ten eleven twelve. Thirteen fourteen."], sentences.Select(s => s.Text));
        Assert.Equal([7, 7], sentences.Select(s => s.Tokens));

        // A sentence longer than the budget alone is cut into windows, positions running on.
        var long_ = SearchToAnswersLesson.SentencePacks("A b c d e f g h i j. K l.", Pieces, 4);
        Assert.Equal([0, 1, 2, 3], long_.Select(c => c.Position));
        Assert.Equal(["A b c d", "e f g h", "i j.", "K l."], long_.Select(c => c.Text));

        Assert.Equal(["One two three four. Five six seven. Eight nine ten eleven twelve.", "Thirteen fourteen."],
            SearchToAnswersLesson.Paragraphs(text, Pieces).Select(p => p.Text));
    }

    [Fact]
    public async Task A_question_the_corpus_does_not_answer_gets_no_invented_answer()
    {
        var result = await LessonRunner.RunAsync<SearchToAnswersLesson>(database.Settings, "what is the capital of Peru?");

        Assert.True(result.ExitCode == 0, result.Output);
        var answer = result.Transcript.Step("answer");
        var sentence = Assert.Single(Assert.Single(answer.Tables, t => t.Columns.Contains("answer sentence")).Rows)["answer sentence"];
        Assert.StartsWith("The passages do not contain the answer", sentence, StringComparison.Ordinal);
    }

    /// <summary>What every run proves, whatever the question.</summary>
    internal static void AssertTeaches(LessonTranscript run)
    {
        // Three strategies on the same abstract; none over its budget; sentence packing cuts between sentences only.
        var cuts = run.Step("chunking").Tables.Single(t => t.Columns.Contains("text"));
        var strategies = cuts.Column("strategy").Distinct().ToList();
        Assert.Equal(4, strategies.Count);
        Assert.All(cuts.Rows.Where(r => r["strategy"].StartsWith("sentences", StringComparison.Ordinal)), r => Assert.EndsWith(".", r["text"], StringComparison.Ordinal));
        Assert.All(cuts.Rows.Where(r => r["strategy"].StartsWith("fixed", StringComparison.Ordinal)), r => Assert.True(Int(r["word pieces"]) <= SearchToAnswersLesson.WindowSize));
        Assert.True(cuts.Rows.Count(r => r["strategy"].StartsWith("fixed", StringComparison.Ordinal)) > cuts.Rows.Count(r => r["strategy"] == "paragraphs"));

        // The tables come from the migration; the chunks go in by binary COPY.
        var migration = run.Step("chunks-migration");
        Assert.Contains(migration.Sql, s => s.Shown && s.Text.Contains("CREATE TABLE chunks", StringComparison.Ordinal) && s.Text.Contains("REFERENCES documents (id)", StringComparison.Ordinal)
                                                && s.Text.Contains("USING hnsw", StringComparison.Ordinal) && s.Text.Contains("USING gin", StringComparison.Ordinal));
        Assert.Contains($"CREATE INDEX {ChunksContext.HnswIndex} ON", migration.SentSql(), StringComparison.Ordinal);
        var load = run.Step("chunk-embed-copy");
        Assert.Contains(load.Sql, s => s.Text.StartsWith("COPY chunks", StringComparison.Ordinal) && s.Text.EndsWith("(FORMAT BINARY)", StringComparison.Ordinal));
        var shape = load.Table.Rows[0];
        Assert.Equal(SampleCorpus.All.Count.ToString(CultureInfo.InvariantCulture), shape["documents"]);
        Assert.True(Int(shape["chunks"]) > SampleCorpus.All.Count, "most documents must have more than one chunk");
        Assert.True(Int(shape["most"]) <= SearchToAnswersLesson.ChunkBudget);

        // Parent documents: each document once, with its best chunk; the statement is the lesson's.
        var search = run.Step("parent-documents");
        Assert.Contains(search.SqlSent, s => s.Text == SearchToAnswersLesson.ParentDocuments.Trim());
        var titles = search.Tables.Single(t => t.Columns.Contains("snippet")).Column("title");
        Assert.Equal(titles.Count, titles.Distinct().Count());

        // The plan reads both indexes.
        var plan = Assert.Single(run.Step("plan").Plans);
        Assert.Contains(HnswScan, plan.Plan, StringComparison.Ordinal);
        Assert.Contains(GinScan, plan.Plan, StringComparison.Ordinal);
        Assert.DoesNotContain("Seq Scan on chunks", plan.Plan, StringComparison.Ordinal);

        // The second stage re-orders the first stage's documents: every row says where the first stage had it.
        var second = run.Steps.Single(s => s.Title.StartsWith("A second stage", StringComparison.Ordinal)).Tables.Single(t => t.Columns.Contains("second-stage score"));
        Assert.Equal(10, second.Rows.Count);
        Assert.All(second.Rows, r => Assert.Equal(r["moved"], Moved(Int(r["first stage"]), Int(r["rank"]))));

        // Every answer sentence cites a passage that is listed below it.
        var answer = run.Step("answer");
        var sentences = Assert.Single(answer.Tables, t => t.Columns.Contains("answer sentence")).Rows;
        var passages = Assert.Single(answer.Tables, t => t.Columns.Contains("n")).Rows.Select(r => r["n"]).ToHashSet();
        Assert.NotEmpty(sentences);
        Assert.All(sentences, s =>
        {
            Assert.NotEqual("", s["cites"]);
            Assert.All(s["cites"].Split(", "), n => Assert.Contains(n, passages));
        });
        Assert.Contains(answer.Notes, n => n.StartsWith("Every sentence cites a passage", StringComparison.Ordinal));
    }

    private static string Moved(int before, int after) => before == after ? "=" : before > after ? $"up {before - after}" : $"down {after - before}";

    private static IEnumerable<(int, string, int)> Shape<T>(IEnumerable<T> chunks) => chunks.Select(c => c switch
    {
        PgVectorModule.Lessons.Lesson10.TextChunk l => (l.Position, l.Text, l.Tokens),
        PgVectorModule.Chunking.TextChunk t => (t.Position, t.Text, t.Tokens),
        _ => throw new ArgumentException("not a chunk"),
    }).ToList();

    private static int Int(string text) => int.Parse(text, CultureInfo.InvariantCulture);
}
