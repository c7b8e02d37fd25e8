using System.Text.Json.Nodes;
using PgVectorModule.Lessons;
using PgVectorModule.Problems;
using PgVectorModule.Tests.Infrastructure;

namespace PgVectorModule.Tests.Reliability;

/// <summary>
/// The local model on a machine without ONNX Runtime's native library (an Intel Mac, Windows without the Visual C++
/// runtime, a build that lost the file): a copy of lesson 04's build with libonnxruntime removed, run as a learner would.
/// </summary>
public class NativeLibraryTests(TestDatabase database) : IClassFixture<TestDatabase>
{
    [Fact]
    public async Task A_lesson_whose_onnx_runtime_library_is_missing_says_so_in_one_sentence_with_its_own_exit_code()
    {
        var built = Path.GetDirectoryName(LessonProcess.AssemblyPath(LessonCatalog.Get("04")))!;
        var copy = Directory.CreateTempSubdirectory("lesson04-without-onnxruntime-").FullName;
        try
        {
            foreach (var file in Directory.EnumerateFiles(built, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(copy, Path.GetRelativePath(built, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }

            var removed = Directory.EnumerateFiles(copy, "*onnxruntime*", SearchOption.AllDirectories)
                .Where(f => Path.GetFileName(f) is var name && (name.StartsWith("libonnxruntime", StringComparison.Ordinal) || name.Equals("onnxruntime.dll", StringComparison.OrdinalIgnoreCase)))
                .ToList();
            Assert.NotEmpty(removed);
            removed.ForEach(File.Delete);
            // And their lines in the .deps.json, as on a machine the package ships no library for (an Intel Mac): otherwise
            // the .NET host itself refuses to start, before any of the lesson's code runs.
            var deps = Directory.GetFiles(copy, "*.deps.json").Single();
            var manifest = JsonNode.Parse(await File.ReadAllTextAsync(deps, TestContext.Current.CancellationToken))!;
            foreach (var targets in manifest["targets"]!.AsObject().Select(t => t.Value!.AsObject()))
            {
                foreach (var library in targets.Select(l => l.Value).OfType<JsonObject>())
                {
                    if (library["runtimeTargets"] is JsonObject runtimeTargets)
                    {
                        foreach (var path in runtimeTargets.Select(p => p.Key).Where(k => k.Contains("onnxruntime", StringComparison.Ordinal)).ToList())
                        {
                            runtimeTargets.Remove(path);
                        }
                    }
                }
            }

            await File.WriteAllTextAsync(deps, manifest.ToJsonString(), TestContext.Current.CancellationToken);

            // Uncached, so the lesson needs the model: with every vector in the cache it would not load it at all.
            var result = await LessonProcess.RunAssemblyAsync(Path.Combine(copy, Path.GetFileName(LessonProcess.AssemblyPath(LessonCatalog.Get("04")))),
                new Dictionary<string, string> { ["DATABASE_URL"] = database.ConnectionString.ConnectionString, ["EMBEDDING_CACHE"] = "off" });

            Assert.True(result.ExitCode == ExitCodes.LocalModelUnavailable, $"exit {result.ExitCode}:\n{result.Output}");
            Assert.Contains("The local embedding model cannot load ONNX Runtime's native library (libonnxruntime.so", result.Text, StringComparison.Ordinal);
            Assert.Contains("or use EMBEDDING_PROVIDER=openai", result.Text, StringComparison.Ordinal);
            OneSentence.AssertNoCrash(result.Output);
            Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM lesson04.vector_documents"));
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }
}
