using PgVectorModule.Bench;

return await BenchApp.RunAsync(args);
