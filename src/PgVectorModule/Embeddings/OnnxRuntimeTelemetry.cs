using System.Runtime.InteropServices;

namespace PgVectorModule.Embeddings;

/// <summary>
/// Keeps ONNX Runtime's usage telemetry off. On Linux, ONNX Runtime (1.30 and 1.31 alike) starts a telemetry client when its
/// environment is created: it writes /tmp/mat-debug-PID.log, reads /etc/machine-id, tries HTTPS uploads, and matches a
/// regular expression against the whole of /proc/self/cmdline. That last step overflows the native stack once the
/// command line passes about 60,000 characters (a long question on the command line), and the process dies with
/// "Internal CLR error" before any handler can run. A course that runs offline has no use for any of it; the
/// runtime reads ORT_DISABLE_TELEMETRY when its environment is created, so it is set before the first session.
/// </summary>
internal static class OnnxRuntimeTelemetry
{
    public const string Variable = "ORT_DISABLE_TELEMETRY";

    private static readonly Lock Gate = new();
    private static bool _done;

    public static void TurnOff()
    {
        lock (Gate)
        {
            if (_done)
            {
                return;
            }

            // The native runtime reads the C library's environment, which Environment.SetEnvironmentVariable does not
            // change on Unix; setenv does. Always 1, even over a 0 someone set: with it on, a long command line crashes.
            if (OperatingSystem.IsWindows())
            {
                Environment.SetEnvironmentVariable(Variable, "1");
            }
            else if (SetEnvironment(Variable, "1", overwrite: 1) != 0)
            {
                throw new InvalidOperationException($"setenv({Variable}) failed with errno {Marshal.GetLastPInvokeError()}.");
            }

            _done = true;
        }
    }

    // DllImport rather than LibraryImport: the generated marshalling would need unsafe code for one call at start-up.
    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SetEnvironment([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
