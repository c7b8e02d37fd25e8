using PgVectorModule.Data;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Library;

/// <summary>
/// BM25 in SQL against BM25 by hand: documents of words the English stemmer leaves as they are, so the lexemes and
/// their counts are known in C# too; and the statistics kept right through inserts, updates, deletes and truncates.
/// </summary>
[Trait(ServerLanes.Trait, ServerLanes.VersionDependent)]
public class Bm25Tests(TestDatabase database) : IClassFixture<TestDatabase>, IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private NpgsqlDataSource _dataSource = null!;

    public async ValueTask InitializeAsync()
    {
        _dataSource = ModuleDataSource.Create(database.ConnectionString, "bm25_tests");
        await using (var create = _dataSource.CreateCommand("CREATE SCHEMA IF NOT EXISTS bm25_tests"))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        await using var db = NewDbContext();
        await VectorStore.EnsureExtensionAsync(_dataSource, db, Ct);
        await VectorStore.RecreateTablesAsync(db, Ct);
    }

    public async ValueTask DisposeAsync() => await _dataSource.DisposeAsync();

    private SearchDbContext NewDbContext() => new(SearchDbContext.CreateOptions(_dataSource), new VectorStoreShape(3));

    [Fact]
    public async Task Scores_match_bm25_computed_by_hand_and_follow_every_write()
    {
        // Titles are empty so content_tsv holds exactly these words (title || ' ' || content).
        var corpus = new Dictionary<string, string>
        {
            ["a"] = "cat dog dog fish",
            ["b"] = "dog bird",
            ["c"] = "fish fish fish fish fish fish fish fish red blue green",
            ["d"] = "red blue",
        };
        foreach (var (source, text) in corpus)
        {
            await InsertAsync(source, text);
        }

        await AssertScoresAsync(corpus, "dog fish", Bm25Parameters.Default);
        await AssertScoresAsync(corpus, "fish", new Bm25Parameters(K1: 2.0, B: 0.3));

        // A new document: findable at once, and every score moves with the new N and average length.
        corpus["e"] = "dog dog dog dog";
        await InsertAsync("e", corpus["e"]);
        var found = await HybridSearch.KeywordAsync(_dataSource, "dog", limit: 10, cancellationToken: Ct);
        Assert.Contains(found, h => h.Source == "e");
        await AssertScoresAsync(corpus, "dog fish", Bm25Parameters.Default);

        // An update re-indexes the changed text; a delete takes the document's terms and length away.
        corpus["b"] = "bird bird cat";
        await ExecuteAsync("UPDATE vector_documents SET content = 'bird bird cat' WHERE source = 'b'");
        corpus.Remove("d");
        await ExecuteAsync("DELETE FROM vector_documents WHERE source = 'd'");
        await AssertScoresAsync(corpus, "dog cat bird", Bm25Parameters.Default);
        Assert.Empty(await HybridSearch.KeywordAsync(_dataSource, "green red", source: "d", cancellationToken: Ct));

        // An update that leaves the text alone leaves the postings and the statistics alone: not even a row of zeros.
        var before = await ScalarAsync<long>("SELECT count(*) FROM document_terms");
        var rows = await ScalarAsync<long>("SELECT count(*) FROM bm25_corpus");
        await ExecuteAsync("UPDATE vector_documents SET source = source");
        Assert.Equal(before, await ScalarAsync<long>("SELECT count(*) FROM document_terms"));
        Assert.Equal(rows, await ScalarAsync<long>("SELECT count(*) FROM bm25_corpus"));

        await ExecuteAsync("TRUNCATE vector_documents");
        Assert.Equal(0L, await ScalarAsync<long>("SELECT count(*) FROM document_terms"));
        Assert.Equal(0L, await ScalarAsync<long>("SELECT count(*) FROM bm25_corpus"));
    }

    [Fact]
    public async Task The_source_filter_keeps_document_frequency_corpus_wide()
    {
        var corpus = new Dictionary<string, string> { ["x1"] = "owl owl moth", ["y1"] = "owl", ["y2"] = "moth" };
        foreach (var (source, text) in corpus)
        {
            await InsertAsync(source, text);
        }

        var filtered = await HybridSearch.KeywordAsync(_dataSource, "owl moth", source: "x1", cancellationToken: Ct);

        var hit = Assert.Single(filtered);
        Assert.Equal(Bm25ByHand(corpus, "owl moth", Bm25Parameters.Default)["x1"], hit.Score, 1e-6);
    }

    [Fact]
    public async Task Every_write_statement_adds_a_row_of_changes_and_folding_them_changes_no_score()
    {
        var corpus = new Dictionary<string, string>();
        var words = new[] { "cat", "dog", "fish", "bird", "red", "blue", "green", "owl" };
        for (var i = 0; i < 12; i++)
        {
            corpus[$"s{i}"] = string.Join(' ', Enumerable.Range(0, 2 + i % 5).Select(j => words[(i * 3 + j * j) % words.Length]));
            await InsertAsync($"s{i}", corpus[$"s{i}"]);
        }

        // Updates that change the text, a delete, and a write rolled back: each committed statement left its own row.
        corpus["s3"] = "owl owl owl fish";
        await ExecuteAsync("UPDATE vector_documents SET content = 'owl owl owl fish' WHERE source = 's3'");
        corpus["s7"] = "red";
        await ExecuteAsync("UPDATE vector_documents SET content = 'red' WHERE source = 's7'");
        corpus.Remove("s5");
        await ExecuteAsync("DELETE FROM vector_documents WHERE source = 's5'");
        await using (var connection = await _dataSource.OpenConnectionAsync(Ct))
        await using (var transaction = await connection.BeginTransactionAsync(Ct))
        {
            await using var insert = new NpgsqlCommand("INSERT INTO vector_documents (title, content, source) VALUES ('', 'dog dog dog', 'gone')", connection, transaction);
            await insert.ExecuteNonQueryAsync(Ct);
            await transaction.RollbackAsync(Ct);
        }

        Assert.Equal(12 + 2 * 2 + 1, await ScalarAsync<long>("SELECT count(*) FROM bm25_corpus"));
        await AssertScoresAsync(corpus, "owl fish red", Bm25Parameters.Default);
        var unfolded = await HybridSearch.KeywordAsync(_dataSource, "owl fish red dog", limit: 100, cancellationToken: Ct);

        await ExecuteAsync(Bm25Index.Fold);

        Assert.Equal(1L, await ScalarAsync<long>("SELECT count(*) FROM bm25_corpus"));
        Assert.Equal(unfolded, await HybridSearch.KeywordAsync(_dataSource, "owl fish red dog", limit: 100, cancellationToken: Ct));
        await AssertScoresAsync(corpus, "owl fish red", Bm25Parameters.Default);

        // Writes after the fold add to the folded row; folding again folds those too.
        corpus["late"] = "bird bird owl";
        await InsertAsync("late", corpus["late"]);
        await AssertScoresAsync(corpus, "bird owl", new Bm25Parameters(K1: 0.9, B: 0.4));
        await ExecuteAsync(Bm25Index.Fold);
        await ExecuteAsync(Bm25Index.Fold);
        Assert.Equal(1L, await ScalarAsync<long>("SELECT count(*) FROM bm25_corpus"));
        await AssertScoresAsync(corpus, "bird owl dog", Bm25Parameters.Default);
    }

    [Fact]
    public async Task An_interrupted_rebuild_leaves_the_tables_and_their_triggers_as_they_were()
    {
        await InsertAsync("kept", "cat dog");
        using var interrupt = new CancellationTokenSource();
        // Stands in for Ctrl+C arriving after the new table exists and before its update trigger does.
        var interceptor = new CancelBefore("bm25_after_update", interrupt);
        await using (var db = new SearchDbContext(SearchDbContext.CreateOptions(_dataSource, interceptor), new VectorStoreShape(3)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VectorStore.RecreateTablesAsync(db, interrupt.Token));
        }

        Assert.True(interceptor.Cancelled);
        Assert.Equal(["bm25_after_delete", "bm25_after_insert", "bm25_after_truncate", "bm25_after_update"], await StringsAsync(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'vector_documents'::regclass AND NOT tgisinternal ORDER BY tgname"));
        Assert.Equal(1L, await ScalarAsync<long>("SELECT count(*) FROM vector_documents"));
        // The postings still follow the documents.
        await ExecuteAsync("UPDATE vector_documents SET content = 'owl' WHERE source = 'kept'");
        Assert.Equal(["owl"], await StringsAsync("SELECT lexeme FROM document_terms"));
    }

    /// <summary>Cancels the token just before a command whose text contains <paramref name="marker"/> is sent.</summary>
    private sealed class CancelBefore(string marker, CancellationTokenSource interrupt) : Microsoft.EntityFrameworkCore.Diagnostics.DbCommandInterceptor
    {
        public bool Cancelled { get; private set; }

        public override ValueTask<Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<int>> NonQueryExecutingAsync(System.Data.Common.DbCommand command,
            Microsoft.EntityFrameworkCore.Diagnostics.CommandEventData eventData, Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<int> result,
            CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains(marker, StringComparison.Ordinal))
            {
                Cancelled = true;
                interrupt.Cancel();
            }

            return base.NonQueryExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    private async Task AssertScoresAsync(IReadOnlyDictionary<string, string> corpus, string query, Bm25Parameters parameters)
    {
        var expected = Bm25ByHand(corpus, query, parameters);
        var hits = await HybridSearch.KeywordAsync(_dataSource, query, limit: 100, bm25: parameters, cancellationToken: Ct);

        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), hits.Select(h => h.Source!).Order(StringComparer.Ordinal));
        foreach (var hit in hits)
        {
            Assert.Equal(expected[hit.Source!], hit.Score, 1e-6);
        }

        Assert.Equal(hits.Select(h => h.Score).OrderDescending(), hits.Select(h => h.Score));
        Assert.Equal(corpus.Count, await ScalarAsync<long>("SELECT sum(document_count)::bigint FROM bm25_corpus"));
        Assert.Equal(corpus.Values.Sum(t => t.Split(' ').Length), await ScalarAsync<long>("SELECT sum(total_length)::bigint FROM bm25_corpus"));
    }

    /// <summary>Okapi BM25 with Lucene's idf, ln(1 + (N - df + 0.5) / (df + 0.5)), over whitespace-separated words.</summary>
    private static Dictionary<string, double> Bm25ByHand(IReadOnlyDictionary<string, string> corpus, string query, Bm25Parameters p)
    {
        var documents = corpus.ToDictionary(d => d.Key, d => d.Value.Split(' '));
        var n = documents.Count;
        var averageLength = documents.Values.Average(words => words.Length);
        var scores = new Dictionary<string, double>();
        foreach (var term in query.Split(' ').Distinct())
        {
            var df = documents.Values.Count(words => words.Contains(term));
            var idf = Math.Log(1 + (n - df + 0.5) / (df + 0.5));
            foreach (var (id, words) in documents)
            {
                var tf = words.Count(w => w == term);
                if (tf > 0)
                {
                    scores[id] = scores.GetValueOrDefault(id) + idf * tf * (p.K1 + 1) / (tf + p.K1 * (1 - p.B + p.B * words.Length / averageLength));
                }
            }
        }

        return scores;
    }

    private async Task InsertAsync(string source, string content)
    {
        await using var command = _dataSource.CreateCommand("INSERT INTO vector_documents (title, content, source) VALUES ('', @content, @source)");
        command.Parameters.AddWithValue("content", content);
        command.Parameters.AddWithValue("source", source);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var command = _dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private async Task<List<string>> StringsAsync(string sql)
    {
        await using var command = _dataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var values = new List<string>();
        while (await reader.ReadAsync(Ct))
        {
            values.Add(reader.GetString(0));
        }

        return values;
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var command = _dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }
}
