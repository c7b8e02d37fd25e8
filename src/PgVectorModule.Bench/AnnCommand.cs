using PgVectorModule.Bench.Infrastructure;

namespace PgVectorModule.Bench;

public static class AnnCommand
{
    public static Task<int> RunAsync(BenchContext context, BenchArguments args, CancellationToken cancellationToken) =>
        throw new Configuration.SetupException("ann is not built yet.", Configuration.ExitCodes.Failed);
}
