using PgVectorModule.Bench.Infrastructure;

namespace PgVectorModule.Bench;

public static class IngestCommand
{
    public static Task<int> RunAsync(BenchContext context, BenchArguments args, CancellationToken cancellationToken) =>
        throw new Configuration.SetupException("ingest is not built yet.", Configuration.ExitCodes.Failed);
}
