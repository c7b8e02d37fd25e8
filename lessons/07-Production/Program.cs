using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson07;

return await LessonHost.RunAsync<ProductionLesson>(args);
