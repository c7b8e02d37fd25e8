using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson01;

return await LessonHost.RunAsync<EfCoreBasicsLesson>(args);
