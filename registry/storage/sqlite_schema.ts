/**
 * The SQLite database of the embedded metadata store: its schema, how it is
 * opened (WAL, synchronous FULL, foreign keys, created or checked against
 * {@linkcode SCHEMA_VERSION}), write transactions, and the error codes the
 * store tells apart.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

/** How long a connection waits for another writer before giving up, in ms. */
export const BUSY_TIMEOUT_MS = 10_000;
/** The schema this code writes; `PRAGMA user_version` of the database. */
export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE models (
  id          INTEGER PRIMARY KEY,
  namespace   TEXT NOT NULL,
  name        TEXT NOT NULL,
  full_name   TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  task        TEXT NOT NULL DEFAULT '',
  labels      TEXT NOT NULL DEFAULT '[]',
  search_text TEXT NOT NULL DEFAULT '',
  updated_at  TEXT NOT NULL,
  downloads   INTEGER NOT NULL DEFAULT 0,
  UNIQUE (namespace, name)
) STRICT;
CREATE INDEX models_by_updated ON models (updated_at DESC, full_name);
CREATE INDEX models_by_downloads ON models (downloads DESC, full_name);
CREATE INDEX models_by_task ON models (task);

CREATE TABLE versions (
  id           INTEGER PRIMARY KEY,
  model_id     INTEGER NOT NULL REFERENCES models (id),
  version      TEXT NOT NULL,
  card         TEXT NOT NULL,
  architecture TEXT NOT NULL,
  published_by TEXT,
  created_at   TEXT NOT NULL,
  yanked       INTEGER NOT NULL DEFAULT 0,
  downloads    INTEGER NOT NULL DEFAULT 0,
  UNIQUE (model_id, version)
) STRICT;

CREATE TABLE files (
  version_id INTEGER NOT NULL REFERENCES versions (id),
  position   INTEGER NOT NULL,
  path       TEXT NOT NULL,
  digest     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  PRIMARY KEY (version_id, position),
  UNIQUE (version_id, path)
) STRICT;
CREATE INDEX files_by_digest ON files (digest);

CREATE TABLE tags (
  model_id   INTEGER NOT NULL REFERENCES models (id),
  tag        TEXT NOT NULL,
  version_id INTEGER NOT NULL REFERENCES versions (id),
  PRIMARY KEY (model_id, tag)
) STRICT;

CREATE TABLE tokens (
  id         TEXT PRIMARY KEY,
  hash       TEXT NOT NULL UNIQUE,
  scopes     TEXT NOT NULL,
  label      TEXT NOT NULL,
  created_at TEXT NOT NULL
) STRICT;

-- A model's downloads are the sum of its versions', kept in step so that
-- sorting by downloads needs no aggregate.
CREATE TRIGGER versions_downloads AFTER UPDATE OF downloads ON versions
BEGIN
  UPDATE models SET downloads = downloads + NEW.downloads - OLD.downloads
  WHERE id = NEW.model_id;
END;
`;

/**
 * Opens a database file, creating its schema when it is new.
 *
 * @param path the file
 * @returns the connection
 * @throws {Error} when a newer registry wrote the file
 */
export function openDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
  try {
    db.exec("PRAGMA journal_mode = WAL");
    // FULL: a publish the client saw succeed survives a power cut, like its blobs.
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    transaction(db, () => {
      const row = db.prepare("PRAGMA user_version").get();
      const current = Number(row?.user_version ?? 0);
      if (current === 0) {
        db.exec(SCHEMA);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      } else if (current > SCHEMA_VERSION) {
        throw new Error(
          `Cannot open "${path}": it has schema version ${current}, this registry knows up to ${SCHEMA_VERSION}; upgrade the registry`,
        );
      }
    });
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/**
 * Runs `fn` in one write transaction. `fn` must be synchronous: nothing else
 * may run on this connection between BEGIN and COMMIT.
 */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

/**
 * SQLITE_BUSY and its extended codes: another connection holds the lock.
 *
 * @param e an error thrown by node:sqlite
 * @returns whether it is SQLITE_BUSY
 */
export function isBusy(e: unknown): boolean {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" && (code & 0xff) === 5;
}

/**
 * SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY.
 *
 * @param e an error thrown by node:sqlite
 * @returns whether it is a unique violation
 */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return code === 2067 || code === 1555;
}
