namespace PgVectorModule.Lessons.Lesson07;

/// <summary>Best practices: scaling reads and partitioning large tables.</summary>
public sealed partial class ProductionLesson
{
    private static async Task ScalingAsync(Lesson lesson, int dims, Vector question, CancellationToken cancellationToken)
    {
        lesson.Step("scaling-out", "Scaling out, on paper",
            "When one server is not enough: read replicas when searches outnumber writes (lesson 08), partitions when queries name a source or a date (next step), " +
            "Citus when one machine cannot hold the data (lesson 11), smaller vectors when the index outgrows memory (step 9).");
        // The same four with how each is done: a reference for later.
        using (lesson.Detail())
        {
            lesson.Table(new[]
                {
                    ("read replicas", "searches far outnumber writes", "streaming replication; Npgsql: Host=primary,replica;Target Session Attributes=prefer-standby"),
                    ("partitioning", "one big table, queries that name a date or a source", "PARTITION BY LIST/RANGE; each partition has its own, smaller vector index"),
                    ("Citus", "more data or writes than one machine holds", "distributed PostgreSQL: tables sharded across nodes, pgvector on each"),
                    ("smaller vectors", "the index no longer fits in memory", "halfvec, binary quantization with re-ranking (step 9)"),
                },
                ("approach", r => r.Item1), ("when", r => r.Item2), ("how", r => r.Item3));
        }

        lesson.DeepDive("partitions", "A table partitioned by source", "PARTITION BY LIST (source): one partition per source, each with its own HNSW index; a query that names the source reads only its partition.");
        await lesson.ExecuteAsync("DROP TABLE IF EXISTS documents_by_source", cancellationToken);
        await lesson.ExecuteAsync($"CREATE TABLE documents_by_source (id integer, title text, source text NOT NULL, embedding vector({dims})) PARTITION BY LIST (source)", cancellationToken);
        foreach (var source in new[] { "docs", "blog", "research" })
        {
            await lesson.ExecuteAsync($"CREATE TABLE documents_by_source_{source} PARTITION OF documents_by_source FOR VALUES IN ('{source}')", cancellationToken);
        }

        await lesson.ExecuteAsync("CREATE TABLE documents_by_source_other PARTITION OF documents_by_source DEFAULT", cancellationToken);
        await lesson.ExecuteAsync("CREATE INDEX ON documents_by_source USING hnsw (embedding vector_cosine_ops)", cancellationToken);
        await lesson.ExecuteAsync("INSERT INTO documents_by_source SELECT id, title, source, embedding FROM vector_documents", cancellationToken);
        await lesson.ExecuteAsync("ANALYZE documents_by_source", cancellationToken);
        var counts = await lesson.QueryAsync("SELECT tableoid::regclass::text AS partition, count(*) AS rows FROM documents_by_source GROUP BY 1 ORDER BY 1", cancellationToken);
        lesson.Table(counts, ("partition", r => r["partition"]), ("rows", r => r["rows"]));
        await lesson.ExplainAsync("SELECT id, title FROM documents_by_source WHERE source = 'research' ORDER BY embedding <=> @q LIMIT 5", null,
            [new NpgsqlParameter("q", question)], cancellationToken);
        lesson.Say("Only documents_by_source_research appears in the plan: the others were pruned.", Tone.Aside);
    }
}
