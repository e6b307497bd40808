/**
 * Metadata in one SQLite file (Deno's built-in `node:sqlite`, WAL mode): the
 * embedded metadata store, `zoo.sqlite` in a data directory.
 *
 * Several store instances, in one process or in several, may share a
 * database: every write is one short synchronous transaction
 * (`BEGIN IMMEDIATE`).
 *
 * Downloads are counted in memory and written in one transaction about once a
 * second, and on `flush()` and `close()`, so that a read never waits for a
 * write: an instance's reads include its own counts at once, and other
 * instances see them once written.
 *
 * @module
 */

import type { DatabaseSync, SQLInputValue, SQLOutputValue, StatementSync } from "node:sqlite";
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
  parseJson,
  publishedRecord,
  takesLatest,
  versionFromRow,
  type VersionState,
  versionSummary,
} from "./_common.ts";
import { printable } from "../../core/names.ts";
import { storageLayout } from "./paths.ts";
import { WalHeader } from "./_wal_header.ts";
import {
  BUSY_TIMEOUT_MS,
  isBusy,
  isUniqueViolation,
  openDatabase,
  transaction,
} from "./sqlite_schema.ts";
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

/** How often counted downloads are written to the database, in ms. */
const DOWNLOAD_FLUSH_MS = 1000;

/** Options of {@linkcode openSqliteMetadataStore}. */
export interface SqliteMetadataOptions {
  /**
   * How long counted downloads may stay in memory before they are written to
   * the database, in ms. A crash loses at most this much counting.
   *
   * @default {1000}
   */
  downloadFlushMs?: number;
}

/**
 * Opens (creating when needed) the SQLite database of a data directory,
 * `zoo.sqlite`.
 *
 * @param dataDir the data directory; must exist
 * @param options how often counted downloads are written
 * @returns the metadata store; call `close()` when done, or lose the
 *   downloads it counted since it last wrote them
 * @throws {Error} when the database was written by a newer schema
 *
 * @example Count a download
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openSqliteMetadataStore } from "./sqlite_metadata.ts";
 * const dir = await Deno.makeTempDir();
 * const meta = await openSqliteMetadataStore(dir);
 * await meta.publish({
 *   namespace: "zoo",
 *   name: "lenet5",
 *   version: "1.0.0",
 *   files: [],
 *   card: {},
 *   architecture: {},
 * });
 * assertEquals(await meta.countDownload("zoo", "lenet5", "1.0.0"), 1);
 * await meta.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openSqliteMetadataStore(
  dataDir: string,
  options: SqliteMetadataOptions = {},
): Promise<MetadataBackend> {
  const flushMs = options.downloadFlushMs ?? DOWNLOAD_FLUSH_MS;
  if (!Number.isFinite(flushMs) || flushMs < 0) {
    return Promise.reject(
      new RangeError(
        `Invalid downloadFlushMs ${flushMs}: use a number of milliseconds of at least 0`,
      ),
    );
  }
  return run(() => {
    const path = storageLayout(dataDir).database;
    return new SqliteMetadataStore(path, openDatabase(path), flushMs);
  });
}

type Row = Record<string, SQLOutputValue>;

interface CountedVersion {
  id: number;
  /** `namespace/name` of its model. */
  model: string;
  /** Its downloads in the database when last read or written here. */
  stored: number;
  /** The store generation `stored` was read in. */
  generation: number;
  /** Downloads counted here and not yet written. */
  unwritten: number;
}

class SqliteMetadataStore implements MetadataBackend {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #statements = new Map<string, StatementSync>();
  readonly #flushMs: number;
  #closed = false;
  /** Counted versions by `namespace/name@version` and by id. */
  readonly #counted = new Map<string, CountedVersion>();
  readonly #countedById = new Map<number, CountedVersion>();
  /** The counted versions with downloads not yet written. */
  readonly #unwritten = new Set<CountedVersion>();
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by this instance's publishes, tag moves and yanks. */
  #ownWrites = 0;
  /** Bumped whenever another connection committed: its `stored` counts may be stale. */
  #generation = 0;
  /** `PRAGMA data_version` when last read: it changes when another connection commits. */
  #dataVersion: number;
  /** The WAL's index header, read before asking for `data_version` (null: ask every time). */
  readonly #walHeader: WalHeader | null;
  /** Downloads counted here per `namespace/name`. */
  readonly #countsByModel = new Map<string, number>();

  constructor(path: string, db: DatabaseSync, flushMs: number) {
    this.#db = db;
    this.#path = path;
    this.#flushMs = flushMs;
    this.#walHeader = WalHeader.open(path);
    this.#dataVersion = this.#readDataVersion();
  }

  #readDataVersion(): number {
    return Number(this.#sql("PRAGMA data_version").get()?.data_version);
  }

  /** Notices commits by other connections, in this process or another. */
  #noticeOtherWriters(): void {
    // No connection committed since the header last looked the same.
    if (this.#walHeader !== null && !this.#walHeader.moved()) return;
    const v = this.#readDataVersion();
    if (v !== this.#dataVersion) {
      this.#dataVersion = v;
      this.#generation++;
    }
  }

  /** Remembers a version's downloads as just read from the database; returns its unwritten count. */
  #stored(id: number, downloads: number): number {
    const c = this.#countedById.get(id);
    if (c === undefined) return 0;
    c.stored = downloads;
    c.generation = this.#generation;
    return c.unwritten;
  }

  /** A prepared statement, cached by its SQL. */
  #sql(sql: string): StatementSync {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #modelId(namespace: string, name: string): number | null {
    const row = this.#sql("SELECT id FROM models WHERE namespace = ? AND name = ?").get(
      namespace,
      name,
    );
    return row ? Number(row.id) : null;
  }

  #versionRow(namespace: string, name: string, version: string): Row | undefined {
    return this.#sql(
      `SELECT v.id, v.model_id, v.version, v.yanked FROM versions v
       JOIN models m ON m.id = v.model_id
       WHERE m.namespace = ? AND m.name = ? AND v.version = ?`,
    ).get(namespace, name, version);
  }

  #latest(modelId: number): string | null {
    const row = this.#sql(
      `SELECT v.version FROM tags t JOIN versions v ON v.id = t.version_id
       WHERE t.model_id = ? AND t.tag = 'latest'`,
    ).get(modelId);
    return row ? String(row.version) : null;
  }

  #setTagRow(modelId: number, tag: string, versionId: number): void {
    this.#sql(
      `INSERT INTO tags (model_id, tag, version_id) VALUES (?, ?, ?)
       ON CONFLICT (model_id, tag) DO UPDATE SET version_id = excluded.version_id`,
    ).run(modelId, tag, versionId);
  }

  #touch(modelId: number, at: string): void {
    this.#sql("UPDATE models SET updated_at = ? WHERE id = ?").run(at, modelId);
  }

  /** Copies description, task and labels from the card `latest` points at. */
  #refreshSummary(modelId: number): void {
    const row = this.#sql(
      `SELECT m.namespace, m.name, v.card FROM models m
       LEFT JOIN tags t ON t.model_id = m.id AND t.tag = 'latest'
       LEFT JOIN versions v ON v.id = t.version_id
       WHERE m.id = ?`,
    ).get(modelId);
    if (!row) return;
    const { description, task, labels, searchText } = modelSummary(
      `${row.namespace}/${row.name}`,
      parseJson<Record<string, unknown>>(row.card, {}),
    );
    this.#sql(
      "UPDATE models SET description = ?, task = ?, labels = ?, search_text = ? WHERE id = ?",
    ).run(description, task, JSON.stringify(labels), searchText, modelId);
  }

  /** The versions of a model, oldest first. */
  #versions(modelId: number): Row[] {
    return this.#sql(
      `SELECT id, version, created_at, yanked, downloads FROM versions
       WHERE model_id = ? ORDER BY id`,
    ).all(modelId);
  }

  #modelRecord(m: Row): ModelRecord {
    const id = Number(m.id);
    const tags: Record<string, string> = {};
    for (
      const t of this.#sql(
        `SELECT t.tag, v.version FROM tags t JOIN versions v ON v.id = t.version_id
         WHERE t.model_id = ? ORDER BY t.tag`,
      ).all(id)
    ) tags[String(t.tag)] = String(t.version);
    let unwritten = 0;
    const versions = this.#versions(id).map((v) => {
      const pending = this.#stored(Number(v.id), Number(v.downloads));
      unwritten += pending;
      return versionSummary(v, Number(v.downloads) + pending);
    });
    return modelFromRow(m, versions, tags, Number(m.downloads) + unwritten);
  }

  publish(v: NewVersion): Promise<VersionRecord> {
    return this.#write(() => {
      checkNewVersion(v);
      const key = `${v.namespace}/${v.name}@${v.version}`;
      const createdAt = v.createdAt ?? now();
      return transaction(this.#db, () => {
        let modelId = this.#modelId(v.namespace, v.name);
        if (modelId === null) {
          const r = this.#sql(
            "INSERT INTO models (namespace, name, full_name, updated_at) VALUES (?, ?, ?, ?)",
          ).run(v.namespace, v.name, `${v.namespace}/${v.name}`, createdAt);
          modelId = Number(r.lastInsertRowid);
        }
        let versionId: number;
        try {
          versionId = Number(
            this.#sql(
              `INSERT INTO versions (model_id, version, card, architecture, published_by, created_at)
               VALUES (?, ?, ?, ?, ?, ?)`,
            ).run(
              modelId,
              v.version,
              JSON.stringify(v.card),
              JSON.stringify(v.architecture),
              v.publishedBy ?? null,
              createdAt,
            ).lastInsertRowid,
          );
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
          throw new ConflictError(
            key,
            `Version "${
              printable(key)
            }" exists already: published versions are immutable; publish a new version number`,
          );
        }
        const insertFile = this.#sql(
          "INSERT INTO files (version_id, position, path, digest, size) VALUES (?, ?, ?, ?, ?)",
        );
        v.files.forEach((f, i) => insertFile.run(versionId, i, f.path, f.digest, f.size));
        if (v.downloads) {
          // An UPDATE, so that the trigger adds them to the model's sum.
          this.#sql("UPDATE versions SET downloads = ? WHERE id = ?").run(v.downloads, versionId);
        }

        if (takesLatest(this.#latest(modelId), this.#states(modelId), v.version)) {
          this.#setTagRow(modelId, "latest", versionId);
        }
        this.#touch(modelId, createdAt);
        this.#refreshSummary(modelId);
        return publishedRecord(v, createdAt);
      });
    });
  }

  /** The versions of a model as the `latest` rules see them, oldest first. */
  #states(modelId: number): (VersionState & { id: number })[] {
    return this.#versions(modelId).map((o) => ({
      id: Number(o.id),
      version: String(o.version),
      yanked: o.yanked === 1,
    }));
  }

  getModel(namespace: string, name: string): Promise<ModelRecord | null> {
    return run(() => {
      const m = this.#sql("SELECT * FROM models WHERE namespace = ? AND name = ?").get(
        namespace,
        name,
      );
      return m ? this.#modelRecord(m) : null;
    });
  }

  getVersion(namespace: string, name: string, version: string): Promise<VersionRecord | null> {
    return run(() => {
      const v = this.#sql(
        `SELECT v.* FROM versions v JOIN models m ON m.id = v.model_id
         WHERE m.namespace = ? AND m.name = ? AND v.version = ?`,
      ).get(namespace, name, version);
      if (!v) return null;
      const files = fileEntries(
        this.#sql("SELECT path, digest, size FROM files WHERE version_id = ? ORDER BY position")
          .all(Number(v.id)),
      );
      const downloads = Number(v.downloads) + this.#stored(Number(v.id), Number(v.downloads));
      return versionFromRow(namespace, name, v, files, downloads);
    });
  }

  setTag(
    namespace: string,
    name: string,
    tag: string,
    version: string,
    at?: string,
  ): Promise<void> {
    return this.#onVersion(namespace, name, version, at, (modelId, versionId) => {
      this.#setTagRow(modelId, tag, versionId);
      if (tag === "latest") this.#refreshSummary(modelId);
    });
  }

  setYanked(
    namespace: string,
    name: string,
    version: string,
    yanked: boolean,
    at?: string,
  ): Promise<void> {
    return this.#onVersion(namespace, name, version, at, (modelId, versionId) => {
      this.#sql("UPDATE versions SET yanked = ? WHERE id = ?").run(yanked ? 1 : 0, versionId);
      const states = this.#states(modelId);
      const target = latestAfterYank(this.#latest(modelId), states, version, yanked);
      const to = states.find((o) => o.version === target);
      if (to) this.#setTagRow(modelId, "latest", to.id);
      this.#refreshSummary(modelId);
    });
  }

  /** Runs a write on one version in a transaction, and marks its model changed at `at`. */
  #onVersion(
    namespace: string,
    name: string,
    version: string,
    at: string | undefined,
    fn: (modelId: number, versionId: number) => void,
  ): Promise<void> {
    return this.#write(() =>
      transaction(this.#db, () => {
        const v = this.#versionRow(namespace, name, version);
        if (!v) throw missingVersion(namespace, name, version);
        const modelId = Number(v.model_id);
        fn(modelId, Number(v.id));
        this.#touch(modelId, at ?? now());
      })
    );
  }

  /** Runs a write that may change models or versions, and says so in the next revision. */
  #write<T>(fn: () => T): Promise<T> {
    try {
      return run(fn);
    } finally {
      this.#ownWrites++;
    }
  }

  revision(namespace: string, name: string): Promise<Revision> {
    return run(() => {
      this.#noticeOtherWriters();
      // Both parts only grow, so their sum changes whenever either does.
      const own = this.#countsByModel.get(`${namespace}/${name}`) ?? 0;
      return { metadata: this.#ownWrites + this.#generation, downloads: this.#generation + own };
    });
  }

  countDownload(namespace: string, name: string, version: string): Promise<number> {
    return run(() => {
      if (this.#closed) {
        throw new TypeError(
          `Cannot count a download of "${namespace}/${name}@${version}": the store is closed`,
        );
      }
      // A GET must not wait for a write (an fsync, or another process holding
      // the lock for up to BUSY_TIMEOUT_MS): count in memory, write later.
      const key = `${namespace}/${name}@${version}`;
      let c = this.#counted.get(key);
      if (c === undefined || c.generation !== this.#generation) {
        const row = this.#sql(
          `SELECT v.id, v.downloads FROM versions v JOIN models m ON m.id = v.model_id
           WHERE m.namespace = ? AND m.name = ? AND v.version = ?`,
        ).get(namespace, name, version);
        if (!row) throw missingVersion(namespace, name, version);
        if (c === undefined) {
          c = {
            id: Number(row.id),
            model: `${namespace}/${name}`,
            stored: 0,
            generation: 0,
            unwritten: 0,
          };
          this.#counted.set(key, c);
          this.#countedById.set(c.id, c);
        }
        c.stored = Number(row.downloads);
        c.generation = this.#generation;
      }
      c.unwritten++;
      this.#unwritten.add(c);
      this.#countsByModel.set(c.model, (this.#countsByModel.get(c.model) ?? 0) + 1);
      this.#scheduleFlush();
      return c.stored + c.unwritten;
    });
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      try {
        // Never wait for another writer here: that would stall every request.
        this.#writeDownloads(0);
      } catch (e) {
        if (!isBusy(e)) {
          console.error(
            `Cannot write download counts to "${this.#path}": ${
              (e as Error).message
            }; retrying in ${this.#flushMs} ms`,
          );
        }
      }
      if (this.#unwritten.size > 0) this.#scheduleFlush();
    }, this.#flushMs);
  }

  /**
   * Writes the unwritten download counts in one transaction.
   *
   * @throws {Error} SQLITE_BUSY when another writer holds the lock for longer
   *   than `busyTimeoutMs`; the counts stay unwritten
   */
  #writeDownloads(busyTimeoutMs: number): void {
    if (this.#unwritten.size === 0) return;
    const db = this.#db;
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    // A counter is not worth an fsync (2.6 ms against 0.14 ms measured in
    // bench/results/registry.md): commit without syncing the WAL; the next
    // publish's FULL commit or a checkpoint makes it durable.
    db.exec("PRAGMA synchronous = NORMAL");
    try {
      const add = this.#sql(
        "UPDATE versions SET downloads = downloads + ? WHERE id = ? RETURNING downloads",
      );
      // A statement, not exec(): only statements tell SQLITE_BUSY by its code.
      this.#sql("BEGIN IMMEDIATE").run();
      const stored: number[] = [];
      try {
        for (const c of this.#unwritten) stored.push(Number(add.get(c.unwritten, c.id)?.downloads));
        db.exec("COMMIT");
      } catch (e) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw e;
      }
      // All of this ran synchronously, so nothing was counted meanwhile.
      [...this.#unwritten].forEach((c, i) => {
        c.stored = stored[i] ?? c.stored + c.unwritten;
        c.generation = this.#generation;
        c.unwritten = 0;
      });
      this.#unwritten.clear();
    } finally {
      db.exec("PRAGMA synchronous = FULL");
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  flush(): Promise<void> {
    return run(() => this.#writeDownloads(BUSY_TIMEOUT_MS));
  }

  listModels(q: ListQuery): Promise<{ items: ModelRecord[]; nextCursor: string | null }> {
    return run(() => {
      // Sorting and cursors use the stored counts: write ours first when the
      // lock is free; if it is not, the page shows them but sorts without them.
      try {
        this.#writeDownloads(0);
      } catch (e) {
        if (!isBusy(e)) throw e;
      }
      const { sort, limit } = listParams(q.sort, q.limit);
      const column = sort === "updated" ? "updated_at" : "downloads";
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (q.search !== undefined && q.search !== "") {
        where.push("instr(search_text, ?) > 0");
        params.push(q.search.toLowerCase());
      }
      if (q.task !== undefined) {
        where.push("task = ?");
        params.push(q.task);
      }
      if (q.cursor !== undefined) {
        const c = decodeCursor(q.cursor, sort);
        where.push(`(${column} < ? OR (${column} = ? AND full_name > ?))`);
        params.push(c.k, c.k, c.n);
      }
      const rows = this.#sql(
        `SELECT * FROM models ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY ${column} DESC, full_name ASC LIMIT ?`,
      ).all(...params, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextCursor = rows.length > limit && last
        ? encodeCursor({
          s: sort,
          k: sort === "updated" ? String(last.updated_at) : Number(last.downloads),
          n: String(last.full_name),
        })
        : null;
      return { items: page.map((m) => this.#modelRecord(m)), nextCursor };
    });
  }

  addToken(t: TokenRecord): Promise<void> {
    return run(() => {
      try {
        this.#sql(
          "INSERT INTO tokens (id, hash, scopes, label, created_at) VALUES (?, ?, ?, ?, ?)",
        ).run(t.id, t.hash, JSON.stringify(t.scopes), t.label, t.createdAt);
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        throw new ConflictError(
          t.id,
          `Token "${
            printable(t.id)
          }" or a token with the same secret exists already: generate a new token`,
        );
      }
    });
  }

  findToken(hash: string): Promise<TokenRecord | null> {
    return run(() => {
      const row = this.#sql("SELECT * FROM tokens WHERE hash = ?").get(hash);
      if (!row) return null;
      return {
        id: String(row.id),
        hash: String(row.hash),
        scopes: parseJson<string[]>(row.scopes, []),
        label: String(row.label),
        createdAt: String(row.created_at),
      };
    });
  }

  async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) {
      throw new RangeError(
        `Invalid lock name "${printable(name)}": use lowercase letters, digits and "-"`,
      );
    }
    // A lock file beside the database: locks held by other processes, or by
    // other instances in this one, exclude each other alike.
    const file = await Deno.open(`${this.#path}.${name}.lock`, { create: true, write: true });
    try {
      await file.lock(true);
      return await fn();
    } finally {
      file.close();
    }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    return run(() => {
      try {
        this.#writeDownloads(BUSY_TIMEOUT_MS);
      } finally {
        this.#statements.clear();
        this.#walHeader?.close();
        this.#db.close();
      }
    });
  }
}

/** Runs synchronous work so that its errors reject the returned promise. */
function run<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}
