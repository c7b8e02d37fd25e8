using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson06;

return await LessonHost.RunAsync<HybridSearchLesson>(args);
