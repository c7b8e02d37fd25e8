using Microsoft.EntityFrameworkCore.Diagnostics;

namespace PgVectorModule.Exercises.Model;

/// <summary>A note, as lessons 01 to 03 store documents: the table <c>notes</c> the checks create.</summary>
public sealed class Note
{
    public long Id { get; set; }
    public required string Title { get; set; }
    public required string Category { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>A product of a shop's catalogue: the table <c>products</c>, keyed by its SKU.</summary>
public sealed class Product
{
    public required string Sku { get; set; }
    public required string Name { get; set; }
    public required string Category { get; set; }
    public decimal Price { get; set; }
}

/// <summary>
/// The EF Core context of the exercises of lessons 01 to 03. The checks make the tables (in a schema of their own, which
/// the connection's search path names) and hand the exercise a context; this file is not an exercise.
/// </summary>
public sealed class ExerciseContext(DbContextOptions<ExerciseContext> options) : DbContext(options)
{
    public DbSet<Note> Notes => Set<Note>();
    public DbSet<Product> Products => Set<Product>();

    public static ExerciseContext Create(NpgsqlDataSource dataSource, params IInterceptor[] interceptors) =>
        new(new DbContextOptionsBuilder<ExerciseContext>().UseNpgsql(dataSource).AddInterceptors(interceptors).Options);

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Note>(note =>
        {
            note.ToTable("notes");
            note.Property(n => n.Id).HasColumnName("id");
            note.Property(n => n.Title).HasColumnName("title");
            note.Property(n => n.Category).HasColumnName("category");
            note.Property(n => n.CreatedAt).HasColumnName("created_at");
        });
        modelBuilder.Entity<Product>(product =>
        {
            product.ToTable("products");
            product.HasKey(p => p.Sku);
            product.Property(p => p.Sku).HasColumnName("sku");
            product.Property(p => p.Name).HasColumnName("name");
            product.Property(p => p.Category).HasColumnName("category");
            product.Property(p => p.Price).HasColumnName("price");
        });
    }
}
