using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson03;

return await LessonHost.RunAsync<MigrationsLesson>(args);
