/**
 * Blob routes: content-addressed bytes, uploaded streamed and verified,
 * served immutable with ranges and conditional requests. The single-range
 * and `If-None-Match` handling is this module's own: Hono's `etag` middleware
 * hashes a body it buffers, while a blob's ETag is its digest, known before a
 * byte is read, and its bytes are streamed (ranges read only their part).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { printable } from "../../core/names.ts";
import { BlobInfo, Digest, UploadQuery } from "../../core/wire.ts";
import { HttpProblem } from "../problem.ts";
import { DigestMismatchError } from "../storage/store.ts";
import type { RegistryEnv } from "../env.ts";
import { requireAnyPublish, requireRead } from "../middleware/auth.ts";
import { requestBody } from "../middleware/deadline.ts";
import { canRead } from "../auth.ts";
import { problems, READ_SECURITY } from "../openapi.ts";
import { validationHook } from "../validate.ts";

/**
 * Parses a single `bytes=` range against a size: null for none, multiple or
 * malformed ranges (the whole blob is sent), "unsatisfiable" for a 416.
 *
 * @param header the `Range` header
 * @param size the blob's size
 * @returns the inclusive range to send
 */
export function parseRange(
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

/**
 * Whether an `If-None-Match` header matches an ETag (weak comparison).
 *
 * @param header the header: `*` or a list of entity tags
 * @param etag the strong ETag of the blob
 * @returns true when the client's copy is current
 */
export function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

const bytes = (description: string) => ({
  description,
  content: { "application/octet-stream": { schema: z.string().meta({ format: "binary" }) } },
});
const blobHeaders = {
  etag: { schema: { type: "string" as const }, description: "The digest, quoted" },
  "content-length": { schema: { type: "integer" as const } },
};

const getBlob = createRoute({
  method: "get",
  path: "/api/blobs/{digest}",
  operationId: "getBlob",
  summary: "A blob's bytes (Range, If-None-Match)",
  description:
    "Strong ETag (its digest), Cache-Control immutable, one byte range per request; with --blob-redirect, a 302 to object storage.",
  middleware: [requireRead] as const,
  security: READ_SECURITY,
  request: {
    params: z.object({ digest: Digest }),
    headers: z.object({
      range: z.string().optional().meta({
        description: "bytes=START-END, bytes=START- or bytes=-SUFFIX",
      }),
      "if-none-match": z.string().optional(),
      "if-range": z.string().optional(),
    }),
  },
  responses: {
    200: { ...bytes("The whole blob"), headers: blobHeaders },
    206: {
      ...bytes("The requested range"),
      headers: { ...blobHeaders, "content-range": { schema: { type: "string" as const } } },
    },
    302: { description: "Fetch the bytes from this location (--blob-redirect)" },
    304: { description: "The client's copy is current" },
    ...problems(400, 401, 403, 404, 416, 500),
  },
});

const { middleware: _getMiddleware, ...getBlobDocument } = getBlob;
const headBlob = {
  ...getBlobDocument,
  method: "head" as const,
  operationId: "headBlob",
  summary: "Whether a blob exists, and its size",
  description: "The GET answer's status and headers, without the bytes.",
  responses: {
    200: { description: "The blob exists", headers: blobHeaders },
    206: { description: "The range exists", headers: blobHeaders },
    304: { description: "The client's copy is current" },
    ...problems(400, 401, 403, 404, 416, 500),
  },
};

const upload = createRoute({
  method: "post",
  path: "/api/blobs",
  operationId: "uploadBlob",
  summary: "Upload one blob, streamed; ?digest= is checked",
  description:
    "The raw body is hashed while it streams; a wrong digest, a cut body or an over-limit body stores nothing.",
  middleware: [requireAnyPublish] as const,
  security: [{ bearer: [] }],
  request: { query: UploadQuery },
  responses: {
    200: { ...jsonOf(BlobInfo), description: "Already stored (only to a token that may read)" },
    201: { ...jsonOf(BlobInfo), description: "Stored" },
    ...problems(400, 401, 403, 413, 500, 503),
  },
});

function jsonOf<T extends z.ZodType>(schema: T) {
  return { content: { "application/json": { schema } } };
}

/**
 * The blob routes.
 *
 * @returns an app with `GET/HEAD /api/blobs/{digest}` and `POST /api/blobs`, documented
 */
export function blobRoutes(): OpenAPIHono<RegistryEnv> {
  const app = new OpenAPIHono<RegistryEnv>({ defaultHook: validationHook() });
  // Hono answers HEAD with the GET handler, which leaves the body out.
  app.openAPIRegistry.registerPath(headBlob);
  // The raw bytes are streamed by the handler, not parsed: documented only.
  const { middleware: _uploadMiddleware, ...uploadDocument } = upload;
  app.openAPIRegistry.registerPath({
    ...uploadDocument,
    request: {
      ...upload.request,
      body: {
        required: true,
        content: { "application/octet-stream": { schema: z.string().meta({ format: "binary" }) } },
      },
    },
  });

  app.openapi(getBlob, async (c) => {
    const { digest } = c.req.valid("param");
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

  app.openapi({ ...upload, hide: true }, async (c) => {
    const { store, limits } = c.var;
    const expected = c.req.valid("query").digest;
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
