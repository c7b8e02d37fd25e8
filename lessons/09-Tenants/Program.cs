using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Tenants;

return await LessonHost.RunAsync<TenantsLesson>(args);
