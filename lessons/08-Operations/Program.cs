using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Operations;

return await LessonHost.RunAsync<OperationsLesson>(args);
