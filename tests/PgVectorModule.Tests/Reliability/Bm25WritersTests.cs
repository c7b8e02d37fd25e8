using System.Data;
using PgVectorModule.Data;
using PgVectorModule.Search;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// Concurrent writers on vector_documents with the BM25 triggers (<see cref="Bm25Index"/>) at work: writers of unrelated
/// documents never wait for each other nor fail, writers of the same documents fail only as PostgreSQL's isolation
/// level says they must (serialization failures under REPEATABLE READ, never a deadlock when they lock in id order), and
/// afterwards the postings and the corpus statistics are exactly what the documents say.
/// </summary>
public class Bm25WritersTests(TestDatabase database) : IClassFixture<TestDatabase>, IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private NpgsqlDataSource _dataSource = null!;

    private static readonly string[] Texts =
    [
        "graph index vector search recall",
        "latency memory disk query plan",
        "replica failover standby primary",
        "pooling connection handshake timeout",
        "migration schema history rollback",
        "tenant policy row security",
    ];

    public async ValueTask InitializeAsync()
    {
        _dataSource = ModuleDataSource.Create(database.ConnectionString, "bm25_writers");
        await using (var create = _dataSource.CreateCommand("CREATE SCHEMA IF NOT EXISTS bm25_writers"))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        await using var db = new SearchDbContext(SearchDbContext.CreateOptions(_dataSource), new VectorStoreShape(3));
        await VectorStore.EnsureExtensionAsync(_dataSource, db, Ct);
        await VectorStore.RecreateTablesAsync(db, Ct);
    }

    public async ValueTask DisposeAsync() => await _dataSource.DisposeAsync();

    [Fact]
    public async Task A_transaction_that_inserts_then_updates_a_document_does_not_deadlock_with_one_that_updates_it()
    {
        var shared = await InsertAsync("shared document", Texts[0]);
        await using var first = await _dataSource.OpenConnectionAsync(Ct);
        await using var second = await _dataSource.OpenConnectionAsync(Ct);
        await using var firstTransaction = await first.BeginTransactionAsync(IsolationLevel.ReadCommitted, Ct);
        await using var secondTransaction = await second.BeginTransactionAsync(IsolationLevel.ReadCommitted, Ct);

        await InsertAsync(first, "new document", Texts[1]);
        var secondUpdate = UpdateAsync(second, shared, Texts[2]);
        await DoneOrWaitingAsync(secondUpdate, second);
        // The first now needs the row the second holds. With one counter row that the first holds since its INSERT and
        // the second waits for, that is a deadlock; with nothing shared but the document, the first waits its turn.
        var firstUpdate = UpdateAsync(first, shared, Texts[3]);
        await DoneOrWaitingAsync(firstUpdate, first);

        await secondUpdate;
        await secondTransaction.CommitAsync(Ct);
        await firstUpdate;
        await firstTransaction.CommitAsync(Ct);

        Assert.Equal(Texts[3], await ContentAsync(shared));
        await AssertExactAsync(expectedDocuments: 2);
    }

    [Fact]
    public async Task Two_transactions_updating_documents_in_id_order_do_not_deadlock()
    {
        var a = await InsertAsync("a", Texts[0]);
        var b = await InsertAsync("b", Texts[1]);
        var c = await InsertAsync("c", Texts[2]);
        await using var first = await _dataSource.OpenConnectionAsync(Ct);
        await using var second = await _dataSource.OpenConnectionAsync(Ct);
        await using var firstTransaction = await first.BeginTransactionAsync(IsolationLevel.ReadCommitted, Ct);
        await using var secondTransaction = await second.BeginTransactionAsync(IsolationLevel.ReadCommitted, Ct);

        // The first updates a then b, the second b then c: both in id order, the textbook way to never deadlock.
        await UpdateAsync(first, a, Texts[3]);
        var secondOnB = UpdateAsync(second, b, Texts[4]);
        await DoneOrWaitingAsync(secondOnB, second);
        var firstOnB = UpdateAsync(first, b, Texts[5]);
        await DoneOrWaitingAsync(firstOnB, first);

        await secondOnB;
        await UpdateAsync(second, c, Texts[0]);
        await secondTransaction.CommitAsync(Ct);
        await firstOnB;
        await firstTransaction.CommitAsync(Ct);

        Assert.Equal([Texts[3], Texts[5], Texts[0]], [await ContentAsync(a), await ContentAsync(b), await ContentAsync(c)]);
        await AssertExactAsync(expectedDocuments: 3);
    }

    [Theory]
    [InlineData(IsolationLevel.ReadCommitted)]
    [InlineData(IsolationLevel.RepeatableRead)]
    public async Task Writers_of_unrelated_documents_never_fail(IsolationLevel isolation)
    {
        const int writers = 4;
        var own = new List<int>[writers];
        for (var w = 0; w < writers; w++)
        {
            own[w] = [await InsertAsync($"writer {w}", Texts[w % Texts.Length]), await InsertAsync($"writer {w}", Texts[(w + 1) % Texts.Length])];
        }

        var failures = await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var failed = new List<string>();
            await using var connection = await _dataSource.OpenConnectionAsync(Ct);
            for (var k = 0; k < 30; k++)
            {
                try
                {
                    await using var transaction = await connection.BeginTransactionAsync(isolation, Ct);
                    // Each transaction writes documents of its writer's own: a new one, one it wrote before, and now and
                    // then it deletes one.
                    var added = await InsertAsync(connection, $"writer {w}", Texts[(w + k) % Texts.Length]);
                    await UpdateAsync(connection, own[w][k % own[w].Count], $"{Texts[(w + k + 2) % Texts.Length]} revision{k}");
                    int? deleted = k % 3 == 2 ? own[w][0] : null;
                    if (deleted is { } id)
                    {
                        await DeleteAsync(connection, id);
                    }

                    await transaction.CommitAsync(Ct);
                    own[w].Add(added);
                    if (deleted is { } gone)
                    {
                        own[w].Remove(gone);
                    }
                }
                catch (PostgresException e)
                {
                    failed.Add($"{e.SqlState} {e.MessageText}");
                }
            }

            return failed;
        }, Ct)));

        Assert.Empty(failures.SelectMany(f => f));
        await AssertExactAsync(expectedDocuments: own.Sum(o => o.Count));
    }

    [Theory]
    [InlineData(IsolationLevel.ReadCommitted)]
    [InlineData(IsolationLevel.RepeatableRead)]
    public async Task Writers_of_the_same_documents_in_id_order_fail_only_by_serialization_under_repeatable_read(IsolationLevel isolation)
    {
        var shared = new List<int>();
        for (var i = 0; i < 6; i++)
        {
            shared.Add(await InsertAsync("shared", Texts[i]));
        }

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            var (committed, failed) = (0, new List<string>());
            await using var connection = await _dataSource.OpenConnectionAsync(Ct);
            for (var k = 0; k < 30; k++)
            {
                var pair = shared.OrderBy(_ => random.Next()).Take(2).Order().ToList();
                try
                {
                    await using var transaction = await connection.BeginTransactionAsync(isolation, Ct);
                    await InsertAsync(connection, $"writer {w}", Texts[k % Texts.Length]);
                    foreach (var id in pair)
                    {
                        await UpdateAsync(connection, id, $"{Texts[(w + k) % Texts.Length]} writer{w} revision{k}");
                    }

                    await transaction.CommitAsync(Ct);
                    committed++;
                }
                catch (PostgresException e)
                {
                    failed.Add(e.SqlState);
                }
            }

            return (Committed: committed, Failed: failed);
        }, Ct)));

        var failures = outcomes.SelectMany(o => o.Failed).ToList();
        // Under READ COMMITTED a writer waits for the row and goes on; under REPEATABLE READ a row another transaction
        // changed since the snapshot is a serialization failure, which the application retries. A deadlock is neither.
        string[] allowed = isolation == IsolationLevel.RepeatableRead ? [PostgresErrorCodes.SerializationFailure] : [];
        Assert.All(failures, state => Assert.Contains(state, allowed));
        await AssertExactAsync(expectedDocuments: shared.Count + outcomes.Sum(o => o.Committed));
    }

    /// <summary>
    /// The postings are what unnest(content_tsv) of every document gives, and the corpus statistics (summed) count every
    /// document and every lexeme occurrence.
    /// </summary>
    private async Task AssertExactAsync(int expectedDocuments)
    {
        await using var command = _dataSource.CreateCommand("""
            WITH expected AS (
                SELECT d.id AS document_id, t.lexeme, coalesce(array_length(t.positions, 1), 1) AS term_frequency
                FROM vector_documents d, unnest(d.content_tsv) AS t(lexeme, positions, weights)),
            lengths AS (SELECT document_id, sum(term_frequency)::int AS document_length FROM expected GROUP BY document_id),
            want AS (SELECT e.lexeme, e.document_id, e.term_frequency, l.document_length FROM expected e JOIN lengths l USING (document_id)),
            have AS (SELECT lexeme, document_id, term_frequency, document_length FROM document_terms)
            SELECT (SELECT count(*) FROM ((SELECT * FROM want EXCEPT ALL SELECT * FROM have) UNION ALL (SELECT * FROM have EXCEPT ALL SELECT * FROM want)) wrong),
                   (SELECT count(*) FROM vector_documents),
                   (SELECT sum(document_count)::bigint FROM bm25_corpus),
                   (SELECT coalesce(sum(document_length), 0)::bigint FROM lengths),
                   (SELECT sum(total_length)::bigint FROM bm25_corpus)
            """);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        Assert.Equal(0L, reader.GetInt64(0));
        Assert.Equal(expectedDocuments, reader.GetInt64(1));
        Assert.Equal(reader.GetInt64(1), reader.GetInt64(2));
        Assert.Equal(reader.GetInt64(3), reader.GetInt64(4));
    }

    /// <summary>Returns once <paramref name="statement"/> has finished or its backend waits for a lock, whichever comes first.</summary>
    private async Task DoneOrWaitingAsync(Task statement, NpgsqlConnection connection)
    {
        var pid = connection.ProcessID;
        for (var i = 0; i < 200 && !statement.IsCompleted; i++)
        {
            await using var command = _dataSource.CreateCommand("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = @pid");
            command.Parameters.AddWithValue("pid", pid);
            if (await command.ExecuteScalarAsync(Ct) is true)
            {
                return;
            }

            await Task.Delay(25, Ct);
        }

        Assert.True(statement.IsCompleted, "the statement neither finished nor waited for a lock within 5 s");
    }

    private async Task<int> InsertAsync(string title, string content)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(Ct);
        return await InsertAsync(connection, title, content);
    }

    private static async Task<int> InsertAsync(NpgsqlConnection connection, string title, string content)
    {
        await using var command = new NpgsqlCommand("INSERT INTO vector_documents (title, content) VALUES (@title, @content) RETURNING id", connection);
        command.Parameters.AddWithValue("title", title);
        command.Parameters.AddWithValue("content", content);
        return (int)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task UpdateAsync(NpgsqlConnection connection, int id, string content)
    {
        await using var command = new NpgsqlCommand("UPDATE vector_documents SET content = @content WHERE id = @id", connection);
        command.Parameters.AddWithValue("content", content);
        command.Parameters.AddWithValue("id", id);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task DeleteAsync(NpgsqlConnection connection, int id)
    {
        await using var command = new NpgsqlCommand("DELETE FROM vector_documents WHERE id = @id", connection);
        command.Parameters.AddWithValue("id", id);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private async Task<string> ContentAsync(int id)
    {
        await using var command = _dataSource.CreateCommand("SELECT content FROM vector_documents WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        return (string)(await command.ExecuteScalarAsync(Ct))!;
    }
}
