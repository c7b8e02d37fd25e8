using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Migrations;

return await LessonHost.RunAsync<MigrationsLesson>(args);
