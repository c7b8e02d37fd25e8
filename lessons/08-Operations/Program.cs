using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson08;

return await LessonHost.RunAsync<OperationsLesson>(args);
