using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson09;

return await LessonHost.RunAsync<TenantsLesson>(args);
