using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;
using Spectre.Console;

namespace PgVectorModule.Lessons.Lesson11;

/// <param name="Id">Its id in the single-server table, kept in the distributed one so the two can be compared.</param>
/// <param name="TenantId">The customer it belongs to: one tenant per source of the sample corpus.</param>
public sealed record Article(int Id, int TenantId, string Title, string Content, string Source, Vector Embedding);

/// <param name="Source">A data source on the coordinator's plain (not distributed) copy, in <see cref="ScaleOutLesson.SingleServerSchema"/>.</param>
public sealed record SingleServer(NpgsqlDataSource Source, IReadOnlyList<Article> Articles) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Source.DisposeAsync();
}

public sealed partial class ScaleOutLesson
{
    /// <summary>
    /// Shards per distributed table: four per worker once the third one joins, few enough that moving a third of them
    /// takes a minute here (each move copies a shard group, rebuilds its indexes and switches over).
    /// </summary>
    public const int ShardCount = 8;

    public const int TenantCount = 40;
    public const int LargeTenant = 1;
    public const int LargeTenantRows = 2000;
    public const int SmallTenantRows = 200;
    public static int DocumentRows => LargeTenantRows + ((TenantCount - 1) * SmallTenantRows);

    /// <summary>The articles' tenants: the sample corpus' three sources as three customers.</summary>
    public static IReadOnlyDictionary<string, (int Tenant, string Name)> ArticleTenants { get; } = new Dictionary<string, (int, string)>
    {
        ["research"] = (2, "a research library"),
        ["blog"] = (3, "an engineering blog"),
        ["docs"] = (4, "a documentation site"),
    };

    /// <summary>
    /// Every table of the lesson. documents: the tenants' documents for vector search, distributed by tenant_id.
    /// articles: text and vectors for hybrid search, co-located with documents (a tenant's rows of both on one worker).
    /// tenants: a reference table, a full copy on every node, so any shard joins it where it is.
    /// </summary>
    public static IReadOnlyList<string> DistributionStatements(int dims) =>
    [
        $"DROP SCHEMA IF EXISTS {Schema} CASCADE",
        $"CREATE SCHEMA {Schema}",
        "CREATE TABLE tenants (tenant_id int PRIMARY KEY, name text NOT NULL)",
        "SELECT create_reference_table('tenants')",
        $"CREATE TABLE documents (tenant_id int NOT NULL, id bigint NOT NULL, title text NOT NULL, embedding vector({dims}) NOT NULL, PRIMARY KEY (tenant_id, id))",
        // Rows are placed by a hash of tenant_id into shards: a tenant's rows share one shard. The count is fixed when the
        // table is distributed (Citus's default, citus.shard_count, is 32): enough to spread over more workers later.
        $"SELECT create_distributed_table('documents', 'tenant_id', shard_count => {ShardCount})",
        $"""
        CREATE TABLE articles (
            tenant_id int NOT NULL, id bigint NOT NULL, title text NOT NULL, content text NOT NULL, source text NOT NULL,
            embedding vector({dims}) NOT NULL,
            content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || content)) STORED,
            PRIMARY KEY (tenant_id, id))
        """,
        // Same distribution column type, same shard count, colocate_with: shard n of both tables lives on the same worker.
        "SELECT create_distributed_table('articles', 'tenant_id', colocate_with => 'documents')",
    ];

    /// <summary>Created once on the coordinator, each is created on every shard: every worker holds the HNSW graphs of its own shards.</summary>
    public static IReadOnlyList<string> IndexStatements { get; } =
    [
        "CREATE INDEX documents_hnsw ON documents USING hnsw (embedding vector_cosine_ops)",
        "CREATE INDEX articles_hnsw ON articles USING hnsw (embedding vector_cosine_ops)",
        "ANALYZE documents, articles",
    ];

    /// <summary>The index methods of each shard of a table, asked of every shard where it lives (%s is the shard's name).</summary>
    public const string IndexesOnEveryShard = """
        SELECT table_name::text AS distributed_table, count(*) AS shards,
               count(*) FILTER (WHERE result LIKE '%hnsw%') AS shards_with_hnsw
        FROM (SELECT 'documents'::regclass AS table_name, * FROM run_command_on_shards('documents',
                  $$SELECT string_agg(am.amname, ',') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = '%s'::regclass$$)
              UNION ALL
              SELECT 'articles'::regclass, * FROM run_command_on_shards('articles',
                  $$SELECT string_agg(am.amname, ',') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = '%s'::regclass$$)) shards
        GROUP BY table_name ORDER BY table_name::text
        """;

    /// <summary>
    /// The single server to compare with: the sample corpus embedded and loaded into plain tables on the coordinator (a
    /// PostgreSQL server like any other) by the library's loader, with its BM25 postings and indexes (lessons 04 and 06).
    /// </summary>
    private static async Task<SingleServer> SingleServerAsync(Lesson lesson, NpgsqlConnectionStringBuilder coordinator, TextEmbedder embedder, CancellationToken cancellationToken)
    {
        lesson.Step("one-server-baseline", "Embed the corpus, and one server's answer to compare with",
            $"The {SampleCorpus.All.Count} articles of the sample corpus, embedded and loaded into plain tables on the coordinator ({SingleServerSchema}), as lessons 04 and 06 load them: " +
            "what one PostgreSQL server answers is the reference every distributed search below is held to.");
        await using (var connection = new NpgsqlConnection(coordinator.ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            using (lesson.Detail())
            {
                await lesson.ExecuteAsync($"CREATE SCHEMA IF NOT EXISTS {SingleServerSchema}", connection, cancellationToken);
            }
        }

        var source = ModuleDataSource.Create(coordinator, SingleServerSchema);
        try
        {
            await using var db = new SearchDbContext(SearchDbContext.CreateOptions(source), new VectorStoreShape(embedder.Dimensions, IvfFlatLists: VectorStoreShape.ListsFor(SampleCorpus.All.Count)));
            await lesson.Console.Progress().AutoClear(false).StartAsync(async progress =>
            {
                var task = progress.AddTask($"embedding and loading {SampleCorpus.All.Count} articles", maxValue: SampleCorpus.All.Count);
                await VectorStore.LoadAsync(source, db, embedder, SampleCorpus.All, new Progress<int>(done => task.Value = done), cancellationToken);
                task.Value = SampleCorpus.All.Count;
            });

            var articles = new List<Article>();
            await using (var command = source.CreateCommand($"SELECT id, title, content, source, embedding FROM {VectorDocumentConfiguration.TableName} ORDER BY id"))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    var from = reader.GetString(3);
                    articles.Add(new Article(reader.GetInt32(0), ArticleTenants[from].Tenant, reader.GetString(1), reader.GetString(2), from, reader.GetFieldValue<Vector>(4)));
                }
            }

            lesson.Say($"{articles.Count} articles in {SingleServerSchema}.vector_documents, embedded by {embedder.Identity.ToString()}, with the BM25 postings and the HNSW index of one server.", Tone.Aside);
            return new SingleServer(source, articles);
        }
        catch
        {
            await source.DisposeAsync();
            throw;
        }
    }

    private static async Task DistributeAsync(Lesson lesson, NpgsqlDataSource citus, IReadOnlyList<Article> articles, int dims, CancellationToken cancellationToken)
    {
        lesson.Step("distribute", "Distribute the documents by tenant",
            $"create_distributed_table splits a table into shards (here {ShardCount}) by a hash of its distribution column and spreads them over the workers. With tenant_id as that column a tenant's rows stay together. " +
            $"documents gets {DocumentRows:N0} rows of {TenantCount} tenants (tenant {LargeTenant} with {LargeTenantRows:N0}, each other {SmallTenantRows}); articles, co-located with it, the {articles.Count} articles of three tenants; tenants is a reference table, copied whole to every node.");
        // The vector type may be newer than the data source's first connection (a CITUS_URL cluster that lacked it).
        await citus.ReloadTypesAsync(cancellationToken);
        await using var connection = await citus.OpenConnectionAsync(cancellationToken);
        // Sent one by one, shown together: the schema's reset, then the tables and how each is distributed.
        using (lesson.QuietSql())
        {
            foreach (var statement in DistributionStatements(dims))
            {
                await lesson.ExecuteAsync(statement, connection, cancellationToken);
            }
        }

        // Each statement on a line of its own (a line wraps at the console's width); the schema's reset is left out.
        lesson.Sql(string.Join(";\n", DistributionStatements(dims).Where(s => !s.Contains("SCHEMA", StringComparison.Ordinal))
            .Select(s => System.Text.RegularExpressions.Regex.Replace(s.Trim(), @"\s*\n\s*", " ").Replace("( ", "(", StringComparison.Ordinal))) + ";");
        using (lesson.QuietSql())
        {
            await LoadAsync(connection, articles, cancellationToken);
            foreach (var statement in IndexStatements)
            {
                await lesson.ExecuteAsync(statement, connection, cancellationToken);
            }
        }

        lesson.Sql("COPY tenants (tenant_id, name) FROM STDIN (FORMAT BINARY);\nCOPY documents (tenant_id, id, title, embedding) FROM STDIN (FORMAT BINARY);\nCOPY articles (tenant_id, id, title, content, source, embedding) FROM STDIN (FORMAT BINARY);\n" +
                   string.Join(";\n", IndexStatements) + ";",
            ["each row goes to its shard's worker as it arrives; each index to every shard"]);

        // The queries that look at the metadata are the detail; what they found is shown.
        IReadOnlyList<IReadOnlyDictionary<string, object?>> tables, placement, indexes;
        using (lesson.Detail())
        {
            tables = await lesson.QueryAsync("""
                SELECT table_name::text AS table_name, citus_table_type, distribution_column, colocation_id, shard_count
                FROM citus_tables WHERE table_name::text IN ('tenants', 'documents', 'articles') ORDER BY colocation_id, table_name::text
                """, connection, [], cancellationToken);
            placement = await lesson.QueryAsync("""
                SELECT nodename || ':' || nodeport AS node,
                       count(*) FILTER (WHERE table_name = 'documents'::regclass) AS documents_shards,
                       count(*) FILTER (WHERE table_name = 'articles'::regclass) AS articles_shards,
                       count(*) FILTER (WHERE table_name = 'tenants'::regclass) AS tenants_copies
                FROM citus_shards WHERE table_name IN ('documents'::regclass, 'articles'::regclass, 'tenants'::regclass)
                GROUP BY nodename, nodeport ORDER BY nodeport
                """, connection, [], cancellationToken);
            indexes = await lesson.QueryAsync(IndexesOnEveryShard, connection, [], cancellationToken);
        }

        lesson.Table(tables, ("table", r => r["table_name"]), ("type", r => r["citus_table_type"]), ("distributed by", r => r["distribution_column"]),
            ("co-location group", r => r["colocation_id"]), ("shards", r => r["shard_count"]));

        lesson.Table(placement, ("node", r => r["node"]), ("documents shards", r => r["documents_shards"]), ("articles shards", r => r["articles_shards"]), ("tenants copies", r => r["tenants_copies"]));

        // Shard by shard is the detail: the line below says what it found.
        using (lesson.Detail())
        {
            lesson.Table(indexes, ("table", r => r["distributed_table"]), ("shards", r => r["shards"]), ("shards with an HNSW index", r => r["shards_with_hnsw"]));
        }

        var everywhere = indexes.All(r => Equals(r["shards"], r["shards_with_hnsw"]));
        lesson.Say(everywhere
            ? ("One CREATE INDEX on the coordinator, an HNSW index on every shard: each worker builds and searches the graphs of its own shards, each graph a fraction of one graph of the whole table.", Tone.Good)
            : ("Some shards have no HNSW index.", Tone.Bad));
    }

    /// <summary>tenants, documents (corpus vectors with noise, as lesson 09 makes them) and articles, by binary COPY.</summary>
    private static async Task LoadAsync(NpgsqlConnection connection, IReadOnlyList<Article> articles, CancellationToken cancellationToken)
    {
        await using (var writer = await connection.BeginBinaryImportAsync("COPY tenants (tenant_id, name) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            for (var tenant = 1; tenant <= TenantCount; tenant++)
            {
                var named = ArticleTenants.Values.Where(t => t.Tenant == tenant).Select(t => t.Name).FirstOrDefault();
                await writer.WriteRowAsync(cancellationToken, tenant, named ?? (tenant == LargeTenant ? "a large customer" : $"customer {tenant}"));
            }

            await writer.CompleteAsync(cancellationToken);
        }

        var random = new Random(11);
        await using (var writer = await connection.BeginBinaryImportAsync("COPY documents (tenant_id, id, title, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            var id = 0L;
            for (var tenant = 1; tenant <= TenantCount; tenant++)
            {
                for (var i = 0; i < (tenant == LargeTenant ? LargeTenantRows : SmallTenantRows); i++)
                {
                    var seed = articles[random.Next(articles.Count)];
                    await writer.WriteRowAsync(cancellationToken, tenant, ++id, $"{seed.Title} (tenant {tenant})", Perturb(seed.Embedding, random));
                }
            }

            await writer.CompleteAsync(cancellationToken);
        }

        await using (var writer = await connection.BeginBinaryImportAsync("COPY articles (tenant_id, id, title, content, source, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var a in articles)
            {
                await writer.WriteRowAsync(cancellationToken, a.TenantId, (long)a.Id, a.Title, a.Content, a.Source, a.Embedding);
            }

            await writer.CompleteAsync(cancellationToken);
        }
    }

    /// <summary>Twenty questions for the vector searches: corpus vectors with noise of their own, so none is a stored row.</summary>
    public static IReadOnlyList<Vector> Probes(IReadOnlyList<Article> articles)
    {
        ArgumentNullException.ThrowIfNull(articles);
        var random = new Random(1111);
        return Enumerable.Range(0, 20).Select(_ => Perturb(articles[random.Next(articles.Count)].Embedding, random)).ToList();
    }

    /// <summary>A vector with Gaussian noise, normalised: documents that cluster like real ones.</summary>
    private static Vector Perturb(Vector basis, Random random)
    {
        var source = basis.ToArray();
        var v = new float[source.Length];
        for (var d = 0; d < v.Length; d++)
        {
            v[d] = source[d] + (float)(0.03 * GaussianNoise.Next(random));
        }

        UnitVector.Normalize(v);
        return new Vector(v);
    }
}
