using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson11;

return await LessonHost.RunAsync<ScaleOutLesson>(args);
