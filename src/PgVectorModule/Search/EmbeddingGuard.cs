using PgVectorModule.Embeddings;
using PgVectorModule.Problems;

namespace PgVectorModule.Search;

/// <summary>
/// Keeps vectors from different models apart. Comparing a query embedded by one model with documents embedded
/// by another gives meaningless distances (or, with another dimension, PostgreSQL's "different vector
/// dimensions" error), so every write and search first checks what the table records.
/// </summary>
public static class EmbeddingGuard
{
    /// <summary>How a user re-embeds a table, said for the lessons and for the bench alike.</summary>
    private const string ReEmbed = "for the lessons, run lesson 04 again: scripts/lesson.sh 04; for the bench, run the command again, it reloads its own schema";

    /// <summary>
    /// Records the model that filled the table, in one statement: an upsert, so two loaders recording at once both
    /// succeed (a read, then an insert, would let both see no row and one fail on the key), and no query is compiled
    /// for a single row the table's loader writes once.
    /// </summary>
    public static async Task RecordAsync(SearchDbContext db, EmbeddingIdentity identity, TimeProvider? clock = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(identity);
        var recordedAt = (clock ?? TimeProvider.System).GetUtcNow();
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO embedding_models (table_name, provider, model, dimensions, recorded_at)
            VALUES ({VectorDocumentConfiguration.TableName}, {identity.Provider}, {identity.Model}, {identity.Dimensions}, {recordedAt})
            ON CONFLICT (table_name) DO UPDATE
            SET provider = excluded.provider, model = excluded.model, dimensions = excluded.dimensions, recorded_at = excluded.recorded_at
            """, cancellationToken);
    }

    /// <summary>Throws one clear sentence when the table holds vectors from another model or dimension.</summary>
    public static async Task EnsureCompatibleAsync(SearchDbContext db, EmbeddingIdentity identity, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(identity);
        var stored = await db.EmbeddingModels.AsNoTracking()
            .SingleOrDefaultAsync(r => r.TableName == VectorDocumentConfiguration.TableName, cancellationToken);
        if (stored is not null && (stored.Model != identity.Model || stored.Dimensions != identity.Dimensions))
        {
            throw Mismatch(new EmbeddingIdentity(stored.Provider, stored.Model, stored.Dimensions), identity);
        }
    }

    /// <summary>Checks one vector against the table's dimension before it reaches PostgreSQL.</summary>
    public static void EnsureDimension(ReadOnlyMemory<float> vector, int expected, EmbeddingIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        if (vector.Length != expected)
        {
            throw new SetupException(
                $"A {vector.Length}-dimension vector cannot go into {VectorDocumentConfiguration.TableName}.embedding, which is vector({expected}) " +
                $"for {identity}. Embed with the same model and dimension as the table, or re-embed the table with the new model " +
                $"({ReEmbed}).",
                ExitCodes.EmbeddingMismatch);
        }
    }

    internal static SetupException Mismatch(EmbeddingIdentity stored, EmbeddingIdentity configured) =>
        new($"{VectorDocumentConfiguration.TableName} holds vectors made by {stored}, but the configured embedding model is {configured}; " +
            $"vectors from different models cannot be compared. Re-embed the table with the configured model ({ReEmbed}), " +
            $"or switch back to {stored.Model} ({SettingsFor(stored)}).",
            ExitCodes.EmbeddingMismatch);

    /// <summary>The variables that select a model again: both local models share EMBEDDING_PROVIDER=local.</summary>
    private static string SettingsFor(EmbeddingIdentity identity) =>
        identity.Provider == EmbeddingProviderNames.Local
            ? $"EMBEDDING_PROVIDER={identity.Provider} and LOCAL_EMBEDDING_MODEL={identity.Model}"
            : $"EMBEDDING_PROVIDER={identity.Provider}";
}
