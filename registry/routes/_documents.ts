/**
 * The serialized model and version documents of one registry app, so that a
 * metadata GET reads no rows and serializes nothing. Every entry belongs to
 * the store's {@linkcode Revision} it was read under: a publish, tag move or
 * yank anywhere (this app, another app on the store, another process on the
 * same data) changes the revision and empties the cache before the next read.
 *
 * {@linkcode cachedReads} answers
 * a repeated anonymous GET of one of them before the request reaches the
 * router: the same bytes and headers the route would send, for a path the
 * route has already validated and answered.
 *
 * @module
 */
import type { Revision, Store } from "../storage/store.ts";

/** Entries kept per kind; the oldest goes first. */
const MAX_ENTRIES = 1000;

/** Stands in for the download count while a version document is serialized. */
const MARKER = `zoo-downloads-${crypto.randomUUID()}`;
const MARKER_JSON = JSON.stringify(MARKER);

/**
 * A version document serialized around its download count, the one field
 * that changes on every GET: the body is `head + downloads + tail`. It is
 * kept as strings: a string body costs `Response` far less than bytes do.
 */
export interface VersionBody {
  /** The exact version the reference resolved to. */
  version: string;
  /** The JSON before the count. */
  head: string;
  /** The JSON after the count. */
  tail: string;
}

/**
 * A version document with its download count.
 *
 * @param doc the serialized halves
 * @param downloads the count to put between them
 * @returns the whole document
 */
export function versionText(doc: VersionBody, downloads: number): string {
  return doc.head + downloads + doc.tail;
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

  /**
   * Whether a model (`namespace/name`) or version (`namespace/name@ref`)
   * document is kept, whatever revision it was read under.
   *
   * @param key the document's key
   * @returns true when a read may find it
   */
  has(key: string): boolean {
    return this.#models.has(key) || this.#versions.has(key);
  }
}

/** How {@linkcode cachedReads} answers. */
export interface CachedReadOptions {
  /** The store the documents were read from. */
  store: Store;
  /** The documents the model routes keep. */
  docs: DocumentCache;
  /** The headers the routes' responses carry (content type, CORS). */
  headers: Record<string, string>;
}

const PREFIX = "/api/models/";

/**
 * The front door for the two hottest reads, `GET /api/models/{ns}/{name}`
 * and `GET /api/models/{ns}/{name}/{ref}`: when the document is kept and
 * still current, the answer skips routing, validation and middleware, which
 * cost more than the answer itself. It takes only what the routes would
 * answer the same way: an anonymous GET (a token goes through the app, which
 * checks it) with a plain path (no query, no percent-escapes) that the
 * route itself already validated and answered, since only then is its
 * document kept. Everything else, a miss included, goes to `next`. Do not
 * put it in front of a private registry's app: every read there needs a
 * token.
 *
 * @param options the store, the documents and the response headers
 * @returns a fetch handler wrapping `next`
 */
export function cachedReads(
  options: CachedReadOptions,
): (req: Request, next: (req: Request) => Response | Promise<Response>) => Promise<Response> {
  const { store, docs, headers } = options;
  const answer = async (
    req: Request,
    next: (req: Request) => Response | Promise<Response>,
    ns: string,
    name: string,
    ref: string | undefined,
  ): Promise<Response> => {
    const rev = await store.revision(ns, name);
    if (ref === undefined) {
      const body = docs.model(`${ns}/${name}`, rev);
      return body ? new Response(body, { headers }) : next(req);
    }
    const doc = docs.version(`${ns}/${name}@${ref}`, rev);
    if (!doc) return next(req);
    const downloads = await store.countDownload(ns, name, doc.version);
    return new Response(versionText(doc, downloads), { headers });
  };
  return (req, next) => {
    const url = req.url;
    const at = url.indexOf(PREFIX, url.indexOf("//") + 2);
    if (
      req.method !== "GET" || at < 0 || url.indexOf("/", url.indexOf("//") + 2) !== at ||
      url.includes("?") || url.includes("%") || req.headers.has("authorization")
    ) {
      return Promise.resolve(next(req));
    }
    const parts = url.slice(at + PREFIX.length).split("/");
    const [ns, name, ref] = parts;
    if (
      ns === undefined || name === undefined || parts.length > 3 ||
      !docs.has(ref === undefined ? `${ns}/${name}` : `${ns}/${name}@${ref}`)
    ) {
      return Promise.resolve(next(req));
    }
    return answer(req, next, ns, name, ref).catch(() => next(req));
  };
}

function put<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= MAX_ENTRIES) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}
