/**
 * Rules every storage backend shares, so that they answer alike: page limits
 * and cursors of `listModels`, which version takes `latest`, the summary a
 * model copies from its latest card, byte ranges, the errors for missing
 * versions, and the records built from the rows both databases hold.
 *
 * @module
 */

import {
  compareSemver,
  highestVersion,
  isPrerelease,
  isSemver,
  printable,
} from "../../core/names.ts";
import {
  type FileEntry,
  type ModelRecord,
  type NewVersion,
  NotFoundError,
  type VersionRecord,
} from "./store.ts";
import type { VersionSummary } from "../../core/wire.ts";

/** Smallest, default and largest page of `listModels`. */
export const LIMIT = { min: 1, default: 20, max: 100 } as const;

/** A listing cursor, before encoding. */
export interface Cursor {
  /** The sort it belongs to. */
  s: "downloads" | "updated";
  /** The sort key of the last item. */
  k: string | number;
  /** The full name of the last item. */
  n: string;
}

/**
 * Encodes a listing cursor as URL-safe base64 JSON.
 *
 * @param c the cursor
 * @returns its opaque form
 */
export function encodeCursor(c: Cursor): string {
  const bytes = new TextEncoder().encode(JSON.stringify(c));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/**
 * Decodes a cursor made by {@linkcode encodeCursor} for the same sort.
 *
 * @param cursor the opaque cursor
 * @param sort the sort of the page asked for
 * @returns the cursor
 * @throws {RangeError} when it is not one of ours for that sort
 */
export function decodeCursor(cursor: string, sort: Cursor["s"]): Cursor {
  const invalid = () =>
    new RangeError(
      `Invalid cursor "${
        printable(cursor)
      }": pass the nextCursor of a previous page with the same sort, or omit it to start over`,
    );
  let c: unknown;
  try {
    const b64 = cursor.replaceAll("-", "+").replaceAll("_", "/");
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    c = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw invalid();
  }
  if (typeof c !== "object" || c === null) throw invalid();
  const { s, k, n } = c as Record<string, unknown>;
  if (s !== sort || typeof n !== "string") throw invalid();
  if (sort === "updated" && typeof k !== "string") throw invalid();
  if (sort === "downloads" && !Number.isSafeInteger(k)) throw invalid();
  return { s: sort, k: k as string | number, n };
}

/**
 * A version this instance counted downloads of. Versions are never deleted,
 * so its id stays valid for the life of the store.

/**
 * Checks the sort and limit of a listing query.
 *
 * @param sort the asked sort, `updated` when absent
 * @param limit the asked page size, 20 when absent
 * @returns both, checked
 * @throws {RangeError} when either is invalid
 */
export function listParams(
  sort: string | undefined,
  limit: number | undefined,
): { sort: Cursor["s"]; limit: number } {
  const s = sort ?? "updated";
  if (s !== "updated" && s !== "downloads") {
    throw new RangeError(`Invalid sort "${printable(String(s))}": use "downloads" or "updated"`);
  }
  const l = limit ?? LIMIT.default;
  if (!Number.isInteger(l) || l < LIMIT.min || l > LIMIT.max) {
    throw new RangeError(`Invalid limit ${l}: use an integer from ${LIMIT.min} to ${LIMIT.max}`);
  }
  return { sort: s, limit: l };
}

/** A version as the `latest` rules see it. */
export interface VersionState {
  /** Semver version. */
  version: string;
  /** Whether it is yanked. */
  yanked: boolean;
}

/**
 * Whether a new version takes `latest`: when the model has none yet, or when
 * it is a release above every other non-yanked release.
 *
 * @param latest the version `latest` points at, or null
 * @param others the model's other versions
 * @param version the new version
 * @returns true when `latest` moves to it
 */
export function takesLatest(
  latest: string | null,
  others: readonly VersionState[],
  version: string,
): boolean {
  if (latest === null) return true;
  if (isPrerelease(version)) return false;
  return others.every((o) =>
    o.version === version || o.yanked || isPrerelease(o.version) ||
    compareSemver(version, o.version) > 0
  );
}

/**
 * The best non-yanked version: the highest release, else the highest
 * prerelease.
 *
 * @param versions the model's versions
 * @returns the best one, or undefined when all are yanked
 */
export function bestVersion<T extends VersionState>(versions: readonly T[]): T | undefined {
  const live = versions.filter((o) => !o.yanked);
  const best = highestVersion(live.map((o) => o.version));
  return live.find((o) => o.version === best);
}

/**
 * Where `latest` goes after a yank or un-yank, or undefined when it stays.
 *
 * @param latest the version `latest` points at, or null
 * @param versions the model's versions, the change applied
 * @param version the version yanked or un-yanked
 * @param yanked whether it was yanked
 * @returns the new target of `latest`, or undefined
 */
export function latestAfterYank(
  latest: string | null,
  versions: readonly VersionState[],
  version: string,
  yanked: boolean,
): string | undefined {
  if (yanked && latest === version) return bestVersion(versions)?.version;
  if (!yanked && !isPrerelease(version)) {
    const current = latest === null ? undefined : versions.find((o) => o.version === latest);
    if (
      current === undefined || current.yanked || isPrerelease(current.version) ||
      compareSemver(version, current.version) > 0
    ) return version;
  }
  return undefined;
}

/** What a model copies from the card `latest` points at. */
export interface ModelSummary {
  /** The card's description. */
  description: string;
  /** The card's task. */
  task: string;
  /** The card's labels. */
  labels: string[];
  /** Lowercased text that search matches. */
  searchText: string;
}

/**
 * The summary of a model from its latest card.
 *
 * @param fullName `namespace/name`
 * @param card the card `latest` points at (empty when none)
 * @returns its summary
 */
export function modelSummary(fullName: string, card: Record<string, unknown>): ModelSummary {
  const description = text(card.description);
  const task = text(card.task);
  const labels = Array.isArray(card.labels)
    ? card.labels.filter((l): l is string => typeof l === "string")
    : [];
  const searchText = [fullName, description, task, ...labels].join("\n").toLowerCase();
  return { description, task, labels, searchText };
}

/**
 * Checks a new version's number and file list before it is stored.
 *
 * @param v the namespace, name, version and files of the new version
 * @throws {RangeError} when the version is not semver or a path is listed twice
 */
export function checkNewVersion(
  v: { namespace: string; name: string; version: string; files: readonly { path: string }[] },
): void {
  const key = `${v.namespace}/${v.name}@${v.version}`;
  if (!isSemver(v.version)) {
    throw new RangeError(
      `Cannot publish "${printable(key)}": "${
        printable(v.version)
      }" is not a semver version such as "1.2.0"`,
    );
  }
  const paths = new Set<string>();
  for (const f of v.files) {
    if (paths.has(f.path)) {
      throw new RangeError(
        `Cannot publish "${printable(key)}": file "${
          printable(f.path)
        }" is listed twice; list each path once`,
      );
    }
    paths.add(f.path);
  }
}

/**
 * The error for a version that does not exist.
 *
 * @param namespace its namespace
 * @param name its model name
 * @param version its version
 * @returns the error to throw
 */
export function missingVersion(namespace: string, name: string, version: string): NotFoundError {
  const key = `${namespace}/${name}@${version}`;
  return new NotFoundError(
    key,
    `Version "${printable(key)}" does not exist: publish it first or pick an existing version`,
  );
}

/**
 * Checks a byte range of a blob.
 *
 * @param digest the blob's digest, for the message
 * @param size the blob's size
 * @param start first byte
 * @param end last byte, inclusive
 * @throws {RangeError} unless `0 <= start <= end < size`
 */
export function checkRange(digest: string, size: number, start: number, end: number): void {
  if (
    !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start ||
    end >= size
  ) {
    throw new RangeError(
      `Invalid range ${start}-${end} of blob "${digest}": it has ${size} bytes; ask for 0 <= start <= end < ${size}`,
    );
  }
}

/** The time now as ISO 8601. */
export function now(): string {
  return new Date().toISOString();
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** A row as a database driver returns it: column name → value. */
export type Row = Record<string, unknown>;

/**
 * Parses a JSON column.
 *
 * @param value the column's value
 * @param fallback what an empty column stands for
 * @returns the parsed value
 */
export function parseJson<T>(value: unknown, fallback: T): T {
  return typeof value === "string" ? JSON.parse(value) as T : fallback;
}

/**
 * A version's files from its `files` rows.
 *
 * @param rows `path, digest, size`, in position order
 * @returns the files
 */
export function fileEntries(rows: readonly Row[]): FileEntry[] {
  return rows.map((f) => ({
    path: String(f.path),
    digest: String(f.digest),
    size: Number(f.size),
  }));
}

/**
 * A version from its `versions` row.
 *
 * @param namespace the model's namespace
 * @param name the model's name
 * @param v the row
 * @param files its files
 * @param downloads its downloads (a backend may add counts not yet written)
 * @returns the record
 */
export function versionFromRow(
  namespace: string,
  name: string,
  v: Row,
  files: FileEntry[],
  downloads: number = Number(v.downloads),
): VersionRecord {
  const record: VersionRecord = {
    namespace,
    name,
    version: String(v.version),
    files,
    card: parseJson<Record<string, unknown>>(v.card, {}),
    architecture: parseJson<Record<string, unknown>>(v.architecture, {}),
    createdAt: String(v.created_at),
    // SQLite stores 0/1, PostgreSQL a boolean.
    yanked: Boolean(v.yanked),
    downloads,
  };
  if (typeof v.published_by === "string") record.publishedBy = v.published_by;
  return record;
}

/**
 * A version's line in its model's summary, from its `versions` row.
 *
 * @param v the row
 * @param downloads its downloads
 * @returns the summary
 */
export function versionSummary(v: Row, downloads: number = Number(v.downloads)): VersionSummary {
  return {
    version: String(v.version),
    createdAt: String(v.created_at),
    yanked: Boolean(v.yanked),
    downloads,
  };
}

/**
 * A model from its `models` row.
 *
 * @param m the row
 * @param versions its versions, oldest first
 * @param tags tag → version
 * @param downloads its downloads
 * @returns the record
 */
export function modelFromRow(
  m: Row,
  versions: VersionSummary[],
  tags: Record<string, string>,
  downloads: number = Number(m.downloads),
): ModelRecord {
  return {
    namespace: String(m.namespace),
    name: String(m.name),
    description: String(m.description),
    task: String(m.task),
    labels: parseJson<string[]>(m.labels, []),
    updatedAt: String(m.updated_at),
    downloads,
    versions,
    tags,
  };
}

/**
 * The record of a version just published.
 *
 * @param v what was published
 * @param createdAt when
 * @returns the record, as a read would return it
 */
export function publishedRecord(v: NewVersion, createdAt: string): VersionRecord {
  const record: VersionRecord = {
    namespace: v.namespace,
    name: v.name,
    version: v.version,
    files: v.files.map((f) => ({ path: f.path, digest: f.digest, size: f.size })),
    card: v.card,
    architecture: v.architecture,
    createdAt,
    yanked: false,
    downloads: v.downloads ?? 0,
  };
  if (v.publishedBy !== undefined) record.publishedBy = v.publishedBy;
  return record;
}
