using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson05;

return await LessonHost.RunAsync<VectorSearchLesson>(args);
