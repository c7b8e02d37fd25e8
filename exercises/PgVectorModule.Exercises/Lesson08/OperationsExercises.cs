using NpgsqlTypes;
using PgVectorModule.Exercises.Model;

namespace PgVectorModule.Exercises.Lesson08;

/// <summary>Lesson 08's exercises: read-your-writes routing, and a query that is safe behind pgBouncer. Check: <c>scripts/check.sh 08</c>.</summary>
public static class OperationsExercises
{
    /// <summary>
    /// 08.1: where a user's read goes. <paramref name="lastWrite"/> is the WAL position (LSN) of the user's last write,
    /// or null when the user has not written; <paramref name="standbyReplayed"/> is how far the standby has replayed
    /// (<c>pg_last_wal_replay_lsn()</c>). The user must see their own write; every other read goes to the standby.
    /// </summary>
    public static Route ChooseRoute(NpgsqlLogSequenceNumber? lastWrite, NpgsqlLogSequenceNumber standbyReplayed)
    {
        // TODO: compare the two positions.
        throw new NotImplementedException("TODO: write ChooseRoute");
    }

    /// <summary>
    /// 08.2: counts the rows of the table <c>notes</c> in <paramref name="schema"/> over a connection that, as behind
    /// pgBouncer in transaction mode, the next client reuses as it is: nothing this method does may stay set on it.
    /// </summary>
    public static Task<long> CountNotesAsync(NpgsqlDataSource dataSource, string schema)
    {
        // TODO: name the schema in the query (quoted), or SET LOCAL search_path inside a transaction; never a plain SET.
        throw new NotImplementedException("TODO: write CountNotesAsync");
    }
}
