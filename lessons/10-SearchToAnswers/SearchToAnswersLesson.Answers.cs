using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;
using PgVectorModule.Answers;
using PgVectorModule.Embeddings;
using Spectre.Console;

namespace PgVectorModule.Lessons.Lesson10;

/// <summary>A document after the second stage: where the first stage had it, and the second stage's score.</summary>
public sealed record RerankedHit(ParentHit Hit, int FirstRank, double Score);

public sealed partial class SearchToAnswersLesson
{
    /// <summary>The passages an answer is written from: the best chunks of the best documents after the second stage.</summary>
    public const int AnswerPassages = 3;

    /// <summary>At most this many sentences in an extractive answer.</summary>
    public const int MaxAnswerSentences = 3;

    /// <summary>
    /// Below this cosine similarity to the question a sentence is not taken into an extractive answer; when no sentence
    /// reaches it, the answer says the passages do not contain one. (all-MiniLM-L6-v2: unrelated sentences score 0 to 0.2.)
    /// </summary>
    public const double MinSimilarity = 0.3;

    /// <summary>What the chat model is told: the passages are all it may use, each sentence cites one, and it says when they fall short.</summary>
    public const string Instructions = """
        Answer the question using only the numbered passages you are given, never what you know otherwise.
        End every sentence with the number of the passage it comes from, in square brackets: [1], or [1][3] for two.
        If the passages do not contain the answer, say "The passages do not contain the answer." and nothing else.
        Answer in at most three sentences.
        """;

    /// <summary>What the chat model reads after its instructions: the numbered passages, then the question.</summary>
    public static string Prompt(string question, IReadOnlyList<RerankedHit> passages)
    {
        ArgumentNullException.ThrowIfNull(passages);
        var text = new StringBuilder("Passages:\n");
        for (var i = 0; i < passages.Count; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"[{i + 1}] {passages[i].Hit.Title}: {passages[i].Hit.Chunk}\n");
        }

        return text.Append(CultureInfo.InvariantCulture, $"\nQuestion: {question}").ToString();
    }

    private static async Task<IReadOnlyList<RerankedHit>> SecondStageAsync(Lesson lesson, string question, IReadOnlyList<ParentHit> first, CancellationToken cancellationToken)
    {
        var answers = lesson.Settings.Answers;
        var texts = first.Select(h => $"{h.Title}. {h.Chunk}").ToList();
        IReadOnlyList<double> scores;
        if (answers.RerankUrl is not null)
        {
            using var reranker = new HttpReranker(answers);
            lesson.Step("rerank-server", "A second stage: a re-rank server",
                $"The first stage's {first.Count} documents (each its best chunk, after its title) sent to the cross-encoder at {reranker.Endpoint} (RERANK_URL): it reads the question and each text together, which two separate vectors never do, and scores how well the text answers it.");
            lesson.Code("""
                using var reranker = new HttpReranker(settings.Answers);         // POST {RERANK_URL}/rerank {"query", "texts", "truncate"}
                var scores = await reranker.ScoreAsync(question, texts, cancellationToken);   // [{"index", "score"}], one per text
                """);
            scores = await reranker.ScoreAsync(question, texts, cancellationToken);
        }
        else
        {
            var secondModel = lesson.Settings.Embeddings.LocalModel == LocalEmbeddingModel.ArcticEmbedXs ? LocalEmbeddingModel.MiniLML6V2 : LocalEmbeddingModel.ArcticEmbedXs;
            using var second = TextEmbedder.Create(lesson.Settings.Embeddings with
            {
                Provider = EmbeddingProviderKind.Local, LocalModel = secondModel, BatchSize = EmbeddingSettings.LocalDefaultBatchSize,
            });
            lesson.Step("second-model", "A second stage: a second model",
                $"The first stage's {first.Count} documents re-scored by {secondModel.Id}, a retrieval model trained with an instruction before each question " +
                $"(\"{second.QueryPrefix.Trim()}\"): only {first.Count} texts to embed, so a slower, stronger reader can afford them. Offline; set RERANK_URL to use a cross-encoder server instead.");
            lesson.Code($"""
                using var second = TextEmbedder.Create(settings with {"{"} LocalModel = LocalEmbeddingModel.ArcticEmbedXs {"}"});
                var query = await second.EmbedQueryAsync(question);           // "{second.QueryPrefix.Trim()} " + question
                var candidates = await second.EmbedManyAsync(texts, null);    // title. best chunk, for each of the {first.Count}
                var scores = candidates.Select(c => TensorPrimitives.Dot(query.ToArray(), c.ToArray()));   // unit vectors: cosine
                """);
            var query = (await second.EmbedQueryAsync(question, cancellationToken)).ToArray();
            var candidates = await second.EmbedManyAsync(texts, progress: null, cancellationToken);
            scores = candidates.Select(c => (double)TensorPrimitives.Dot(query, c.ToArray())).ToList();
        }

        var reranked = first.Select((hit, i) => new RerankedHit(hit, i + 1, scores[i]))
            .OrderByDescending(r => r.Score).ThenBy(r => r.FirstRank).ToList();
        // Shown: a line per document, its title shortened; the full table is the detail.
        lesson.Table(reranked.Take(10).Select((r, i) => (Rank: i + 1, r)),
            ("rank", x => x.Rank), ("first stage", x => x.r.FirstRank), ("moved", x => Moved(x.r.FirstRank, x.Rank)),
            ("title", x => Lesson.Excerpt(x.r.Hit.Title, head: 34)), ("score", x => Number(x.r.Score)));
        using (lesson.Detail())
        {
            lesson.Table(reranked.Take(10).Select((r, i) => (Rank: i + 1, r)),
                ("rank", x => x.Rank), ("first stage", x => x.r.FirstRank), ("moved", x => Moved(x.r.FirstRank, x.Rank)),
                ("title", x => x.r.Hit.Title), ("second-stage score", x => Number(x.r.Score)));
        }

        var changed = reranked.Take(5).Select(r => r.Hit.DocumentId).Except(first.Take(5).Select(h => h.DocumentId)).Count();
        lesson.Say($"The top 5 after the second stage holds {changed} document{(changed == 1 ? "" : "s")} the first stage ranked below 5th; " +
                   $"its first result was the first stage's #{reranked[0].FirstRank}. Whether that is better is a measurement, not a feeling: bench chunks scores both stages on SciFact (docs/benchmarks.md).");
        return reranked;
    }

    private static string Moved(int before, int after) =>
        before == after ? "=" : before > after ? $"up {before - after}" : $"down {after - before}";

    private static async Task AnswerAsync(Lesson lesson, TextEmbedder embedder, string question, IReadOnlyList<RerankedHit> ranked, CancellationToken cancellationToken)
    {
        var passages = ranked.Take(AnswerPassages).ToList();
        var answers = lesson.Settings.Answers;
        lesson.Step("answer", "An answer with citations",
            answers.UsesChatModel
                ? $"The best {passages.Count} passages, numbered, go to {answers.ChatModel} through Microsoft.Extensions.AI's IChatClient (OPENAI_API_KEY is set), told to use nothing else, to cite a passage after every sentence, and to say when the passages do not hold the answer. The answer streams in as it is written."
                : $"Offline, an extractive answer: the sentences of the best {passages.Count} passages closest to the question (cosine similarity of their vectors, at least {MinSimilarity}), each followed by the number of its passage. Nothing is written that the passages do not say; set OPENAI_API_KEY for an answer a chat model writes.");
        var answer = answers.UsesChatModel
            ? await ChatAnswerAsync(lesson, question, passages, cancellationToken)
            : await ExtractiveAnswerAsync(lesson, embedder, question, passages, cancellationToken);

        var sentences = Sentences(answer).Select(s => (Text: s, Cites: Citations(s))).ToList();
        // The answer is on the screen already: its sentences and their citations, one by one, are the detail.
        using (lesson.Detail())
        {
            lesson.Table(sentences, ("answer sentence", s => s.Text), ("cites", s => string.Join(", ", s.Cites.Select(n => $"[{n}]"))));
        }

        var uncited = sentences.Count(s => s.Cites.Count == 0);
        var unknown = sentences.SelectMany(s => s.Cites).Count(n => n < 1 || n > passages.Count);
        lesson.Say(uncited == 0 && unknown == 0
            ? ($"Every sentence cites a passage ({sentences.Count} sentence{(sentences.Count == 1 ? "" : "s")}, passages 1 to {passages.Count}).", Tone.Plain)
            : ($"{uncited} sentence{(uncited == 1 ? "" : "s")} without a citation, {unknown} citation{(unknown == 1 ? "" : "s")} of a passage that does not exist: check the answer against the passages.", Tone.Warning));

        lesson.Say("The cited passages", Tone.Key);
        lesson.Table(passages.Select((p, i) => (Number: i + 1, p)),
            ("n", x => $"[{x.Number}]"), ("title", x => x.p.Hit.Title), ("chunk", x => x.p.Hit.Position), ("passage", x => x.p.Hit.Chunk));
    }

    private static async Task<string> ExtractiveAnswerAsync(Lesson lesson, TextEmbedder embedder, string question, IReadOnlyList<RerankedHit> passages, CancellationToken cancellationToken)
    {
        var sentences = passages.SelectMany((p, i) => Sentences(p.Hit.Chunk).Select(s => (Passage: i + 1, Text: s))).ToList();
        var query = (await embedder.EmbedQueryAsync(question, cancellationToken)).ToArray();
        var vectors = await embedder.EmbedManyAsync(sentences.Select(s => s.Text).ToList(), progress: null, cancellationToken);
        var scored = sentences.Select((s, i) => (s.Passage, s.Text, Similarity: (double)TensorPrimitives.Dot(query, vectors[i].ToArray())))
            .OrderByDescending(s => s.Similarity).ToList();
        var chosen = scored.Where(s => s.Similarity >= MinSimilarity).Take(MaxAnswerSentences).ToList();
        string answer;
        if (chosen.Count == 0)
        {
            // Still one cited sentence: what the passages come closest to, so the reader sees why nothing was taken.
            var closest = scored[0];
            answer = $"The passages do not contain the answer; the closest sentence, at similarity {Number(closest.Similarity)}, is: \"{closest.Text.TrimEnd('.')}\" [{closest.Passage}].";
        }
        else
        {
            answer = string.Join(' ', chosen.Select(s => $"{s.Text.TrimEnd()[..^1]} [{s.Passage}]{s.Text.TrimEnd()[^1]}"));
        }

        lesson.Say("Extractive answer (the passages' own sentences, chosen by their similarity to the question; no model wrote them):", Tone.Key);
        lesson.Say(answer);
        // Shown: each sentence's start (the passages below hold them whole); the full table is the detail.
        lesson.Table(scored.Take(6), ("sentence", s => Lesson.Excerpt(s.Text, head: 34)), ("passage", s => $"[{s.Passage}]"), ("similarity", s => Number(s.Similarity)),
            ("in the answer", s => chosen.Contains(s) ? "yes" : "no"));
        using (lesson.Detail())
        {
            lesson.Table(scored.Take(6), ("sentence", s => s.Text), ("passage", s => $"[{s.Passage}]"), ("similarity to the question", s => Number(s.Similarity)),
                ("in the answer", s => chosen.Contains(s) ? "yes" : "no"));
        }

        return answer;
    }

    private static async Task<string> ChatAnswerAsync(Lesson lesson, string question, IReadOnlyList<RerankedHit> passages, CancellationToken cancellationToken)
    {
        var settings = lesson.Settings.Answers;
        lesson.Code($"""
            IChatClient chat = new OpenAI.Chat.ChatClient("{settings.ChatModel}", apiKey).AsIChatClient();   // ChatAnswers.Create(settings.Answers)
            List<ChatMessage> messages = [new(ChatRole.System, Instructions), new(ChatRole.User, Prompt(question, passages))];
            await foreach (var update in chat.GetStreamingResponseAsync(messages, new ChatOptions {"{"} Temperature = 0 {"}"}))
                Console.Write(update.Text);                                  // each piece as it arrives
            """);
        lesson.Code(Instructions, "instructions");
        lesson.Code(Prompt(question, passages), "prompt");
        using var chat = ChatAnswers.Create(settings);
        List<ChatMessage> messages = [new(ChatRole.System, Instructions), new(ChatRole.User, Prompt(question, passages))];
        lesson.Say($"Answer (written by {settings.ChatModel} from the passages below, streamed):", Tone.Key);
        // ChatAnswers.StreamAsync is the loop above, within OPENAI_TIMEOUT_SECONDS, its failures turned into one sentence each.
        string answer;
        try
        {
            answer = await ChatAnswers.StreamAsync(chat, messages, settings, text => lesson.Console.Write(new Text(text)), cancellationToken);
        }
        finally
        {
            lesson.Console.WriteLine();
        }

        return answer;
    }

    /// <summary>The passage numbers a sentence cites: every [n] in it.</summary>
    public static IReadOnlyList<int> Citations(string sentence) =>
        Citation().Matches(sentence).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Distinct().ToList();

    [GeneratedRegex(@"\[(\d{1,3})\]")]
    private static partial Regex Citation();
}
