namespace PgVectorModule.Exercises.Model;

/// <summary>A row of the table <c>items</c> (lesson 04's exercises): an id, a title and an 8-dimension embedding.</summary>
public sealed record Item(long Id, string Title, float[] Embedding);

/// <summary>Where a read goes (lesson 08): the primary, or a standby that replays the primary's WAL.</summary>
public enum Route
{
    Primary,
    Standby,
}
