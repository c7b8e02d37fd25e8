using System.Reflection;
using ArchUnitNET.Loader;
using ArchUnitNET.xUnitV3;
using PgVectorModule.Bench;
using static ArchUnitNET.Fluent.ArchRuleDefinition;
using ModuleArchitecture = ArchUnitNET.Domain.Architecture;

namespace PgVectorModule.Tests.Architecture;

/// <summary>
/// The module's dependency rules, read from the compiled assemblies: the library stands alone, the lessons use only
/// its public API, and the library's namespaces depend on each other one way only.
/// </summary>
public sealed class DependencyRulesTests
{
    private static readonly Assembly Library = typeof(ModuleSettings).Assembly;
    private static readonly Assembly Bench = typeof(BenchApp).Assembly;

    /// <summary>Every lesson the tests were built with (Lesson01.EfCoreBasics.dll ...), found by name so a new lesson is checked too.</summary>
    private static readonly Assembly[] Lessons = Directory.GetFiles(AppContext.BaseDirectory, "Lesson??.*.dll")
        .Order(StringComparer.Ordinal)
        .Select(path => Assembly.Load(AssemblyName.GetAssemblyName(path)))
        .ToArray();

    private static readonly ModuleArchitecture Module =
        new ArchLoader().LoadAssemblies([Library, Bench, .. Lessons]).Build();

    [Fact]
    public void Every_lesson_is_checked()
    {
        Assert.True(Lessons.Length >= 9, $"{Lessons.Length} lesson assemblies found in {AppContext.BaseDirectory}");
    }

    [Fact]
    public void The_library_references_neither_the_lessons_nor_the_bench()
    {
        var referenced = Library.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.DoesNotContain(Bench.GetName().Name, referenced);
        Assert.DoesNotContain(referenced, name => name!.StartsWith("Lesson", StringComparison.Ordinal));

        Types().That().ResideInAssembly(Library).Should()
            .NotDependOnAny(Types().That().ResideInAssembly(Bench, Lessons))
            .Check(Module);
    }

    [Fact]
    public void The_exercises_stand_apart_from_the_library_and_the_lessons()
    {
        // The library and the lessons never use the exercises; the learner's exercises and their model use neither the
        // library nor a lesson (only Npgsql, Pgvector and EF Core), so nothing a learner writes can break a lesson.
        var exercises = new[] { "PgVectorModule.Exercises", "PgVectorModule.Exercises.Model", "PgVectorModule.Exercises.Solutions" }
            .Select(name => Assembly.Load(name)).ToList();
        foreach (var assembly in Lessons.Append(Library).Append(Bench))
        {
            Assert.DoesNotContain(assembly.GetReferencedAssemblies(), a => a.Name!.StartsWith("PgVectorModule.Exercises", StringComparison.Ordinal));
        }

        foreach (var assembly in exercises)
        {
            var referenced = assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
            Assert.DoesNotContain(Library.GetName().Name, referenced);
            Assert.DoesNotContain(referenced, name => name.StartsWith("Lesson", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Lessons_use_only_the_librarys_public_api()
    {
        Types().That().ResideInAssembly(Lessons[0], Lessons[1..]).Should()
            .NotDependOnAny(Types().That().ResideInAssembly(Library).And().AreNotPublic())
            .Check(Module);
    }

    [Fact]
    public void The_bench_does_not_use_the_lesson_host()
    {
        Types().That().ResideInAssembly(Bench).Should()
            .NotDependOnAny(Types().That().ResideInNamespace("PgVectorModule.Lessons").And().ResideInAssembly(Library))
            .Check(Module);
    }

    [Fact]
    public void The_librarys_namespaces_depend_on_each_other_one_way()
    {
        var graph = NamespaceGraph(Library);
        // The rule has something to judge: the library's main namespaces and the edges between them are all read.
        Assert.Superset(new HashSet<string>(["PgVectorModule", "PgVectorModule.Configuration", "PgVectorModule.Data", "PgVectorModule.Embeddings",
            "PgVectorModule.Search", "PgVectorModule.Lessons", "PgVectorModule.Problems"]), graph.Keys.ToHashSet());
        Assert.Contains("PgVectorModule.Embeddings", graph["PgVectorModule.Search"]);
        // Failures a user can fix live in one namespace that every other one may use and that uses none of them.
        Assert.Empty(graph["PgVectorModule.Problems"]);

        var cycles = NamespaceCycles.Find(graph);
        Assert.True(cycles.Count == 0, "Namespaces that depend on each other: " + string.Join("; ", cycles.Select(c => string.Join(" <-> ", c))));
    }

    [Fact]
    public void The_cycle_finder_finds_a_cycle_that_is_there()
    {
        var graph = new Dictionary<string, HashSet<string>>
        {
            ["A"] = ["B"],
            ["B"] = ["C"],
            ["C"] = ["A", "D"],
            ["D"] = [],
        };
        Assert.Equal([["A", "B", "C"]], NamespaceCycles.Find(graph));
        graph["C"].Remove("A");
        Assert.Empty(NamespaceCycles.Find(graph));
    }

    /// <summary>Namespace to the other module namespaces its types use (fields, signatures, calls, attributes, base types).</summary>
    private static Dictionary<string, HashSet<string>> NamespaceGraph(Assembly assembly)
    {
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var type in Module.Types.Where(t => t.Assembly.FullName == assembly.FullName && IsModule(t.Namespace.FullName)))
        {
            var from = type.Namespace.FullName;
            var targets = graph.TryGetValue(from, out var set) ? set : graph[from] = new HashSet<string>(StringComparer.Ordinal);
            foreach (var dependency in type.Dependencies)
            {
                // Compiler-generated types (<PrivateImplementationDetails>, which holds u8 literals and string-switch hashes) have no namespace.
                var to = dependency.Target.Namespace?.FullName;
                if (to is not null && to != from && IsModule(to) && dependency.Target.Assembly.FullName == assembly.FullName)
                {
                    targets.Add(to);
                }
            }
        }

        return graph;
    }

    private static bool IsModule(string ns) => ns == "PgVectorModule" || ns.StartsWith("PgVectorModule.", StringComparison.Ordinal);
}
