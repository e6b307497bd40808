/**
 * Blobs in S3-compatible object storage, over the standard S3 REST API signed
 * with SigV4 (`aws4fetch`): AWS S3, MinIO, Cloudflare R2 and `s3rver` alike.
 *
 * Layout under the prefix:
 *
 * ```
 * <prefix>/blobs/sha256/<hex>    committed blobs, by digest
 * <prefix>/uploads/<random>      uploads in progress (multipart)
 * ```
 *
 * An upload is hashed as it streams. Up to {@linkcode PART_SIZE} bytes are
 * held at a time: a blob that fits is checked and then written straight under
 * its digest with one PUT; a larger one goes up as a multipart upload to a
 * temporary key, parts as they fill, and is copied under its digest on the
 * server only once its digest checks out. A wrong digest, a cut body or a
 * cancelled upload aborts the multipart upload, so nothing ever appears under
 * a content-addressed key but the bytes that hash to it.
 *
 * Temporary objects and multipart uploads left by a process that died are
 * removed at open once older than `staleUploadMs` (a day by default); a bucket
 * lifecycle rule does the same without a registry running (see the README).
 *
 * @module
 */

import { AwsClient } from "aws4fetch";
import { printable } from "../../core/names.ts";
import { checkRange } from "./_common.ts";
import { digestHex } from "./paths.ts";
import type { BlobBackend, BlobInfo, BlobWriter } from "./store.ts";
import { HashingBlobWriter } from "./_writer.ts";

/** Bytes buffered before a part goes up: S3's parts are at least 5 MiB but the last. */
export const PART_SIZE = 8 * 1024 * 1024;
/** The largest object S3 copies in one request. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
/** Temporary uploads older than this are orphans, by default, in ms. */
const STALE_UPLOAD_MS = 24 * 3600 * 1000;

/** Where blobs live, parsed from `s3://BUCKET/PREFIX?endpoint=URL&region=R`. */
export interface S3Location {
  /** The bucket. */
  bucket: string;
  /** Key prefix without leading or trailing slash; may be empty. */
  prefix: string;
  /** Service endpoint; path-style addressing (`<endpoint>/<bucket>/<key>`) is used with it. */
  endpoint?: string;
  /** Signing region. */
  region: string;
}

/**
 * Parses a blob location URL.
 *
 * @param url `s3://BUCKET/PREFIX?endpoint=URL&region=R`; without `endpoint`,
 *   AWS S3 in `region` (default `us-east-1`)
 * @returns the location
 * @throws {TypeError} when it is not such a URL
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseS3Url } from "./s3_blobs.ts";
 * assertEquals(parseS3Url("s3://zoo/prod?endpoint=http://127.0.0.1:9000&region=eu-west-1"), {
 *   bucket: "zoo",
 *   prefix: "prod",
 *   endpoint: "http://127.0.0.1:9000",
 *   region: "eu-west-1",
 * });
 * ```
 */
export function parseS3Url(url: string): S3Location {
  const invalid = (why: string) =>
    new TypeError(
      `Invalid blob store URL "${
        printable(url)
      }": ${why}; use s3://BUCKET/PREFIX?endpoint=URL&region=REGION`,
    );
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid("it is not a URL");
  }
  if (u.protocol !== "s3:") throw invalid(`the scheme is "${u.protocol}", not "s3:"`);
  const bucket = u.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw invalid("the bucket name is invalid");
  }
  const prefix = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, "");
  const loc: S3Location = { bucket, prefix, region: u.searchParams.get("region") ?? "us-east-1" };
  const endpoint = u.searchParams.get("endpoint");
  if (endpoint !== null) {
    try {
      const e = new URL(endpoint);
      if (e.protocol !== "http:" && e.protocol !== "https:") throw new Error();
    } catch {
      throw invalid(`endpoint "${printable(endpoint)}" is not an http(s) URL`);
    }
    loc.endpoint = endpoint.replace(/\/+$/, "");
  }
  return loc;
}

/** Options of {@linkcode openS3BlobStore}. */
export interface S3Options {
  /** Access key; default `AWS_ACCESS_KEY_ID`. */
  accessKeyId?: string;
  /** Secret key; default `AWS_SECRET_ACCESS_KEY`. */
  secretAccessKey?: string;
  /** Session token; default `AWS_SESSION_TOKEN` when set. */
  sessionToken?: string;
  /**
   * When set, blob GETs redirect to presigned URLs valid this many seconds
   * (the store gets {@linkcode BlobBackend.redirectUrl}).
   */
  redirectSeconds?: number;
  /**
   * Temporary uploads older than this are removed at open, in ms.
   *
   * @default {86400000}
   */
  staleUploadMs?: number;
}

/** A blob store in S3, which can also hand out presigned URLs. */
export interface S3BlobBackend extends BlobBackend {
  /**
   * A presigned GET URL of a blob, valid for `expiresIn` seconds.
   *
   * @param digest the blob's digest
   * @param expiresIn seconds it stays valid
   * @returns the URL
   */
  presignedUrl(digest: string, expiresIn: number): Promise<string>;
}

/**
 * Opens a blob store in a bucket, checking that the bucket answers, and
 * removes orphaned temporary uploads.
 *
 * @param url `s3://BUCKET/PREFIX?endpoint=URL&region=R`
 * @param options credentials (default from the environment) and orphan age
 * @returns the blob store
 * @throws {TypeError} when the URL is invalid or credentials are missing
 * @throws {Error} when the bucket does not answer
 *
 * @example
 * ```ts ignore
 * import { openS3BlobStore } from "./s3_blobs.ts";
 * const blobs = await openS3BlobStore("s3://zoo/prod?region=eu-west-1");
 * ```
 */
export async function openS3BlobStore(
  url: string,
  options: S3Options = {},
): Promise<S3BlobBackend> {
  const loc = parseS3Url(url);
  const accessKeyId = options.accessKeyId ?? Deno.env.get("AWS_ACCESS_KEY_ID");
  const secretAccessKey = options.secretAccessKey ?? Deno.env.get("AWS_SECRET_ACCESS_KEY");
  if (!accessKeyId || !secretAccessKey) {
    throw new TypeError(
      `Cannot open blob store "${
        printable(url)
      }": no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    );
  }
  const sessionToken = options.sessionToken ?? Deno.env.get("AWS_SESSION_TOKEN");
  const client = new AwsClient({
    accessKeyId,
    secretAccessKey,
    ...(sessionToken ? { sessionToken } : {}),
    service: "s3",
    region: loc.region,
    retries: 3,
  });
  const store = new S3BlobStore(new S3(client, loc), options.redirectSeconds);
  await store.removeStaleUploads(options.staleUploadMs ?? STALE_UPLOAD_MS);
  return store;
}

/** The S3 requests the store makes, on one bucket and prefix. */
class S3 {
  readonly #client: AwsClient;
  readonly #loc: S3Location;

  constructor(client: AwsClient, loc: S3Location) {
    this.#client = client;
    this.#loc = loc;
  }

  key(...parts: string[]): string {
    return [this.#loc.prefix, ...parts].filter((p) => p !== "").join("/");
  }

  blobKey(digest: string): string {
    return this.key("blobs", "sha256", digestHex(digest));
  }

  uploadsPrefix(): string {
    return this.key("uploads") + "/";
  }

  url(key: string, query = ""): string {
    const path = key.split("/").map(encodeURIComponent).join("/");
    const base = this.#loc.endpoint !== undefined
      ? `${this.#loc.endpoint}/${this.#loc.bucket}`
      : `https://${this.#loc.bucket}.s3.${this.#loc.region}.amazonaws.com`;
    return `${base}/${path}${query === "" ? "" : `?${query}`}`;
  }

  /** Sends a request; throws on anything but the statuses `ok` allows. */
  async send(
    method: string,
    key: string,
    init: { query?: string; headers?: Record<string, string>; body?: Uint8Array | string } = {},
    ok: (status: number) => boolean = (s) => s >= 200 && s < 300,
  ): Promise<Response> {
    const res = await this.#client.fetch(this.url(key, init.query), {
      method,
      ...(init.headers ? { headers: init.headers } : {}),
      ...(init.body !== undefined ? { body: init.body as BodyInit } : {}),
    });
    if (!ok(res.status)) {
      const text = await res.text().catch(() => "");
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "";
      throw new Error(
        `Object storage refused ${method} "${printable(key)}": ${res.status} ${code}`.trim() +
          `; check the bucket, the endpoint and the credentials`,
      );
    }
    return res;
  }

  /** The `x-amz-copy-source` of a key in this bucket. */
  copySource(key: string): string {
    return `/${this.#loc.bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  async presign(key: string, expiresIn: number): Promise<string> {
    const url = new URL(this.url(key));
    url.searchParams.set("X-Amz-Expires", String(expiresIn));
    const signed = await this.#client.sign(url.href, { method: "GET", aws: { signQuery: true } });
    return signed.url;
  }
}

class S3BlobStore implements S3BlobBackend {
  readonly #s3: S3;
  readonly #writers = new Set<BlobWriter>();
  readonly redirectUrl?: (digest: string) => Promise<string>;

  constructor(s3: S3, redirectSeconds: number | undefined) {
    this.#s3 = s3;
    if (redirectSeconds !== undefined) {
      this.redirectUrl = (digest) => this.presignedUrl(digest, redirectSeconds);
    }
  }

  writer(): Promise<BlobWriter> {
    const w = new S3BlobWriter(this.#s3, (done) => this.#writers.delete(done));
    this.#writers.add(w);
    return Promise.resolve(w);
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    const res = await this.#s3.send("HEAD", this.#s3.blobKey(digest), {}, okOr404);
    await res.body?.cancel();
    if (res.status === 404) return null;
    return { digest, size: Number(res.headers.get("content-length")) };
  }

  async read(
    digest: string,
    range?: { start: number; end: number },
  ): Promise<ReadableStream<Uint8Array> | null> {
    const key = this.#s3.blobKey(digest);
    if (range) {
      const info = await this.stat(digest);
      if (!info) return null;
      checkRange(digest, info.size, range.start, range.end);
    }
    const res = await this.#s3.send(
      "GET",
      key,
      range ? { headers: { range: `bytes=${range.start}-${range.end}` } } : {},
      okOr404,
    );
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    const body = res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    if (!range) return body;
    // A server may answer a range with more than was asked (s3rver answers
    // "bytes=0-0" with the whole object): cut what came to what was asked.
    const got = /^bytes (\d+)-(\d+)\//.exec(res.headers.get("content-range") ?? "");
    const from = res.status === 206 && got ? Number(got[1]) : 0;
    const to = res.status === 206 && got ? Number(got[2]) : Infinity;
    if (from === range.start && to === range.end) return body;
    return body.pipeThrough(slice(range.start - from, range.end - from));
  }

  presignedUrl(digest: string, expiresIn: number): Promise<string> {
    return this.#s3.presign(this.#s3.blobKey(digest), expiresIn);
  }

  /** Deletes temporary objects and aborts multipart uploads older than `ageMs`. */
  async removeStaleUploads(ageMs: number): Promise<void> {
    const prefix = this.#s3.uploadsPrefix();
    const before = Date.now() - ageMs;
    let token: string | undefined;
    do {
      const q = new URLSearchParams({ "list-type": "2", prefix });
      if (token !== undefined) q.set("continuation-token", token);
      const xml = await (await this.#s3.send("GET", "", { query: q.toString() })).text();
      for (const item of xmlElements(xml, "Contents")) {
        const key = xmlText(item, "Key");
        const at = Date.parse(xmlText(item, "LastModified") ?? "");
        if (key !== undefined && at < before) {
          await this.#s3.send("DELETE", key, {}, okOr404);
        }
      }
      token = xmlText(xml, "IsTruncated") === "true"
        ? xmlText(xml, "NextContinuationToken")
        : undefined;
    } while (token !== undefined);
    const q = new URLSearchParams({ uploads: "", prefix });
    // Some servers (s3rver) do not list multipart uploads: the bucket's
    // lifecycle rule is what aborts those there.
    const listed = await this.#s3.send(
      "GET",
      "",
      { query: q.toString() },
      (s) => (s >= 200 && s < 300) || s === 501,
    );
    const xml = await listed.text();
    for (const u of xmlElements(xml, "Upload")) {
      const key = xmlText(u, "Key");
      const id = xmlText(u, "UploadId");
      const at = Date.parse(xmlText(u, "Initiated") ?? "");
      if (key !== undefined && id !== undefined && at < before) {
        await this.#s3.send(
          "DELETE",
          key,
          { query: new URLSearchParams({ uploadId: id }).toString() },
          okOr404,
        );
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#writers].map((w) => w.cancel()));
  }
}

/** Passes on bytes `start` to `end` inclusive of a stream, and cancels the rest. */
function slice(start: number, end: number): TransformStream<Uint8Array, Uint8Array> {
  let offset = 0;
  return new TransformStream({
    transform(chunk, controller) {
      const from = Math.max(start - offset, 0);
      const to = Math.min(end + 1 - offset, chunk.length);
      offset += chunk.length;
      if (to > from) controller.enqueue(chunk.subarray(from, to));
      if (offset > end) controller.terminate();
    },
  });
}

function okOr404(status: number): boolean {
  return (status >= 200 && status < 300) || status === 404;
}

class S3BlobWriter extends HashingBlobWriter {
  readonly #s3: S3;
  /** Bytes not yet sent, at most a part's worth. */
  #buffer: Uint8Array[] = [];
  #buffered = 0;
  /** The multipart upload, once the blob outgrew one part. */
  #multipart: { key: string; id: string; parts: string[] } | undefined;

  constructor(s3: S3, onDone: (w: BlobWriter) => void) {
    super(onDone);
    this.#s3 = s3;
  }

  /** The caller may reuse its buffer once write() returns: keep a copy. */
  protected override hold(chunk: Uint8Array): Uint8Array {
    return chunk.slice();
  }

  protected async accept(chunk: Uint8Array): Promise<void> {
    this.#buffer.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= PART_SIZE) await this.#sendPart(PART_SIZE);
  }

  /** Takes `n` buffered bytes (all when fewer) off the front of the buffer. */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.#buffered));
    let filled = 0;
    while (filled < out.length) {
      const head = this.#buffer[0]!;
      const take = Math.min(head.length, out.length - filled);
      out.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) this.#buffer.shift();
      else this.#buffer[0] = head.subarray(take);
    }
    this.#buffered -= out.length;
    return out;
  }

  async #sendPart(n: number): Promise<void> {
    if (this.#multipart === undefined) {
      const key = this.#s3.key("uploads", crypto.randomUUID());
      const xml = await (await this.#s3.send("POST", key, { query: "uploads=" })).text();
      const id = xmlText(xml, "UploadId");
      if (id === undefined) {
        throw new Error(`Object storage started no multipart upload for "${key}"`);
      }
      this.#multipart = { key, id, parts: [] };
    }
    const mp = this.#multipart;
    const body = this.#take(n);
    const partNumber = mp.parts.length + 1;
    const res = await this.#s3.send("PUT", mp.key, {
      query: new URLSearchParams({ partNumber: String(partNumber), uploadId: mp.id }).toString(),
      body,
    });
    await res.body?.cancel();
    const etag = res.headers.get("etag");
    if (etag === null) {
      throw new Error(`Object storage gave part ${partNumber} of "${mp.key}" no ETag`);
    }
    mp.parts.push(etag);
  }

  protected async store(digest: string): Promise<void> {
    const target = this.#s3.blobKey(digest);
    if (this.#multipart === undefined) {
      // It fits in one part: checked before a byte went out, written whole.
      const res = await this.#s3.send("PUT", target, { body: this.#take(this.#buffered) });
      await res.body?.cancel();
    } else {
      if (this.#buffered > 0) await this.#sendPart(this.#buffered);
      await this.#completeAndCopy(this.#multipart, target);
    }
  }

  async #completeAndCopy(
    mp: { key: string; id: string; parts: string[] },
    target: string,
  ): Promise<void> {
    const xml = `<CompleteMultipartUpload>${
      mp.parts.map((etag, i) =>
        `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`
      )
        .join("")
    }</CompleteMultipartUpload>`;
    const done = await this.#s3.send("POST", mp.key, {
      query: new URLSearchParams({ uploadId: mp.id }).toString(),
      body: xml,
      headers: { "content-type": "application/xml" },
    });
    // CompleteMultipartUpload may answer 200 with an error in its body.
    const answer = await done.text();
    if (/<Error>/.test(answer)) {
      throw new Error(
        `Object storage could not complete upload "${mp.key}": ${
          /<Code>([^<]*)<\/Code>/.exec(answer)?.[1] ?? "error"
        }`,
      );
    }
    this.#multipart = undefined;
    try {
      const head = await this.#s3.send("HEAD", target, {}, okOr404);
      await head.body?.cancel();
      if (head.status === 404) {
        if (this.size > MAX_COPY_BYTES) {
          throw new RangeError(
            `Blob of ${this.size} bytes is over the ${MAX_COPY_BYTES} bytes object storage copies in one request: keep blobs under --max-blob-bytes ${MAX_COPY_BYTES}`,
          );
        }
        // Copied on the server: the object appears under its digest whole.
        const copy = await this.#s3.send("PUT", target, {
          headers: { "x-amz-copy-source": this.#s3.copySource(mp.key) },
        });
        const answer = await copy.text();
        if (/<Error>/.test(answer)) throw new Error(`Object storage could not copy "${mp.key}"`);
      }
    } finally {
      await this.#s3.send("DELETE", mp.key, {}, okOr404).then((r) => r.body?.cancel());
    }
  }

  protected async discard(): Promise<void> {
    this.finish();
    this.#buffer = [];
    this.#buffered = 0;
    const mp = this.#multipart;
    this.#multipart = undefined;
    if (mp === undefined) return;
    await this.#s3.send(
      "DELETE",
      mp.key,
      { query: new URLSearchParams({ uploadId: mp.id }).toString() },
      okOr404,
    ).then((r) => r.body?.cancel()).catch(() => {
      // Left for the stale-upload cleanup or the bucket's lifecycle rule.
    });
  }
}

function escapeXml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

function unescapeXml(s: string): string {
  return s.replaceAll("&quot;", '"').replaceAll("&apos;", "'").replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

/** The inner XML of each `<tag>` element (S3's answers never nest a tag in itself). */
function xmlElements(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1] ?? "");
}

/** The text of the first `<tag>` element, unescaped. */
function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1] === undefined ? undefined : unescapeXml(m[1]);
}
