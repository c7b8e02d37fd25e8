using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson02;

return await LessonHost.RunAsync<CrudLesson>(args);
