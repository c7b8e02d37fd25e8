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

    public static async Task RecordAsync(SearchDbContext db, EmbeddingIdentity identity, TimeProvider? clock = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(identity);
        var record = await db.EmbeddingModels.FindAsync([VectorDocumentConfiguration.TableName], cancellationToken);
        if (record is null)
        {
            record = new EmbeddingModelRecord { TableName = VectorDocumentConfiguration.TableName, Provider = identity.Provider, Model = identity.Model };
            db.EmbeddingModels.Add(record);
        }

        record.Provider = identity.Provider;
        record.Model = identity.Model;
        record.Dimensions = identity.Dimensions;
        record.RecordedAt = (clock ?? TimeProvider.System).GetUtcNow();
        await db.SaveChangesAsync(cancellationToken);
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
