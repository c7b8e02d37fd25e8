using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Crud;

return await LessonHost.RunAsync<CrudLesson>(args);
