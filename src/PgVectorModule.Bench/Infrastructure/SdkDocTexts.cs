using System.Xml.Linq;

namespace PgVectorModule.Bench.Infrastructure;

/// <summary>
/// Real English text every learner already has: the API documentation the .NET SDK installs beside its reference
/// assemblies (packs/*.App.Ref/&lt;version&gt;/ref/&lt;tfm&gt;/*.xml). Each summary, remark, parameter, return value and
/// exception text of four words or more is one passage; cross-references become the name they point at. About
/// 90,000 to 100,000 distinct passages for .NET 10, nothing downloaded, the same on every machine with the same SDK.
/// </summary>
public static class SdkDocTexts
{
    private static readonly string[] Parts = ["summary", "remarks", "returns", "param", "typeparam", "exception", "value"];

    /// <summary>The SDK's root folder: the running runtime lives in &lt;root&gt;/shared/Microsoft.NETCore.App/&lt;version&gt;/.</summary>
    public static string DotnetRoot() =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "..", "..", ".."));

    public static IReadOnlyList<string> Files(string dotnetRoot)
    {
        var version = Environment.Version;
        var files = new List<string>();
        foreach (var pack in new[] { "Microsoft.NETCore.App.Ref", "Microsoft.AspNetCore.App.Ref" })
        {
            var packFolder = Path.Combine(dotnetRoot, "packs", pack);
            if (!Directory.Exists(packFolder))
            {
                continue;
            }

            // The reference pack of the running runtime's major version, newest patch first.
            var versionFolder = Directory.GetDirectories(packFolder)
                .Where(d => Path.GetFileName(d).StartsWith($"{version.Major}.", StringComparison.Ordinal))
                .OrderByDescending(d => Version.TryParse(Path.GetFileName(d).Split('-')[0], out var v) ? v : new Version())
                .FirstOrDefault();
            if (versionFolder is null)
            {
                continue;
            }

            files.AddRange(Directory.GetFiles(versionFolder, "*.xml", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        }

        return files;
    }

    /// <summary>Distinct passages, in file and document order.</summary>
    public static IReadOnlyList<string> Read(IEnumerable<string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var texts = new List<string>();
        foreach (var file in files)
        {
            XDocument document;
            try
            {
                document = XDocument.Load(file);
            }
            catch (System.Xml.XmlException)
            {
                continue;                                       // not an API documentation file
            }

            foreach (var part in document.Descendants("member").Elements().Where(e => Parts.Contains(e.Name.LocalName)))
            {
                var text = string.Join(' ', Flatten(part).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
                if (text.Split(' ').Length >= 4 && seen.Add(text))
                {
                    texts.Add(text);
                }
            }
        }

        return texts;
    }

    /// <summary>The element's text, with &lt;see cref="T:System.String"/&gt; and its kin read as the name they point at.</summary>
    private static string Flatten(XElement element) => string.Concat(element.Nodes().Select(node => node switch
    {
        XText text => text.Value,
        XElement { IsEmpty: true } reference => " " + Name(reference) + " ",
        XElement inner => " " + Flatten(inner) + " ",
        _ => "",
    }));

    private static string Name(XElement reference)
    {
        var target = (string?)reference.Attribute("cref") ?? (string?)reference.Attribute("name") ?? (string?)reference.Attribute("langword") ?? "";
        var name = target.Contains(':', StringComparison.Ordinal) ? target[(target.IndexOf(':', StringComparison.Ordinal) + 1)..] : target;
        name = name.Split('(')[0];
        return name.Contains('.', StringComparison.Ordinal) ? name[(name.LastIndexOf('.') + 1)..] : name;
    }
}
