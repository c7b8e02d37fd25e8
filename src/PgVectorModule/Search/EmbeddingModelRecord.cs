using Microsoft.EntityFrameworkCore.Metadata.Builders;
using PgVectorModule.Configuration;

namespace PgVectorModule.Search;

/// <summary>Which embedding model and dimension produced the vectors stored in a table (table <c>embedding_models</c>).</summary>
public class EmbeddingModelRecord
{
    public required string TableName { get; set; }
    public required string Provider { get; set; }
    public required string Model { get; set; }
    public int Dimensions { get; set; }
    public DateTimeOffset RecordedAt { get; set; }
}

internal sealed class EmbeddingModelRecordConfiguration : IEntityTypeConfiguration<EmbeddingModelRecord>
{
    public void Configure(EntityTypeBuilder<EmbeddingModelRecord> builder)
    {
        builder.ToTable("embedding_models");
        builder.HasKey(r => r.TableName);
        builder.Property(r => r.TableName).HasMaxLength(63);
        builder.Property(r => r.Provider).HasMaxLength(50);
        builder.Property(r => r.Model).HasMaxLength(200);
    }
}

/// <summary>The provider, model and dimension of the embeddings a program computes.</summary>
public sealed record EmbeddingIdentity(string Provider, string Model, int Dimensions)
{
    public override string ToString() => $"{Model} ({Dimensions} dimensions, {Provider})";
}

/// <summary>
/// Keeps vectors from different models apart. Comparing a query embedded by one model with documents embedded
/// by another gives meaningless distances (or, with another dimension, PostgreSQL's "different vector
/// dimensions" error), so every write and search first checks what the table records.
/// </summary>
public static class EmbeddingGuard
{
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
                $"for {identity}. Embed with the same model and dimension as the table, or re-embed the table with the new model by running lesson 04 again.",
                ExitCodes.EmbeddingMismatch);
        }
    }

    internal static SetupException Mismatch(EmbeddingIdentity stored, EmbeddingIdentity configured) =>
        new($"{VectorDocumentConfiguration.TableName} holds vectors made by {stored}, but the configured embedding model is {configured}; " +
            "vectors from different models cannot be compared. Re-embed the table with the configured model (run lesson 04 again: scripts/lesson.sh 04), " +
            $"or switch back to {stored.Model} ({SettingsFor(stored)}).",
            ExitCodes.EmbeddingMismatch);

    /// <summary>The variables that select a model again: both local models share EMBEDDING_PROVIDER=local.</summary>
    private static string SettingsFor(EmbeddingIdentity identity) =>
        identity.Provider == Embeddings.EmbeddingProviderNames.Local
            ? $"EMBEDDING_PROVIDER={identity.Provider} and LOCAL_EMBEDDING_MODEL={identity.Model}"
            : $"EMBEDDING_PROVIDER={identity.Provider}";
}
