/**
 * What the S3 blob store does beyond the conformance suite: multipart uploads,
 * nothing left behind by a wrong digest or a cancel, orphan cleanup, URL checks.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { openS3BlobStore, parseS3Url, PART_SIZE } from "../../../registry/storage/s3_blobs.ts";
import { DigestMismatchError } from "../../../registry/storage/store.ts";
import { freshBlobsUrl, skipWithout } from "./_servers.ts";
import { s3Client } from "../../_helpers/registry.ts";

const ignore = skipWithout({ s3: true });

/** Every key under a blob store URL's prefix, listed with plain S3 requests. */
async function keysUnder(url: string): Promise<string[]> {
  const client = s3Client(url);
  const loc = client.loc;
  const q = new URLSearchParams({ "list-type": "2", prefix: `${loc.prefix}/` });
  const res = await client.fetch(`${loc.endpoint}/${loc.bucket}/?${q}`);
  const xml = await res.text();
  assertEquals(res.status, 200, xml);
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!.slice(loc.prefix.length + 1))
    .sort();
}

async function put(
  url: string,
  key: string,
  body: string,
): Promise<void> {
  const client = s3Client(url);
  const loc = client.loc;
  const res = await client.fetch(`${loc.endpoint}/${loc.bucket}/${loc.prefix}/${key}`, {
    method: "PUT",
    body,
  });
  await res.body?.cancel();
  assertEquals(res.status, 200);
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function sha256(data: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  return `sha256:${Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Runs `fn` on a store over a fresh prefix, and closes the store after. */
async function withBlobs(
  fn: (blobs: Awaited<ReturnType<typeof openS3BlobStore>>, url: string) => Promise<void>,
): Promise<void> {
  const url = freshBlobsUrl();
  const blobs = await openS3BlobStore(url);
  try {
    await fn(blobs, url);
  } finally {
    await blobs.close();
  }
}

Deno.test({
  name:
    "openS3BlobStore() sends a blob over two parts as a multipart upload and keeps only <prefix>/blobs/sha256/<hex>",
  ignore,
}, () =>
  withBlobs(async (blobs, url) => {
    const data = bytes(2 * PART_SIZE + 12_345, 7);
    const w = await blobs.writer();
    for (let i = 0; i < data.length; i += 1_000_003) await w.write(data.subarray(i, i + 1_000_003));
    const info = await w.commit(await sha256(data));
    assertEquals(info, { digest: await sha256(data), size: data.length });
    assertEquals(await keysUnder(url), [`blobs/sha256/${info.digest.slice(7)}`]);
    const back = new Uint8Array(await new Response(await blobs.read(info.digest)).arrayBuffer());
    assertEquals(back.length, data.length);
    assert(back.every((b, i) => b === data[i]), "same bytes");
    const tail = await new Response(
      await blobs.read(info.digest, { start: data.length - 10, end: data.length - 1 }),
    ).arrayBuffer();
    assertEquals(new Uint8Array(tail), data.slice(-10));
  }));

Deno.test({
  name:
    "openS3BlobStore() leaves no object when a multipart upload has the wrong digest or is cancelled",
  ignore,
}, () =>
  withBlobs(async (blobs, url) => {
    const data = bytes(PART_SIZE + 1, 3);
    const wrong = await blobs.writer();
    await wrong.write(data);
    await assertRejects(() => wrong.commit(`sha256:${"0".repeat(64)}`), DigestMismatchError);
    const cut = await blobs.writer();
    await cut.write(data);
    await cut.cancel();
    assertEquals(await keysUnder(url), []);
    assertEquals(await blobs.stat(await sha256(data)), null);
  }));

Deno.test({
  name: "openS3BlobStore() removes temporary uploads older than staleUploadMs and nothing else",
  ignore,
}, async () => {
  const url = freshBlobsUrl();
  await put(url, "uploads/orphan", "left by a killed replica");
  await put(url, "notes.txt", "not ours to remove");
  const kept = await openS3BlobStore(url);
  await kept.close();
  assertEquals(await keysUnder(url), ["notes.txt", "uploads/orphan"]);
  await new Promise((r) => setTimeout(r, 1100));
  const cleaned = await openS3BlobStore(url, { staleUploadMs: 1000 });
  await cleaned.close();
  assertEquals(await keysUnder(url), ["notes.txt"]);
});

Deno.test("parseS3Url() refuses what is not s3://BUCKET/PREFIX with a clear message", () => {
  for (
    const [url, why] of [
      ["http://zoo/x", 'the scheme is "http:"'],
      ["s3://Zoo_/x", "the bucket name is invalid"],
      ["s3://zoo/x?endpoint=ftp://h", 'endpoint "ftp://h" is not an http(s) URL'],
    ]
  ) {
    let message = "";
    try {
      parseS3Url(url!);
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.startsWith(`Invalid blob store URL "${url}": ${why}`), message);
  }
});
