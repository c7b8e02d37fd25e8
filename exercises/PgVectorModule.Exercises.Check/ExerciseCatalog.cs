namespace PgVectorModule.Exercises.Check;

/// <summary>Every exercise, in lesson order: the one list scripts/check.sh, the lesson READMEs and the tests read.</summary>
public static class ExerciseCatalog
{
    public static IReadOnlyList<Exercise> All { get; } =
    [
        .. Lesson01To03Checks.Lesson01(),
        .. Lesson01To03Checks.Lesson02(),
        .. Lesson01To03Checks.Lesson03(),
        .. Lesson04Checks.All(),
        .. Lesson05Checks.All(),
        .. Lesson06Checks.All(),
        .. Lesson07To09Checks.Lesson07(),
        .. Lesson07To09Checks.Lesson08(),
        .. Lesson07To09Checks.Lesson09(),
        .. Lesson10Checks.All(),
        .. Lesson11Checks.All(),
    ];

    public static IReadOnlyList<Exercise> ForLesson(string lesson) => All.Where(e => e.Lesson == lesson).ToList();

    public static Exercise Get(string id) => All.Single(e => e.Id == id);
}
