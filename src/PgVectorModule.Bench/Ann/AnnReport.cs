using PgVectorModule.Bench.Infrastructure;

namespace PgVectorModule.Bench.Ann;

/// <summary>What ann writes to ann.json: the run's settings, the machine, both index builds, every setting measured and the verdicts.</summary>
public sealed record AnnReport(int Rows, int Dimensions, int Queries, int Seed, string Vectors, int K, int HnswM, int HnswEfConstruction, string MaintenanceWorkMem,
    MachineInfo Machine, AnnExact Exact, IndexBuild Hnsw, IndexBuild IvfFlat, IReadOnlyList<AnnResult> Results, int? CheapestHnswEfSearch, int BestIvfFlatProbes,
    IReadOnlyList<string> Verdicts);
