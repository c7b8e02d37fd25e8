using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Production;

return await LessonHost.RunAsync<ProductionLesson>(args);
