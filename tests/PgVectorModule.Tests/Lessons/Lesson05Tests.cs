using PgVectorModule.Configuration;
using PgVectorModule.Lessons.Lesson05;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Lessons;

public class Lesson05Tests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task Runs_end_to_end_twice_showing_operators_plans_and_knobs()
    {
        foreach (var run in new[] { 1, 2 })
        {
            var result = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings);

            Assert.True(result.ExitCode == 0, $"run {run} exited {result.ExitCode}:\n{result.Output}");
            Assert.Equal(SampleCorpus.All.Count, await database.ScalarAsync<long>("SELECT count(*) FROM lesson05.vector_documents"));
            Assert.Contains("ORDER BY v.embedding <=> @query", result.Output, StringComparison.Ordinal);
            Assert.Contains("ORDER BY v.embedding <-> @query", result.Output, StringComparison.Ordinal);
            Assert.Contains("ORDER BY v.embedding <#> @query", result.Output, StringComparison.Ordinal);
            Assert.Contains("WHERE v.source = @source", result.Output, StringComparison.Ordinal);
            Assert.Contains($"\"{VectorSearchLesson.OffTopicQuestion}\": 0 documents within the threshold", result.Output, StringComparison.Ordinal);
            // The plans: an exact scan by default, the HNSW index when the planner is steered to it.
            Assert.Contains("Seq Scan on vector_documents", result.Output, StringComparison.Ordinal);
            Assert.Contains("Index Scan using ix_vector_documents_embedding_hnsw", result.Output, StringComparison.Ordinal);
            Assert.Contains("SET LOCAL hnsw.ef_search", result.Output, StringComparison.Ordinal);
            Assert.Contains("With hnsw.iterative_scan = relaxed_order: 10 of 10 rows", result.Output, StringComparison.Ordinal);
            Assert.Contains("mean recall@10", result.Output, StringComparison.Ordinal);
            Assert.Contains("Lesson 05 done (11 steps)", result.Output, StringComparison.Ordinal);
        }

        // The IVFFlat index was dropped only inside a rolled-back transaction.
        Assert.Equal(1, await database.ScalarAsync<long>(
            $"SELECT count(*) FROM pg_indexes WHERE schemaname = 'lesson05' AND indexname = '{VectorDocumentConfiguration.IvfFlatIndex}'"));
    }

    [Fact]
    public async Task A_question_longer_than_the_model_reads_is_chunked_and_the_lesson_says_so()
    {
        var longQuestion = string.Join(' ', Enumerable.Repeat("how does an HNSW index find the nearest vectors quickly?", 40));

        var result = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings, longQuestion);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("it was embedded in overlapping chunks and their vectors averaged", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Takes_the_question_from_the_command_line_and_refuses_an_empty_one()
    {
        var asked = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings, "how", "do", "I", "pool", "connections?");
        Assert.Equal(0, asked.ExitCode);
        Assert.Contains("\"how do I pool connections?\" becomes a vector", asked.Output, StringComparison.Ordinal);

        var empty = await LessonRunner.RunAsync<VectorSearchLesson>(database.Settings, "   ");
        Assert.Equal(ExitCodes.InvalidInput, empty.ExitCode);
        Assert.Contains("The search query is empty", empty.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Step 1", empty.Output, StringComparison.Ordinal);
    }
}
