using PgVectorModule.Lessons;
using PgVectorModule.Lessons.PgvectorSetup;

return await LessonHost.RunAsync<PgvectorSetupLesson>(args);
