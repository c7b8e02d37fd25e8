using PgVectorModule.Lessons;
using PgVectorModule.Lessons.Lesson10;

return await LessonHost.RunAsync<SearchToAnswersLesson>(args);
