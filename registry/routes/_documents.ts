/**
 * The serialized model and version documents of one registry app, so that a
 * metadata GET reads no rows and serializes nothing. Every entry belongs to
 * the store's {@linkcode Revision} it was read under: a publish, tag move or
 * yank anywhere (this app, another app on the store, another process on the
 * same data) changes the revision and empties the cache before the next read.
 *
 * @module
 */
import type { Revision } from "../storage/store.ts";

/** Entries kept per kind; the oldest goes first. */
const MAX_ENTRIES = 1000;

/** Stands in for the download count while a version document is serialized. */
const MARKER = `zoo-downloads-${crypto.randomUUID()}`;
const MARKER_JSON = JSON.stringify(MARKER);

/**
 * A version document serialized around its download count, the one field
 * that changes on every GET: the body is `head + downloads + tail`.
 */
export interface VersionBody {
  /** The exact version the reference resolved to. */
  version: string;
  head: string;
  tail: string;
}

/**
 * Serializes a version document around its `downloads` field.
 *
 * @param version the exact version
 * @param doc the document, with a `downloads` field
 * @returns the two halves
 */
export function versionBody(version: string, doc: Record<string, unknown>): VersionBody {
  const json = JSON.stringify({ ...doc, downloads: MARKER });
  const at = json.indexOf(MARKER_JSON);
  return { version, head: json.slice(0, at), tail: json.slice(at + MARKER_JSON.length) };
}

/** Model documents by `namespace/name` and version documents by `namespace/name@ref`. */
export class DocumentCache {
  #metadata = NaN;
  readonly #models = new Map<string, { downloads: number; body: string }>();
  readonly #versions = new Map<string, VersionBody>();

  /** Forgets everything read under an older metadata revision. */
  #sync(rev: Revision): void {
    if (rev.metadata === this.#metadata) return;
    this.#metadata = rev.metadata;
    this.#models.clear();
    this.#versions.clear();
  }

  /**
   * A model document read under `rev`, or undefined.
   *
   * @param key `namespace/name`
   * @param rev the store's revision, read before this call
   * @returns the serialized document
   */
  model(key: string, rev: Revision): string | undefined {
    this.#sync(rev);
    const hit = this.#models.get(key);
    return hit?.downloads === rev.downloads ? hit.body : undefined;
  }

  /**
   * Keeps a model document.
   *
   * @param key `namespace/name`
   * @param rev the revision read before the model was
   * @param body the serialized document
   */
  setModel(key: string, rev: Revision, body: string): void {
    this.#sync(rev);
    put(this.#models, key, { downloads: rev.downloads, body });
  }

  /**
   * A version document read under `rev`, or undefined. Its download count is
   * not part of it, so only the metadata revision matters.
   *
   * @param key `namespace/name@ref`, the reference a version or a tag
   * @param rev the store's revision, read before this call
   * @returns the serialized halves
   */
  version(key: string, rev: Revision): VersionBody | undefined {
    this.#sync(rev);
    return this.#versions.get(key);
  }

  /**
   * Keeps a version document.
   *
   * @param key `namespace/name@ref`
   * @param rev the revision read before the version was
   * @param body the serialized halves
   */
  setVersion(key: string, rev: Revision, body: VersionBody): void {
    this.#sync(rev);
    put(this.#versions, key, body);
  }
}

function put<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= MAX_ENTRIES) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}
