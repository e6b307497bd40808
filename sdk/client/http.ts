/**
 * The client's HTTP side: requests to one registry with its token, a
 * registry's refusal turned into a {@linkcode RegistryError}, network
 * failures into a TypeError naming the registry, and blob uploads through
 * `node:http` with a Content-Length.
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import { printable } from "../../core/names.ts";
import { NotFoundError, type Problem, RegistryError } from "../errors.ts";

/** Uploads stream a file in chunks of this size. */
const UPLOAD_CHUNK = 1 << 20;

/** A blob about to be uploaded, hashed. */
export interface UploadBody {
  /** `sha256:<hex>` of the bytes {@linkcode body} sends. */
  digest: string;
  /** Its length in bytes. */
  size: number;
  /** The bytes to upload, in memory, or the file to stream them from. */
  body: Uint8Array<ArrayBuffer> | { file: string };
}

/** Requests to one registry: its URL, its token, the fetch to use. */
export class RegistryHttp {
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #customFetch: boolean;

  /**
   * Prepares requests; nothing is sent until asked.
   *
   * @param url the registry's base URL, without a trailing slash
   * @param token a bearer token, or undefined
   * @param customFetch the fetch to use instead of the global one (uploads then go through it too)
   */
  constructor(readonly url: string, token: string | undefined, customFetch?: typeof fetch) {
    this.#token = token;
    const f = customFetch ?? globalThis.fetch;
    this.#customFetch = customFetch !== undefined;
    this.#fetch = (input, init) => f(input, init);
  }

  /**
   * Sends a request; network failures become a TypeError naming the registry.
   *
   * @param action what the request is for, e.g. `Cannot resolve "zoo/lenet5"`
   * @param path the path after the registry's URL
   * @param init the request
   * @returns the answer, whatever its status
   * @throws {TypeError} when the registry cannot be reached
   */
  async send(action: string, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#token !== undefined && this.#token !== "") {
      headers.set("authorization", `Bearer ${this.#token}`);
    }
    const url = `${this.url}${path}`;
    try {
      return await this.#fetch(url, { ...init, headers });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new TypeError(
        `${action}: cannot reach the registry at "${this.url}": ${why}; check ZOO_URL or --registry, or use offline mode (ZOO_OFFLINE=1) with a cached version`,
        { cause: e },
      );
    }
  }

  /**
   * Sends a request and throws the registry's problem on a non-2xx answer.
   *
   * @param action what the request is for
   * @param path the path after the registry's URL
   * @param init the request
   * @returns the 2xx answer
   * @throws {RegistryError} when the registry refuses
   * @throws {TypeError} when the registry cannot be reached
   */
  async request(action: string, path: string, init: RequestInit = {}): Promise<Response> {
    const res = await this.send(action, path, init);
    if (res.ok) return res;
    throw await problemError(action, res);
  }

  /**
   * Whether the registry holds a blob (a HEAD request).
   *
   * @param action what the request is for
   * @param digest `sha256:<hex>`
   * @returns true on a 2xx answer
   */
  async hasBlob(action: string, digest: string): Promise<boolean> {
    const res = await this.send(action, `/api/blobs/${digest}`, { method: "HEAD" });
    await res.body?.cancel();
    // A HEAD answer has no problem body to explain a refusal: let the upload
    // itself fail with the registry's detail.
    return res.ok;
  }

  /**
   * Uploads one blob. Without a custom fetch it goes through node:http with a
   * Content-Length: Deno's fetch sends a streamed body chunked, which costs
   * the registry (a Deno server) about ten times the CPU when four run at
   * once (3.2 s against 0.33 s for 4 × 32 MiB), and even a body in memory
   * costs fetch three times the CPU of node:http (0.28-0.37 s against 0.09
   * s for 4 × 32 MiB on loopback, client and server together).
   *
   * @param action what the upload is for
   * @param f the hashed blob
   * @throws {RegistryError} when the registry refuses (400 for a digest mismatch)
   * @throws {TypeError} when the registry cannot be reached
   */
  async upload(action: string, f: UploadBody): Promise<void> {
    const path = `/api/blobs?digest=${encodeURIComponent(f.digest)}`;
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (this.#customFetch) {
      const body = f.body instanceof Uint8Array ? f.body : fileStream(await Deno.open(f.body.file));
      await this.request(action, path, { method: "POST", headers, body });
      return;
    }
    if (this.#token !== undefined && this.#token !== "") {
      headers.authorization = `Bearer ${this.#token}`;
    }
    headers["content-length"] = String(f.size);
    const url = new URL(`${this.url}${path}`);
    let res: Response;
    try {
      res = await postNode(url, headers, f.body);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new TypeError(
        `${action}: cannot reach the registry at "${this.url}": ${why}; check ZOO_URL or --registry`,
        { cause: e },
      );
    }
    if (!res.ok) throw await problemError(action, res, url.href);
  }
}

/**
 * Turns an error response into a {@linkcode RegistryError} (or {@linkcode NotFoundError}).
 *
 * @param action what the request was for
 * @param res the refusal
 * @param url the URL to name, by default the response's
 * @returns the error to throw
 */
export async function problemError(
  action: string,
  res: Response,
  url = res.url,
): Promise<RegistryError> {
  let problem: Problem = {
    type: "about:blank",
    title: res.statusText || `HTTP ${res.status}`,
    status: res.status,
    detail: "the registry gave no detail",
  };
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as Partial<Problem>;
    problem = {
      type: typeof body.type === "string" ? body.type : problem.type,
      title: typeof body.title === "string" ? body.title : problem.title,
      status: res.status,
      detail: typeof body.detail === "string" ? body.detail : problem.detail,
    };
  } catch {
    if (text.trim() !== "") problem.detail = printable(text.trim());
  }
  return res.status === 404
    ? new NotFoundError(action, url, problem)
    : new RegistryError(action, url, problem);
}

/**
 * POSTs a body with node:http(s), streaming a file in {@linkcode UPLOAD_CHUNK}s
 * (waiting for the socket to drain), and answers a fetch-like Response.
 */
function postNode(
  url: URL,
  headers: Record<string, string>,
  body: Uint8Array | { file: string },
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const req = (url.protocol === "https:" ? https : http).request(
      url,
      { method: "POST", headers },
      (res) => {
        const chunks: Uint8Array<ArrayBuffer>[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(new Uint8Array(c)));
        res.on("error", reject);
        res.on("end", () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === "string") out.set(k, v);
          }
          const status = res.statusCode ?? 502;
          resolve(
            new Response(status === 204 || status === 304 ? null : new Blob(chunks), {
              status,
              statusText: res.statusMessage ?? "",
              headers: out,
            }),
          );
        });
      },
    );
    req.on("error", reject);
    const drained = () => new Promise<void>((r) => req.once("drain", () => r()));
    (async () => {
      if (body instanceof Uint8Array) {
        for (let off = 0; off < body.byteLength; off += UPLOAD_CHUNK) {
          if (!req.write(body.subarray(off, off + UPLOAD_CHUNK))) await drained();
        }
      } else {
        using file = await Deno.open(body.file);
        for (;;) {
          // A fresh buffer per chunk: the socket may still hold the last one.
          const buf = new Uint8Array(UPLOAD_CHUNK);
          const n = await file.read(buf);
          if (n === null) break;
          if (!req.write(buf.subarray(0, n))) await drained();
        }
      }
      req.end();
    })().catch((e) => req.destroy(e instanceof Error ? e : new Error(String(e))));
  });
}

/** A file's bytes as a stream of large chunks; the file is closed at the end or on cancel. */
function fileStream(file: Deno.FsFile): ReadableStream<Uint8Array> {
  const close = () => {
    try {
      file.close();
    } catch {
      // already closed
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const buf = new Uint8Array(UPLOAD_CHUNK);
        const n = await file.read(buf);
        if (n === null) {
          close();
          controller.close();
        } else {
          controller.enqueue(n === buf.byteLength ? buf : buf.subarray(0, n));
        }
      } catch (e) {
        close();
        controller.error(e);
      }
    },
    cancel: close,
  });
}
