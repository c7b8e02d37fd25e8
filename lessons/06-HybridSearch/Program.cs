using PgVectorModule.Lessons;
using PgVectorModule.Lessons.HybridSearch;

return await LessonHost.RunAsync<HybridSearchLesson>(args);
