using PgVectorModule.Lessons;
using PgVectorModule.Lessons.VectorSearch;

return await LessonHost.RunAsync<VectorSearchLesson>(args);
