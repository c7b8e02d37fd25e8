using PgVectorModule.Lessons;
using PgVectorModule.Lessons.EfCoreBasics;

return await LessonHost.RunAsync<EfCoreBasicsLesson>(args);
