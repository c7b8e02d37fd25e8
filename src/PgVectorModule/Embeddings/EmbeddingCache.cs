using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using PgVectorModule.Problems;

namespace PgVectorModule.Embeddings;

/// <summary>
/// Vectors kept on disk between runs, so the lessons, the tests and the bench embed a text once per model. One folder
/// per <see cref="EmbeddingFingerprint"/> (a changed model, file, dimension, long-text handling or prefix is another
/// folder: nothing stale is ever read), and in it immutable segment files of fixed-size records: the SHA-256 of the exact
/// text the model read, what the model reported, the floats, and a checksum.
/// <para>
/// Safe with several processes at once without any lock: a writer puts its new vectors in a temporary file and renames
/// it into place, so a reader sees a whole segment or none; a record whose checksum does not match (a file cut short by
/// a crash or a full disk) is skipped and its text embedded again. When a folder holds more than
/// <see cref="MaxSegments"/> segments, the writer merges them into one (again through a rename) and deletes only the
/// segments it read, so a record is never lost to two writers merging at once.
/// </para>
/// </summary>
public sealed class EmbeddingCache
{
    public const string SegmentExtension = ".vectors";

    /// <summary>Segments a folder may hold before a writer merges them.</summary>
    public const int MaxSegments = 16;

    private const string DescriptionFile = "model.txt";
    private const int KeyLength = 32;
    private const int ChecksumLength = 8;
    private const int HeaderLength = 8 + 4 + 32;              // magic, dimensions, fingerprint hash
    private const int MetadataLength = 12;                    // token count, chunks, flags

    private static ReadOnlySpan<byte> Magic => "PGVMVEC1"u8;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, CachedEmbedding> _known = new(StringComparer.Ordinal);
    private readonly HashSet<string> _segmentsRead = new(StringComparer.Ordinal);
    private readonly byte[] _fingerprintHash;
    private readonly string _description;
    private readonly int _dimensions;
    private readonly int _recordLength;

    private EmbeddingCache(string folder, EmbeddingFingerprint fingerprint, bool required)
    {
        Folder = folder;
        Required = required;
        _dimensions = fingerprint.Dimensions;
        _fingerprintHash = Convert.FromHexString(fingerprint.Hash);
        _description = fingerprint.Describe();
        _recordLength = RecordLength(fingerprint.Dimensions);
    }

    /// <summary>The model's folder: the root, the collection, then <see cref="EmbeddingFingerprint.FolderName"/>.</summary>
    public string Folder { get; }

    /// <summary>See <see cref="EmbeddingCacheSettings.Required"/>.</summary>
    public bool Required { get; }

    /// <summary>Why vectors computed in this run were not saved (a folder that cannot be written), or null.</summary>
    public string? WriteProblem { get; private set; }

    /// <summary>Distinct texts the folder holds, as far as this process has read it.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                ReadNewSegments();
                return _known.Count;
            }
        }
    }

    /// <summary>
    /// The cache of one model. Opening reads nothing yet; a required folder (the bench's --cache) that cannot be
    /// created is refused here, before any work, with one sentence.
    /// </summary>
    public static EmbeddingCache Open(EmbeddingCacheSettings settings, EmbeddingFingerprint fingerprint)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(fingerprint);
        var folder = Path.Combine(settings.Folder, settings.Collection ?? "", fingerprint.FolderName);
        var cache = new EmbeddingCache(folder, fingerprint, settings.Required);
        if (settings.Required)
        {
            try
            {
                cache.EnsureFolder();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw cache.Refused(e);
            }
        }

        return cache;
    }

    /// <summary>The key of a text: the SHA-256 of its UTF-8 bytes, in hex.</summary>
    public static string KeyOf(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public bool TryGet(string text, out CachedEmbedding embedding)
    {
        ArgumentNullException.ThrowIfNull(text);
        var found = Find([text]);
        return found.TryGetValue(text, out embedding!);
    }

    /// <summary>The cached vectors of those of <paramref name="texts"/> the folder holds, by text.</summary>
    public IReadOnlyDictionary<string, CachedEmbedding> Find(IReadOnlyCollection<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var keys = texts.Distinct(StringComparer.Ordinal).Select(t => (Text: t, Key: KeyOf(t))).ToList();
        lock (_gate)
        {
            // Segments never change once in place: a segment read before holds nothing new.
            if (keys.Any(k => !_known.ContainsKey(k.Key)))
            {
                ReadNewSegments();
            }

            var found = new Dictionary<string, CachedEmbedding>(StringComparer.Ordinal);
            foreach (var (text, key) in keys)
            {
                if (_known.TryGetValue(key, out var embedding))
                {
                    found[text] = embedding;
                }
            }

            return found;
        }
    }

    /// <summary>
    /// Saves vectors as one new segment. A folder that cannot be written is passed over (<see cref="WriteProblem"/> says
    /// why; the vectors were computed and are used all the same), unless it is <see cref="Required"/>.
    /// </summary>
    public void Save(IReadOnlyList<KeyValuePair<string, CachedEmbedding>> embeddings)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        if (embeddings.FirstOrDefault(e => e.Value.Vector.Length != _dimensions) is { Key: not null } wrong)
        {
            throw new ArgumentException($"A vector of {wrong.Value.Vector.Length} dimensions in a {_dimensions}-dimension cache.", nameof(embeddings));
        }

        lock (_gate)
        {
            var records = new List<(string Key, CachedEmbedding Embedding)>();
            foreach (var (text, embedding) in embeddings)
            {
                var key = KeyOf(text);
                if (_known.TryAdd(key, embedding))
                {
                    records.Add((key, embedding));
                }
            }

            if (records.Count == 0 || WriteProblem is not null)
            {
                return;
            }

            try
            {
                EnsureFolder();
                var name = WriteSegment(records);
                _segmentsRead.Add(name);
                MergeWhenCrowded();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (Required)
                {
                    throw Refused(e);
                }

                WriteProblem = e.Message.TrimEnd('.');
            }
        }
    }

    /// <summary>
    /// Every vector in a cache folder of one model (every segment in it), or in one segment file: what the bench's
    /// ann --vectors reads. Null when <paramref name="path"/> is neither.
    /// </summary>
    public static IReadOnlyList<float[]>? ReadVectors(string path, int dimensions)
    {
        ArgumentNullException.ThrowIfNull(path);
        IEnumerable<string> files = Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*" + SegmentExtension).Order(StringComparer.Ordinal)
            : File.Exists(path) && path.EndsWith(SegmentExtension, StringComparison.Ordinal) ? [path] : [];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var vectors = new List<float[]>();
        var anySegment = false;
        foreach (var file in files)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (FileNotFoundException)
            {
                continue;
            }

            if (bytes.Length < HeaderLength || !bytes.AsSpan(0, 8).SequenceEqual(Magic) || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)) != dimensions)
            {
                continue;
            }

            anySegment = true;
            foreach (var (key, embedding) in Records(bytes, dimensions))
            {
                if (seen.Add(key))
                {
                    vectors.Add(embedding.Vector);
                }
            }
        }

        return anySegment ? vectors : null;
    }

    private static int RecordLength(int dimensions) => KeyLength + MetadataLength + dimensions * sizeof(float) + ChecksumLength;

    /// <summary>The whole records of a segment whose checksums hold; a torn or damaged record is skipped, never read as a vector.</summary>
    private static IEnumerable<(string Key, CachedEmbedding Embedding)> Records(byte[] bytes, int dimensions)
    {
        var length = RecordLength(dimensions);
        for (var offset = HeaderLength; offset + length <= bytes.Length; offset += length)
        {
            var record = bytes.AsMemory(offset, length);
            if (!Checksum(record.Span[..^ChecksumLength]).AsSpan().SequenceEqual(record.Span[^ChecksumLength..]))
            {
                continue;
            }

            var span = record.Span;
            var meta = span.Slice(KeyLength, MetadataLength);
            var vector = MemoryMarshal.Cast<byte, float>(span.Slice(KeyLength + MetadataLength, dimensions * sizeof(float))).ToArray();
            yield return (Convert.ToHexString(span[..KeyLength]), new CachedEmbedding(vector,
                BinaryPrimitives.ReadInt32LittleEndian(meta), BinaryPrimitives.ReadInt32LittleEndian(meta[4..]), (BinaryPrimitives.ReadInt32LittleEndian(meta[8..]) & 1) == 1));
        }
    }

    private static byte[] Checksum(ReadOnlySpan<byte> content) => SHA256.HashData(content)[..ChecksumLength];

    private IEnumerable<string> Segments()
    {
        try
        {
            return Directory.EnumerateFiles(Folder, "*" + SegmentExtension).Select(Path.GetFileName).OfType<string>().ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private void ReadNewSegments()
    {
        foreach (var name in Segments())
        {
            if (!_segmentsRead.Contains(name) && ReadSegment(name) is { } records)
            {
                _segmentsRead.Add(name);
                foreach (var (key, embedding) in records)
                {
                    _known.TryAdd(key, embedding);
                }
            }
        }
    }

    /// <summary>A segment's valid records, or null when it cannot be read (merged away meanwhile, no rights) or is not this model's.</summary>
    private List<(string Key, CachedEmbedding Embedding)>? ReadSegment(string name)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(Path.Combine(Folder, name));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        if (bytes.Length < HeaderLength || !bytes.AsSpan(0, 8).SequenceEqual(Magic)
            || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)) != _dimensions || !bytes.AsSpan(12, 32).SequenceEqual(_fingerprintHash))
        {
            return null;
        }

        return Records(bytes, _dimensions).ToList();
    }

    private void EnsureFolder()
    {
        Directory.CreateDirectory(Folder);
        var description = Path.Combine(Folder, DescriptionFile);
        if (!File.Exists(description))
        {
            WriteAtomically(description, Encoding.UTF8.GetBytes(_description));
        }
    }

    /// <summary>Writes the records to a temporary file, then renames it into place; returns the segment's name.</summary>
    private string WriteSegment(IReadOnlyCollection<(string Key, CachedEmbedding Embedding)> records)
    {
        var bytes = new byte[HeaderLength + records.Count * _recordLength];
        Magic.CopyTo(bytes);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), _dimensions);
        _fingerprintHash.CopyTo(bytes.AsSpan(12));
        var offset = HeaderLength;
        foreach (var (key, embedding) in records)
        {
            var record = bytes.AsSpan(offset, _recordLength);
            Convert.FromHexString(key).CopyTo(record);
            BinaryPrimitives.WriteInt32LittleEndian(record[KeyLength..], embedding.TokenCount);
            BinaryPrimitives.WriteInt32LittleEndian(record[(KeyLength + 4)..], embedding.Chunks);
            BinaryPrimitives.WriteInt32LittleEndian(record[(KeyLength + 8)..], embedding.Truncated ? 1 : 0);
            MemoryMarshal.AsBytes(embedding.Vector.AsSpan()).CopyTo(record[(KeyLength + MetadataLength)..]);
            Checksum(record[..^ChecksumLength]).CopyTo(record[^ChecksumLength..]);
            offset += _recordLength;
        }

        // Names sort by time, so ann --vectors reads a folder in the order its vectors were made.
        var name = $"{DateTime.UtcNow:yyyyMMddHHmmssfff}-{Guid.NewGuid():N}{SegmentExtension}";
        WriteAtomically(Path.Combine(Folder, name), bytes);
        return name;
    }

    private void WriteAtomically(string path, byte[] bytes)
    {
        var temporary = Path.Combine(Folder, $".{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);                           // nothing there after the rename; a failed write's leftover otherwise
        }
    }

    /// <summary>Many small segments (one per run that embedded something new) become one, so a reader opens few files.</summary>
    private void MergeWhenCrowded()
    {
        var names = Segments().ToList();
        if (names.Count <= MaxSegments)
        {
            return;
        }

        var merged = new Dictionary<string, CachedEmbedding>(StringComparer.Ordinal);
        var read = new List<string>();
        foreach (var name in names)
        {
            if (ReadSegment(name) is { } records)
            {
                read.Add(name);
                foreach (var (key, embedding) in records)
                {
                    merged.TryAdd(key, embedding);
                }
            }
        }

        var mergedName = WriteSegment(merged.Select(p => (p.Key, p.Value)).ToList());
        _segmentsRead.Add(mergedName);
        foreach (var name in read)
        {
            File.Delete(Path.Combine(Folder, name));
        }

        // Temporary files a crashed writer left behind.
        foreach (var stale in Directory.EnumerateFiles(Folder, ".*.tmp").Where(f => File.GetLastWriteTimeUtc(f) < DateTime.UtcNow.AddDays(-1)))
        {
            File.Delete(stale);
        }
    }

    private SetupException Refused(Exception e) => new(
        $"The embedding cache {Folder} cannot be written ({e.Message.TrimEnd('.')}): choose another folder with --cache DIR (or EMBEDDING_CACHE_DIR), " +
        $"or set EMBEDDING_CACHE=off; vectors cached before are kept.", ExitCodes.FileUnavailable, e);
}
