/**
 * Blob routes: content-addressed bytes, uploaded streamed and verified,
 * served immutable with ranges and conditional requests.
 *
 * @module
 */
import { Hono } from "hono";
import { DIGEST, printable } from "../../core/names.ts";
import { HttpProblem } from "../problem.ts";
import { DigestMismatchError } from "../storage/store.ts";
import type { RegistryEnv } from "../app.ts";
import { requireAnyPublish, requireRead } from "../middleware/auth.ts";
import { requestBody } from "../middleware/deadline.ts";
import { canRead } from "../auth.ts";

/** Checks a digest from a URL or query; a 400 problem otherwise. */
export function checkDigest(value: string): string {
  if (!DIGEST.test(value)) {
    throw new HttpProblem(
      400,
      `Invalid digest "${printable(value)}": use "sha256:" followed by 64 lowercase hex digits`,
    );
  }
  return value;
}

/** Parses a single `bytes=` range against a size; null for none or multiple ranges. */
function parseRange(
  header: string,
  size: number,
): { start: number; end: number } | "unsatisfiable" | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return null;
  let start: number;
  let end: number;
  if (a === "") {
    const suffix = Number(b);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== "" && Number(b) < start) return null;
  }
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

/**
 * The blob routes.
 *
 * @returns a Hono app with `GET/HEAD /api/blobs/:digest` and `POST /api/blobs`
 */
export function blobRoutes(): Hono<RegistryEnv> {
  const app = new Hono<RegistryEnv>();

  app.get("/api/blobs/:digest", requireRead, async (c) => {
    const digest = checkDigest(c.req.param("digest"));
    const { store } = c.var;
    const info = await store.blobs.stat(digest);
    if (!info) {
      throw new HttpProblem(
        404,
        `Blob "${digest}" does not exist: upload it with POST /api/blobs?digest=${digest}`,
      );
    }
    const etag = `"${digest}"`;
    const headers: Record<string, string> = {
      "etag": etag,
      "cache-control": "public, max-age=31536000, immutable",
      "accept-ranges": "bytes",
      "content-type": "application/octet-stream",
    };
    const inm = c.req.header("if-none-match");
    if (inm !== undefined && etagMatches(inm, etag)) return c.body(null, 304, headers);
    if (c.req.method === "GET" && store.blobs.redirectUrl) {
      // The client fetches the bytes (ranges included) from object storage;
      // the redirect expires, so it is not cached like the bytes are.
      return c.body(null, 302, {
        etag,
        "location": await store.blobs.redirectUrl(digest),
        "cache-control": "no-store",
      });
    }

    let range: ReturnType<typeof parseRange> = null;
    const rangeHeader = c.req.header("range");
    const ifRange = c.req.header("if-range");
    if (rangeHeader !== undefined && (ifRange === undefined || ifRange === etag)) {
      range = parseRange(rangeHeader, info.size);
    }
    if (range === "unsatisfiable") {
      throw new HttpProblem(
        416,
        `Range "${printable(rangeHeader ?? "")}" is outside blob "${digest}" of ${info.size} bytes`,
        { headers: { "content-range": `bytes */${info.size}` } },
      );
    }
    const status = range ? 206 : 200;
    const length = range ? range.end - range.start + 1 : info.size;
    headers["content-length"] = String(length);
    if (range) headers["content-range"] = `bytes ${range.start}-${range.end}/${info.size}`;
    if (c.req.method === "HEAD") return c.body(null, status, headers);
    const body = await store.blobs.read(digest, range ?? undefined);
    if (!body) throw new HttpProblem(404, `Blob "${digest}" does not exist`);
    return c.body(body, status, headers);
  });

  app.post("/api/blobs", requireAnyPublish, async (c) => {
    const { store, limits } = c.var;
    const q = c.req.query("digest");
    const expected = q === undefined ? undefined : checkDigest(q);
    const lengthHeader = c.req.header("content-length");
    const declared = lengthHeader === undefined ? undefined : Number(lengthHeader);
    if (declared !== undefined && declared > limits.maxBlobBytes) {
      throw new HttpProblem(
        413,
        `Blob of ${declared} bytes is over the limit of ${limits.maxBlobBytes} bytes: split the weights into smaller shards or raise --max-blob-bytes`,
      );
    }
    // Answering "already stored" without the bytes tells whether a blob exists
    // and its size: on a private registry only a token that may read learns it.
    const mayRead = !c.get("auth").private || canRead(c.get("scopes"));
    if (expected !== undefined && mayRead) {
      const existing = await store.blobs.stat(expected);
      if (existing) return c.json({ digest: existing.digest, size: existing.size }, 200);
    }
    const body = requestBody(c);
    if (!body) {
      throw new HttpProblem(
        400,
        "The upload has no body: send the file's bytes as the request body",
      );
    }
    const writer = await store.blobs.writer();
    try {
      for await (const chunk of body) {
        if (writer.size + chunk.byteLength > limits.maxBlobBytes) {
          throw new HttpProblem(
            413,
            `Blob is over the limit of ${limits.maxBlobBytes} bytes: nothing was stored; split the weights into smaller shards or raise --max-blob-bytes`,
          );
        }
        await writer.write(chunk);
      }
      if (declared !== undefined && writer.size !== declared) {
        throw new HttpProblem(
          400,
          `The upload was cut short: ${writer.size} of ${declared} bytes arrived; nothing was stored, send it again`,
        );
      }
      const info = await writer.commit(expected);
      return c.json({ digest: info.digest, size: info.size }, 201);
    } catch (e) {
      await writer.cancel();
      if (e instanceof DigestMismatchError) throw new HttpProblem(400, e.message);
      if (e instanceof HttpProblem) throw e;
      throw new HttpProblem(
        400,
        `The upload failed after ${writer.size} bytes (${
          e instanceof Error ? e.message : e
        }): nothing was stored, send it again`,
      );
    }
  });

  return app;
}
