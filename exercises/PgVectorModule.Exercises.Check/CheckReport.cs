using System.Text;

namespace PgVectorModule.Exercises.Check;

/// <summary>How one exercise's result reads: one line when it passes; when not, what was expected, what came back, the hint.</summary>
public static class CheckReport
{
    public static string Line(Exercise exercise, CheckResult result)
    {
        ArgumentNullException.ThrowIfNull(exercise);
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        text.AppendLine($"  {(result.Passed ? "passed " : "not yet")}  {exercise.Id} {exercise.Title}");
        if (!result.Passed)
        {
            text.AppendLine($"           expected: {result.Expected}");
            text.AppendLine($"           got:      {result.Got}");
            text.AppendLine($"           hint:     {exercise.Hint}");
            text.AppendLine($"           where:    {exercise.Where} (practises lesson {exercise.Lesson}, {exercise.Practises})");
        }

        return text.ToString();
    }
}
