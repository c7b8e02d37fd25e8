using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson04;

return await LessonHost.RunAsync<PgvectorSetupLesson>(args);
