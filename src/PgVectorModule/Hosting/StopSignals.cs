using System.Runtime.InteropServices;
using PgVectorModule.Problems;

namespace PgVectorModule.Hosting;

/// <summary>
/// Turns every request to stop into one cancellation: Ctrl+C (SIGINT), Ctrl+\ (SIGQUIT), SIGTERM (kill, an IDE's stop
/// button, CI cancellation, docker stop) and SIGHUP (a closed terminal, a dropped SSH session). Without it .NET ends the
/// process on SIGTERM or SIGHUP at once, and whatever the run started (a server, a transaction, a folder) is left as it
/// was. With it the run unwinds as for Ctrl+C: the caller's <c>finally</c> and <c>await using</c> blocks stop what they
/// started, and the host returns <see cref="Problems.ExitCodes.Cancelled"/>.
/// </summary>
public sealed class StopSignals : IDisposable
{
    private static readonly PosixSignal[] Handled = [PosixSignal.SIGINT, PosixSignal.SIGQUIT, PosixSignal.SIGTERM, PosixSignal.SIGHUP];

    private readonly List<PosixSignalRegistration> _registrations = [];

    private StopSignals(CancellationTokenSource cancellation)
    {
        foreach (var signal in Handled)
        {
            try
            {
                _registrations.Add(PosixSignalRegistration.Create(signal, context =>
                {
                    // Keep the process alive: the run unwinds and the host returns its own exit code.
                    context.Cancel = true;
                    try
                    {
                        cancellation.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                        // The run has already ended.
                    }
                }));
            }
            catch (PlatformNotSupportedException)
            {
                // Windows knows only some of these (Ctrl+C, Ctrl+Break, closing the console, shutdown).
            }
        }
    }

    /// <summary>Cancels <paramref name="cancellation"/> on any of the signals until disposed.</summary>
    public static StopSignals Cancel(CancellationTokenSource cancellation)
    {
        ArgumentNullException.ThrowIfNull(cancellation);
        return new StopSignals(cancellation);
    }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _registrations.Clear();
    }
}
