/**
 * Metadata in PostgreSQL (`npm:postgres`), for registries that run as several
 * stateless replicas on one database.
 *
 * - The schema comes from versioned migrations ({@linkcode MIGRATIONS}), run
 *   at open in one transaction under an advisory lock, so replicas that start
 *   together neither race nor half-apply one.
 * - Every write is one transaction that first locks the model's row, so
 *   concurrent publishes of one version, from any replica, give exactly one
 *   success and the others a {@linkcode ConflictError}; a replica killed
 *   mid-publish leaves nothing, because nothing is committed until all of it
 *   is.
 * - Publishes, tag moves and yanks bump one revision counter in the same
 *   transaction; {@linkcode MetadataStore.revision} reads it, so every replica
 *   sees another's write at its next request.
 * - A download is one `UPDATE` of the version's and the model's counters:
 *   counts from all replicas add up exactly and are never held in memory.
 *
 * Text columns that sort or page (`full_name`, `updated_at`) use the "C"
 * collation, so that listings order bytewise exactly as the SQLite store does.
 *
 * @module
 */

import postgres from "postgres";
import { printable } from "../../core/names.ts";
import {
  checkNewVersion,
  decodeCursor,
  encodeCursor,
  fileEntries,
  latestAfterYank,
  listParams,
  missingVersion,
  modelFromRow,
  modelSummary,
  now,
  publishedRecord,
  takesLatest,
  versionFromRow,
  versionSummary,
} from "./_common.ts";
import {
  ConflictError,
  type ListQuery,
  type MetadataBackend,
  type ModelRecord,
  type NewVersion,
  type Revision,
  type TokenRecord,
  type VersionRecord,
} from "./store.ts";

/** One schema step: applied once, in order, recorded in `zoo_migrations`. */
export interface Migration {
  /** 1, 2, 3, …: the order they apply in. */
  version: number;
  /** What it does, for the record. */
  description: string;
  /** The SQL it runs, in the migration transaction. */
  sql: string;
}

/** The schema, as the steps that build it. Append new steps; never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [{
  version: 1,
  description: "models, versions, files, tags, tokens and the revision counter",
  sql: `
CREATE TABLE zoo_state (
  id       integer PRIMARY KEY CHECK (id = 1),
  revision bigint NOT NULL
);
INSERT INTO zoo_state (id, revision) VALUES (1, 0);

CREATE TABLE models (
  id          bigserial PRIMARY KEY,
  namespace   text NOT NULL,
  name        text NOT NULL,
  full_name   text COLLATE "C" NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  task        text NOT NULL DEFAULT '',
  labels      text NOT NULL DEFAULT '[]',
  search_text text NOT NULL DEFAULT '',
  updated_at  text COLLATE "C" NOT NULL,
  downloads   bigint NOT NULL DEFAULT 0,
  UNIQUE (namespace, name)
);
CREATE INDEX models_by_updated ON models (updated_at DESC, full_name);
CREATE INDEX models_by_downloads ON models (downloads DESC, full_name);
CREATE INDEX models_by_task ON models (task);

CREATE TABLE versions (
  id           bigserial PRIMARY KEY,
  model_id     bigint NOT NULL REFERENCES models (id),
  version      text NOT NULL,
  card         text NOT NULL,
  architecture text NOT NULL,
  published_by text,
  created_at   text NOT NULL,
  yanked       boolean NOT NULL DEFAULT false,
  downloads    bigint NOT NULL DEFAULT 0,
  UNIQUE (model_id, version)
);

CREATE TABLE files (
  version_id bigint NOT NULL REFERENCES versions (id),
  position   integer NOT NULL,
  path       text NOT NULL,
  digest     text NOT NULL,
  size       bigint NOT NULL,
  PRIMARY KEY (version_id, position),
  UNIQUE (version_id, path)
);
CREATE INDEX files_by_digest ON files (digest);

CREATE TABLE tags (
  model_id   bigint NOT NULL REFERENCES models (id),
  tag        text COLLATE "C" NOT NULL,
  version_id bigint NOT NULL REFERENCES versions (id),
  PRIMARY KEY (model_id, tag)
);

CREATE TABLE tokens (
  id         text PRIMARY KEY,
  hash       text NOT NULL UNIQUE,
  scopes     text NOT NULL,
  label      text NOT NULL,
  created_at text NOT NULL
);
`,
}];

/** The advisory lock key migrations run under ("zoo-migr" as bytes). */
const MIGRATION_LOCK = 0x7a6f6f2d6d696772n;

/** Options of {@linkcode openPgMetadataStore}. */
export interface PgMetadataOptions {
  /**
   * Most connections this instance opens.
   *
   * @default {10}
   */
  maxConnections?: number;
}

/**
 * Connects to PostgreSQL and brings its schema up to date.
 *
 * @param url `postgres://user:password@host:port/database`
 * @param options connection pool size
 * @returns the metadata store; `close()` ends its connections
 * @throws {Error} when the database cannot be reached, or was migrated by a
 *   newer registry
 *
 * @example Publish into PostgreSQL
 * ```ts ignore
 * import { openPgMetadataStore } from "./pg_metadata.ts";
 * const meta = await openPgMetadataStore("postgres://zoo@127.0.0.1:5432/zoo");
 * await meta.publish({ namespace: "zoo", name: "x", version: "1.0.0", files: [], card: {}, architecture: {} });
 * await meta.close();
 * ```
 */
export async function openPgMetadataStore(
  url: string,
  options: PgMetadataOptions = {},
): Promise<MetadataBackend> {
  const sql = connect(url, options.maxConnections ?? 10);
  try {
    await migrate(sql);
  } catch (e) {
    await sql.end({ timeout: 1 });
    throw e;
  }
  return new PgMetadataStore(sql);
}

/**
 * Opens a connection pool, saying which URL failed when it cannot.
 *
 * @param url a `postgres://` URL
 * @param max most connections
 * @returns the pool
 */
function connect(url: string, max: number): postgres.Sql {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(
      `Invalid database URL "${printable(url)}": use postgres://user:password@host:port/database`,
    );
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new TypeError(
      `Invalid database URL "${printable(url)}": use postgres://user:password@host:port/database`,
    );
  }
  return postgres(url, {
    max,
    onnotice: () => {},
    // int8 (bigserial ids, counters) as JavaScript numbers: they stay far
    // below 2^53.
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number) => String(x),
        parse: (x: string) => Number(x),
      },
    },
  });
}

/**
 * Applies the migrations a database lacks, all in one transaction under an
 * advisory lock.
 *
 * @param sql the connection pool
 * @returns the versions it applied
 * @throws {Error} when the database has a migration this code does not know
 */
async function migrate(sql: postgres.Sql): Promise<number[]> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${String(MIGRATION_LOCK)}::bigint)`;
    await tx`CREATE TABLE IF NOT EXISTS zoo_migrations (
      version     integer PRIMARY KEY,
      description text NOT NULL,
      applied_at  timestamptz NOT NULL DEFAULT now()
    )`;
    const done = new Set(
      (await tx`SELECT version FROM zoo_migrations`).map((r) => Number(r.version)),
    );
    const known = Math.max(...MIGRATIONS.map((m) => m.version));
    const newest = Math.max(0, ...done);
    if (newest > known) {
      throw new Error(
        `Cannot open the database: it has schema version ${newest}, this registry knows up to ${known}; upgrade the registry`,
      );
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO zoo_migrations (version, description) VALUES (${m.version}, ${m.description})`;
      applied.push(m.version);
    }
    return applied;
  });
}

type Row = postgres.Row;
type Tx = postgres.TransactionSql;

/** PostgreSQL's unique_violation. */
function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "23505";
}

class PgMetadataStore implements MetadataBackend {
  readonly #sql: postgres.Sql;
  #closed = false;

  constructor(sql: postgres.Sql) {
    this.#sql = sql;
  }

  /** Locks a model's row for the rest of the transaction; null when absent. */
  async #lockModel(tx: Tx, namespace: string, name: string): Promise<number | null> {
    const [m] = await tx`SELECT id FROM models WHERE namespace = ${namespace} AND name = ${name}
      FOR UPDATE`;
    return m ? Number(m.id) : null;
  }

  async #states(
    tx: Tx,
    modelId: number,
  ): Promise<{ id: number; version: string; yanked: boolean }[]> {
    return (await tx`SELECT id, version, yanked FROM versions WHERE model_id = ${modelId}
      ORDER BY id`).map((r) => ({
      id: Number(r.id),
      version: String(r.version),
      yanked: Boolean(r.yanked),
    }));
  }

  async #latest(tx: Tx, modelId: number): Promise<string | null> {
    const [row] = await tx`SELECT v.version FROM tags t JOIN versions v ON v.id = t.version_id
      WHERE t.model_id = ${modelId} AND t.tag = 'latest'`;
    return row ? String(row.version) : null;
  }

  async #setTagRow(tx: Tx, modelId: number, tag: string, versionId: number): Promise<void> {
    await tx`INSERT INTO tags (model_id, tag, version_id) VALUES (${modelId}, ${tag}, ${versionId})
      ON CONFLICT (model_id, tag) DO UPDATE SET version_id = excluded.version_id`;
  }

  /** Marks a change: the model's time, and the revision every replica reads. */
  async #touch(tx: Tx, modelId: number, at: string): Promise<void> {
    await tx`UPDATE models SET updated_at = ${at} WHERE id = ${modelId}`;
    await tx`UPDATE zoo_state SET revision = revision + 1 WHERE id = 1`;
  }

  /** Copies description, task and labels from the card `latest` points at. */
  async #refreshSummary(tx: Tx, modelId: number): Promise<void> {
    const [row] = await tx`SELECT m.full_name, v.card FROM models m
      LEFT JOIN tags t ON t.model_id = m.id AND t.tag = 'latest'
      LEFT JOIN versions v ON v.id = t.version_id
      WHERE m.id = ${modelId}`;
    if (!row) return;
    const card = typeof row.card === "string" ? JSON.parse(row.card) : {};
    const s = modelSummary(String(row.full_name), card);
    await tx`UPDATE models SET description = ${s.description}, task = ${s.task},
      labels = ${JSON.stringify(s.labels)}, search_text = ${s.searchText} WHERE id = ${modelId}`;
  }

  async publish(v: NewVersion): Promise<VersionRecord> {
    checkNewVersion(v);
    const key = `${v.namespace}/${v.name}@${v.version}`;
    const conflict = () =>
      new ConflictError(
        key,
        `Version "${
          printable(key)
        }" exists already: published versions are immutable; publish a new version number`,
      );
    const createdAt = v.createdAt ?? now();
    try {
      return await this.#sql.begin(async (tx) => {
        await tx`INSERT INTO models (namespace, name, full_name, updated_at)
          VALUES (${v.namespace}, ${v.name}, ${`${v.namespace}/${v.name}`}, ${createdAt})
          ON CONFLICT DO NOTHING`;
        const modelId = await this.#lockModel(tx, v.namespace, v.name);
        if (modelId === null) {
          throw new Error(`Model "${printable(key)}" vanished while publishing`);
        }
        const [exists] = await tx`SELECT 1 FROM versions WHERE model_id = ${modelId}
          AND version = ${v.version}`;
        if (exists) throw conflict();
        const [inserted] = await tx`INSERT INTO versions
          (model_id, version, card, architecture, published_by, created_at, downloads)
          VALUES (${modelId}, ${v.version}, ${JSON.stringify(v.card)},
            ${JSON.stringify(v.architecture)}, ${v.publishedBy ?? null}, ${createdAt},
            ${v.downloads ?? 0})
          RETURNING id`;
        const versionId = Number(inserted?.id);
        if (v.downloads) {
          await tx`UPDATE models SET downloads = downloads + ${v.downloads} WHERE id = ${modelId}`;
        }
        if (v.files.length > 0) {
          await tx`INSERT INTO files ${
            tx(v.files.map((f, i) => ({
              version_id: versionId,
              position: i,
              path: f.path,
              digest: f.digest,
              size: f.size,
            })))
          }`;
        }
        if (
          takesLatest(await this.#latest(tx, modelId), await this.#states(tx, modelId), v.version)
        ) {
          await this.#setTagRow(tx, modelId, "latest", versionId);
        }
        await this.#touch(tx, modelId, createdAt);
        await this.#refreshSummary(tx, modelId);
        return publishedRecord(v, createdAt);
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict();
      throw e;
    }
  }

  async getModel(namespace: string, name: string): Promise<ModelRecord | null> {
    const rows = await this.#sql`SELECT * FROM models
      WHERE namespace = ${namespace} AND name = ${name}`;
    return (await this.#modelRecords(rows))[0] ?? null;
  }

  /** Models with their tags and versions, in the order given, in three queries. */
  async #modelRecords(models: readonly Row[]): Promise<ModelRecord[]> {
    if (models.length === 0) return [];
    const ids = models.map((m) => Number(m.id));
    const tags = await this.#sql`SELECT t.model_id, t.tag, v.version FROM tags t
      JOIN versions v ON v.id = t.version_id WHERE t.model_id = ANY(${ids}::bigint[])
      ORDER BY t.tag`;
    const versions = await this.#sql`SELECT model_id, version, created_at, yanked, downloads
      FROM versions WHERE model_id = ANY(${ids}::bigint[]) ORDER BY id`;
    return models.map((m) => {
      const id = Number(m.id);
      const t: Record<string, string> = {};
      for (const r of tags) if (Number(r.model_id) === id) t[String(r.tag)] = String(r.version);
      const own = versions.filter((v) => Number(v.model_id) === id).map((v) => versionSummary(v));
      return modelFromRow(m, own, t);
    });
  }

  async getVersion(
    namespace: string,
    name: string,
    version: string,
  ): Promise<VersionRecord | null> {
    const [v] = await this.#sql`SELECT v.* FROM versions v JOIN models m ON m.id = v.model_id
      WHERE m.namespace = ${namespace} AND m.name = ${name} AND v.version = ${version}`;
    if (!v) return null;
    const files = fileEntries(
      await this.#sql`SELECT path, digest, size FROM files
        WHERE version_id = ${Number(v.id)} ORDER BY position`,
    );
    return versionFromRow(namespace, name, v, files);
  }

  /** Runs a write on one version, its model's row locked. */
  #onVersion(
    namespace: string,
    name: string,
    version: string,
    at: string | undefined,
    fn: (tx: Tx, modelId: number, versionId: number) => Promise<void>,
  ): Promise<void> {
    return this.#sql.begin(async (tx) => {
      const modelId = await this.#lockModel(tx, namespace, name);
      const [v] = modelId === null
        ? []
        : await tx`SELECT id FROM versions WHERE model_id = ${modelId} AND version = ${version}`;
      if (modelId === null || !v) throw missingVersion(namespace, name, version);
      await fn(tx, modelId, Number(v.id));
      await this.#touch(tx, modelId, at ?? now());
    });
  }

  setTag(
    namespace: string,
    name: string,
    tag: string,
    version: string,
    at?: string,
  ): Promise<void> {
    return this.#onVersion(namespace, name, version, at, async (tx, modelId, versionId) => {
      await this.#setTagRow(tx, modelId, tag, versionId);
      if (tag === "latest") await this.#refreshSummary(tx, modelId);
    });
  }

  setYanked(
    namespace: string,
    name: string,
    version: string,
    yanked: boolean,
    at?: string,
  ): Promise<void> {
    return this.#onVersion(namespace, name, version, at, async (tx, modelId, versionId) => {
      await tx`UPDATE versions SET yanked = ${yanked} WHERE id = ${versionId}`;
      const states = await this.#states(tx, modelId);
      const target = latestAfterYank(await this.#latest(tx, modelId), states, version, yanked);
      const to = states.find((o) => o.version === target);
      if (to) await this.#setTagRow(tx, modelId, "latest", to.id);
      await this.#refreshSummary(tx, modelId);
    });
  }

  async countDownload(namespace: string, name: string, version: string): Promise<number> {
    if (this.#closed) {
      throw new TypeError(
        `Cannot count a download of "${namespace}/${name}@${version}": the store is closed`,
      );
    }
    // The model's row first, as every write does, so the two never deadlock.
    const [row] = await this.#sql`WITH m AS (
        UPDATE models SET downloads = downloads + 1
        WHERE namespace = ${namespace} AND name = ${name}
          AND EXISTS (SELECT 1 FROM versions v WHERE v.model_id = models.id
            AND v.version = ${version})
        RETURNING id
      )
      UPDATE versions SET downloads = versions.downloads + 1 FROM m
      WHERE versions.model_id = m.id AND versions.version = ${version}
      RETURNING versions.downloads`;
    if (!row) throw missingVersion(namespace, name, version);
    return Number(row.downloads);
  }

  async revision(namespace: string, name: string): Promise<Revision> {
    const [row] = await this.#sql`SELECT
      (SELECT revision FROM zoo_state WHERE id = 1) AS metadata,
      (SELECT downloads FROM models WHERE namespace = ${namespace} AND name = ${name}) AS downloads`;
    return { metadata: Number(row?.metadata ?? 0), downloads: Number(row?.downloads ?? 0) };
  }

  async listModels(q: ListQuery): Promise<{ items: ModelRecord[]; nextCursor: string | null }> {
    const { sort, limit } = listParams(q.sort, q.limit);
    const sql = this.#sql;
    const column = sql(sort === "updated" ? "updated_at" : "downloads");
    const conditions = [];
    if (q.search !== undefined && q.search !== "") {
      conditions.push(sql`strpos(search_text, ${q.search.toLowerCase()}) > 0`);
    }
    if (q.task !== undefined) conditions.push(sql`task = ${q.task}`);
    if (q.cursor !== undefined) {
      const c = decodeCursor(q.cursor, sort);
      const k = sort === "updated" ? sql`${String(c.k)}::text` : sql`${Number(c.k)}::bigint`;
      conditions.push(sql`(${column} < ${k} OR (${column} = ${k} AND full_name > ${c.n}))`);
    }
    const where = conditions.length === 0
      ? sql``
      : conditions.slice(1).reduce((acc, c) => sql`${acc} AND ${c}`, sql`WHERE ${conditions[0]!}`);
    const rows = await sql`SELECT * FROM models ${where}
      ORDER BY ${column} DESC, full_name ASC LIMIT ${limit + 1}`;
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const nextCursor = rows.length > limit && last
      ? encodeCursor({
        s: sort,
        k: sort === "updated" ? String(last.updated_at) : Number(last.downloads),
        n: String(last.full_name),
      })
      : null;
    return { items: await this.#modelRecords(page), nextCursor };
  }

  async addToken(t: TokenRecord): Promise<void> {
    try {
      await this.#sql`INSERT INTO tokens (id, hash, scopes, label, created_at)
        VALUES (${t.id}, ${t.hash}, ${JSON.stringify(t.scopes)}, ${t.label}, ${t.createdAt})`;
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      throw new ConflictError(
        t.id,
        `Token "${
          printable(t.id)
        }" or a token with the same secret exists already: generate a new token`,
      );
    }
  }

  async findToken(hash: string): Promise<TokenRecord | null> {
    const [row] = await this.#sql`SELECT * FROM tokens WHERE hash = ${hash}`;
    if (!row) return null;
    return {
      id: String(row.id),
      hash: String(row.hash),
      scopes: JSON.parse(String(row.scopes)) as string[],
      label: String(row.label),
      createdAt: String(row.created_at),
    };
  }

  async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const conn = await this.#sql.reserve();
    try {
      await conn`SELECT pg_advisory_lock(hashtextextended(${`zoo:${name}`}, 0))`;
      try {
        return await fn();
      } finally {
        await conn`SELECT pg_advisory_unlock(hashtextextended(${`zoo:${name}`}, 0))`;
      }
    } finally {
      conn.release();
    }
  }

  flush(): Promise<void> {
    // Nothing is held in memory: every count is written as it happens.
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sql.end({ timeout: 5 });
  }
}
