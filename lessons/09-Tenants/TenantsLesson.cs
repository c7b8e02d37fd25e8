using System.Security.Cryptography;
using PgVectorModule.Data;
using PgVectorModule.Embeddings;
using PgVectorModule.Search;

namespace PgVectorModule.Lessons.Lesson09;

/// <summary>
/// Lesson 09: many customers in one table. A tenant_id column, row-level security that a non-owner role cannot get
/// around, the tenant set per transaction, vector search that stays fast and complete under the tenant filter
/// (measured four ways). Lesson 11 spreads tenants over a Citus cluster.
/// </summary>
public sealed partial class TenantsLesson : ILesson
{
    /// <summary>Tenants in the table: one large customer and several small ones, as real ones come.</summary>
    public const int TenantCount = 8;

    public const int LargeTenant = 1;
    public const int LargeTenantRows = 2000;
    public const int SmallTenantRows = 300;

    /// <summary>The tenant the isolation steps act as.</summary>
    public const int CurrentTenant = 3;

    public const string HostileText = "' OR tenant_id <> 3 OR '1'='1";

    public static LessonInfo Info => LessonCatalog.Get("09");

    /// <summary>The documents this lesson embeds: every third of the sample corpus, the seeds of the tenants' documents.</summary>
    public static IReadOnlyList<CorpusDocument> CorpusPart { get; } = SampleCorpus.All.Where((_, i) => i % 3 == 0).ToList();

    public async Task RunAsync(Lesson lesson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        using var embedder = TextEmbedder.Create(lesson.Settings.Embeddings);

        lesson.Step("load-part", "Load part of the corpus", $"Every third document of the sample corpus ({CorpusPart.Count}), embedded as in lesson 04: their vectors seed every tenant's documents.");
        await using (await SearchLessonSetup.LoadCorpusAsync(lesson, embedder, CorpusPart, cancellationToken))
        {
        }

        var question = await embedder.EmbedQueryAsync("how should I store secrets for each customer?", cancellationToken);
        var vectors = await TenantTableAsync(lesson, embedder.Dimensions, cancellationToken);

        var role = AppRole(lesson.Schema, (string)(await lesson.QueryAsync("SELECT current_database() AS db", cancellationToken))[0]["db"]!);
        try
        {
            await using var app = await RowLevelSecurityAsync(lesson, role, cancellationToken);
            await TenantSearchAsync(lesson, app, question, cancellationToken);
            await MeasureAsync(lesson, app, embedder.Dimensions, vectors, cancellationToken);
        }
        finally
        {
            // Roles belong to the whole server: the lesson's goes when the lesson is done (its privileges first).
            await DropAppRoleAsync(lesson.DataSource, lesson.Schema, role);
        }

        lesson.Say("Past one machine: lesson 11 distributes tenants' documents over a Citus cluster by tenant_id, each tenant's search routed to the worker holding its rows.", Tone.Aside);
    }

    // ---------------------------------------------------------------- the table

    private static async Task<IReadOnlyList<Vector>> TenantTableAsync(Lesson lesson, int dims, CancellationToken cancellationToken)
    {
        lesson.Step("tenants-table", "Many tenants in one table",
            $"tenant_documents holds every customer's documents, told apart by tenant_id: tenant {LargeTenant} has {LargeTenantRows:N0}, the {TenantCount - 1} others {SmallTenantRows} each " +
            "(the corpus' embeddings, each copied with a little noise), loaded by binary COPY, then a B-tree on tenant_id and one HNSW index over all of them.");
        var corpus = (await lesson.QueryAsync("SELECT title, embedding FROM vector_documents ORDER BY id", cancellationToken))
            .Select(r => ((string)r["title"]!, (Vector)r["embedding"]!)).ToList();
        await lesson.ExecuteAsync("DROP TABLE IF EXISTS tenant_documents, tenant_documents_by_tenant CASCADE", cancellationToken);
        await lesson.ExecuteAsync($"""
            CREATE TABLE tenant_documents (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                tenant_id int NOT NULL,
                title text NOT NULL,
                embedding vector({dims}) NOT NULL)
            """, cancellationToken);

        var random = new Random(9);
        var rows = new List<(int Tenant, string Title, Vector Embedding)>();
        for (var tenant = 1; tenant <= TenantCount; tenant++)
        {
            var count = tenant == LargeTenant ? LargeTenantRows : SmallTenantRows;
            for (var i = 0; i < count; i++)
            {
                var (title, embedding) = corpus[random.Next(corpus.Count)];
                rows.Add((tenant, $"{title} (tenant {tenant})", Perturb(embedding, random)));
            }
        }

        await using (var connection = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var writer = await connection.BeginBinaryImportAsync("COPY tenant_documents (tenant_id, title, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var (tenant, title, embedding) in rows)
            {
                await writer.WriteRowAsync(cancellationToken, tenant, title, embedding);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        await lesson.ExecuteAsync("CREATE INDEX tenant_documents_tenant_id ON tenant_documents (tenant_id)", cancellationToken);
        await lesson.ExecuteAsync("CREATE INDEX tenant_documents_hnsw ON tenant_documents USING hnsw (embedding vector_cosine_ops)", cancellationToken);
        await lesson.ExecuteAsync("ANALYZE tenant_documents", cancellationToken);
        var counts = await lesson.QueryAsync("SELECT tenant_id, count(*) AS documents FROM tenant_documents GROUP BY tenant_id ORDER BY tenant_id", cancellationToken);
        lesson.Table(counts, ("tenant_id", r => r["tenant_id"]), ("documents", r => r["documents"]));
        return rows.Where((_, i) => i % 97 == 0).Select(r => r.Embedding).Take(20).ToList();
    }

    /// <summary>A corpus vector with Gaussian noise, normalised: documents that cluster like real ones.</summary>
    private static Vector Perturb(Vector basis, Random random)
    {
        var source = basis.ToArray();
        var v = new float[source.Length];
        for (var d = 0; d < v.Length; d++)
        {
            v[d] = source[d] + (float)(0.03 * GaussianNoise.Next(random));
        }

        UnitVector.Normalize(v);
        return new Vector(v);
    }

    // ---------------------------------------------------------------- row-level security

    /// <summary>
    /// The application's role for this run's schema in this database (lesson09_app_agent_db, alice_lesson09_app_agent_db):
    /// roles are per server, so two learners on one server each get their own.
    /// </summary>
    public static string AppRole(string schema, string database) => Learner.RoleName(schema, "app", database);

    /// <summary>The policy's condition: the row's tenant is the one this transaction set; no tenant set, no rows.</summary>
    public const string TenantCondition = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::int";

    private static async Task<NpgsqlDataSource> RowLevelSecurityAsync(Lesson lesson, string role, CancellationToken cancellationToken)
    {
        lesson.Step("row-level-security", "Row-level security, and a role it applies to",
            "A policy adds its condition to every query on the table. It does not apply to superusers or roles with BYPASSRLS, nor to the table's owner unless FORCE ROW LEVEL SECURITY: " +
            "the application connects as a role of its own that owns nothing. The tenant comes from a setting the application sets per transaction.");
        await lesson.ExecuteAsync("ALTER TABLE tenant_documents ENABLE ROW LEVEL SECURITY", cancellationToken);
        await lesson.ExecuteAsync("ALTER TABLE tenant_documents FORCE ROW LEVEL SECURITY", cancellationToken);
        await lesson.ExecuteAsync($"""
            CREATE POLICY tenant_isolation ON tenant_documents
                USING ({TenantCondition})
                WITH CHECK ({TenantCondition})
            """, cancellationToken);
        var app = await CreateAppRoleAsync(lesson, role, cancellationToken);

        lesson.Say($"Counting rows as {role}, then as the course user:", Tone.Aside);
        var rows = new List<(string Who, string How, long Rows)>();
        await using (var connection = await app.OpenConnectionAsync(cancellationToken))
        {
            rows.Add((role, "no tenant set", await CountAsync(connection, null, cancellationToken)));
            await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
            {
                await SetTenantAsync(connection, CurrentTenant, cancellationToken);
                rows.Add((role, $"BEGIN; set_config('app.tenant_id', '{CurrentTenant}', true)", await CountAsync(connection, transaction, cancellationToken)));
                await transaction.CommitAsync(cancellationToken);
            }

            rows.Add((role, "the next transaction (the setting ended with COMMIT)", await CountAsync(connection, null, cancellationToken)));
        }

        await using (var owner = await lesson.DataSource.OpenConnectionAsync(cancellationToken))
        {
            var super = (bool)(await lesson.QueryAsync("SELECT rolsuper OR rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user", owner, [], cancellationToken))[0]["bypass"]!;
            rows.Add(((string)(await lesson.QueryAsync("SELECT current_user AS u", owner, [], cancellationToken))[0]["u"]!,
                super ? "a superuser: every policy skipped" : "the owner, with FORCE ROW LEVEL SECURITY", await CountAsync(owner, null, cancellationToken)));
        }

        lesson.Sql("SELECT count(*) FROM tenant_documents");
        lesson.Table(rows, ("connected as", r => r.Who), ("tenant", r => r.How), ("rows it sees", r => r.Rows));

        lesson.Say($"WITH CHECK guards writes: tenant {CurrentTenant} writing a row for tenant 4.", Tone.Aside);
        const string insert = "INSERT INTO tenant_documents (tenant_id, title, embedding) SELECT 4, 'planted', embedding FROM tenant_documents LIMIT 1";
        lesson.Sql(insert);
        await using (var connection = await app.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await SetTenantAsync(connection, CurrentTenant, cancellationToken);
            try
            {
                await using var command = new NpgsqlCommand(insert, connection, transaction);
                await command.ExecuteNonQueryAsync(cancellationToken);
                lesson.Say("The row went in.", Tone.Bad);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                lesson.Say($"Refused: {e.SqlState} {e.MessageText}", Tone.Good);
            }
        }

        return app;
    }

    /// <summary>
    /// The application's role: it logs in, may read and write tenant_documents and owns nothing, so every policy
    /// applies to it. A new random password each time, never stored. Returns a data source logged in as it.
    /// </summary>
    public static async Task<NpgsqlDataSource> CreateAppRoleAsync(Lesson lesson, string role, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lesson);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        lesson.Sql($"""
            CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS;   -- when it does not exist yet
            ALTER ROLE {role} WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:****'; -- a new random password every run, sent as its verifier (lesson 07)
            GRANT USAGE ON SCHEMA {lesson.Schema} TO {role};
            GRANT SELECT, INSERT ON tenant_documents TO {role};
            """);
        using (lesson.QuietSql())
        {
            await lesson.ExecuteAsync($"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$", cancellationToken);
            // Straight to the data source, not through the lesson: the transcript records every statement sent, and the password stays out of it.
            // The verifier, not the password: the server, its log and pg_stat_statements never see the password itself.
            await using (var setPassword = lesson.DataSource.CreateCommand($"ALTER ROLE {role} WITH LOGIN PASSWORD '{ScramVerifier.Create(password)}'"))
            {
                await setPassword.ExecuteNonQueryAsync(cancellationToken);
            }

            // A role of this name left by someone with more rights could bypass the policy: only a superuser can have
            // made it so, and only one may undo it (since PostgreSQL 16 a CREATEROLE role may not even name the attributes).
            await lesson.ExecuteAsync($"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}' AND (rolsuper OR rolbypassrls)) THEN ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS; END IF; END $$", cancellationToken);

            await lesson.ExecuteAsync($"GRANT USAGE ON SCHEMA {lesson.Schema} TO {role}", cancellationToken);
            await lesson.ExecuteAsync($"GRANT SELECT, INSERT ON tenant_documents TO {role}", cancellationToken);
        }

        var cs = lesson.Settings.ConnectionString();
        cs.Username = role;
        cs.Password = password;
        cs.ApplicationName = "lesson09-app";
        return ModuleDataSource.Create(cs, lesson.Schema);
    }

    /// <summary>
    /// Drops the application's role: each grant taken back by the owner who gave it, then the role. (DROP OWNED BY would
    /// do both, but only for a superuser or a member of the role, which a learner who merely created it is not.)
    /// </summary>
    public static async Task DropAppRoleAsync(NpgsqlDataSource owner, string schema, string role)
    {
        ArgumentNullException.ThrowIfNull(owner);
        NpgsqlConnection.ClearAllPools();
        await using var command = owner.CreateCommand($"""
            DO $$ BEGIN
              IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                IF EXISTS (SELECT FROM pg_namespace WHERE nspname = '{schema}') THEN
                  REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role};
                  REVOKE ALL ON SCHEMA {schema} FROM {role};
                END IF;
                DROP ROLE {role};
              END IF;
            END $$
            """);
        await command.ExecuteNonQueryAsync(CancellationToken.None);
    }

    /// <summary>
    /// The tenant for the current transaction only: set_config with is_local = true is SET LOCAL, so the setting ends
    /// with the transaction and never reaches the next user of the pooled connection (nor, through pgBouncer, of the
    /// server connection).
    /// </summary>
    public static async Task SetTenantAsync(NpgsqlConnection connection, int tenant, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT set_config('app.tenant_id', @tenant, true)", connection);
        command.Parameters.AddWithValue("tenant", tenant.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT count(*) FROM tenant_documents", connection, transaction);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
