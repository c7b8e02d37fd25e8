using System.Runtime.InteropServices;
using PgVectorModule.Problems;

namespace PgVectorModule.Embeddings;

/// <summary>
/// ONNX Runtime's native library (libonnxruntime.so, libonnxruntime.dylib, onnxruntime.dll), which the local model needs
/// and which can be missing: Intel Macs have had no osx-x64 build since ONNX Runtime 1.24, Windows needs the Visual C++
/// runtime it links against, and a copied or trimmed build can lose the file. Any of these becomes one sentence with the
/// fix and exit code <see cref="ExitCodes.LocalModelUnavailable"/>, not a TypeInitializationException.
/// </summary>
internal static class OnnxRuntimeLibrary
{
    /// <summary>True when <paramref name="exception"/> (or one inside it) says the native library could not be loaded.</summary>
    public static bool IsUnavailable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
            {
                return true;
            }
        }

        return false;
    }

    public static SetupException Unavailable(Exception exception)
    {
        var offline = $"or use EMBEDDING_PROVIDER={EmbeddingProviderNames.OpenAI} (with OPENAI_API_KEY, or OPENAI_BASE_URL for a server on your network)";
        var message = OperatingSystem.IsMacOS() && RuntimeInformation.ProcessArchitecture == Architecture.X64
            ? "The local embedding model cannot run on an Intel Mac: ONNX Runtime has shipped no native library for macOS on x64 since version 1.24; " +
              $"set EMBEDDING_PROVIDER={EmbeddingProviderNames.OpenAI} (with OPENAI_API_KEY, or OPENAI_BASE_URL for a server that speaks the embeddings API), or run the course on Apple silicon, Linux or Windows."
            : OperatingSystem.IsWindows()
                ? "The local embedding model cannot load ONNX Runtime's native library onnxruntime.dll: install the Microsoft Visual C++ Redistributable " +
                  $"(x64, from Microsoft's download page for \"Visual C++ Redistributable\") and run again, {offline}."
                : $"The local embedding model cannot load ONNX Runtime's native library ({NativeName()}, expected in {NativeFolder()}): rebuild the lesson " +
                  $"(dotnet build restores it from the Microsoft.ML.OnnxRuntime package), {offline}.";
        return new SetupException(message, ExitCodes.LocalModelUnavailable, exception);
    }

    private static string NativeName() => OperatingSystem.IsMacOS() ? "libonnxruntime.dylib" : "libonnxruntime.so";

    private static string NativeFolder() =>
        Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native");
}
