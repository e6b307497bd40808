import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { sha256, ZooCache } from "../../../sdk/client/mod.ts";
import { IntegrityError } from "../../../sdk/errors.ts";
import { readPool } from "../../../sdk/client/read_pool.ts";
import { listDir } from "./_registry.ts";

const BLOB = new Uint8Array(10_000).map((_, i) => (i * 7) % 251);
const DIGEST = sha256(BLOB);

/** A body that sends `bytes` and then breaks the connection when `cutAt` is given. */
function body(bytes: Uint8Array, cutAt?: number): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(c) {
      if (sent) {
        // Erroring in the same call would drop the chunk still queued.
        c.error(new TypeError("connection reset"));
      } else if (cutAt === undefined) {
        c.enqueue(bytes.slice());
        c.close();
      } else {
        c.enqueue(bytes.slice(0, cutAt));
        sent = true;
      }
    },
  });
}

function ranged(start: number, bytes = BLOB, cutAt?: number): Response {
  if (start === 0) return new Response(body(bytes, cutAt), { status: 200 });
  return new Response(body(bytes.slice(start), cutAt), {
    status: 206,
    headers: { "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}` },
  });
}

/** A version document of zoo/lenet5 at `version` listing `files`, as the registry sends it. */
function versionDoc(version: string, files: { path: string; digest: string; size: number }[]) {
  return {
    namespace: "zoo",
    name: "lenet5",
    version,
    reference: `zoo/lenet5@${version}`,
    yanked: false,
    createdAt: "2026-01-01T00:00:00.000Z",
    downloads: 0,
    files,
    card: {},
    architecture: {},
    urls: { self: "", modelJson: "", page: "" },
  };
}

Deno.test("download() stores a verified blob under its digest and reuses it", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  let requests = 0;
  await cache.download(DIGEST, BLOB.length, (start) => {
    requests++;
    return Promise.resolve(ranged(start));
  });
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
  await cache.download(DIGEST, BLOB.length, () => Promise.reject(new Error("no network")));
  assertEquals(requests, 1);
  assertEquals(await listDir(join(cache.root, "blobs", "sha256")), [DIGEST.slice(7)]);
});

Deno.test("download() resumes a cut connection with a Range request", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const starts: number[] = [];
  await cache.download(DIGEST, BLOB.length, (start) => {
    starts.push(start);
    return Promise.resolve(ranged(start, BLOB, starts.length === 1 ? 4000 : undefined));
  });
  assertEquals(starts, [0, 4000]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
});

Deno.test("download() backs off between attempts, keeps what arrived when all fail, and a later call resumes it", async () => {
  const root = await Deno.makeTempDir();
  const cache = new ZooCache(root, { retry: { attempts: 3, baseDelayMs: 40 } });
  const starts: number[] = [];
  const times: number[] = [];
  await assertRejects(() =>
    cache.download(DIGEST, BLOB.length, (start) => {
      starts.push(start);
      times.push(performance.now());
      return Promise.resolve(ranged(start, BLOB, 1000));
    })
  );
  assertEquals(starts, [0, 1000, 2000]);
  // Waits double from 40 ms; jitter draws each between half and all of it.
  assert(times[1]! - times[0]! >= 20, `first wait ${times[1]! - times[0]!} ms`);
  assert(times[2]! - times[1]! >= 40, `second wait ${times[2]! - times[1]!} ms`);
  const dir = join(cache.root, "blobs", "sha256");
  assertEquals(await listDir(dir), [`${DIGEST.slice(7)}.partial`]);
  const later: number[] = [];
  await new ZooCache(root).download(DIGEST, BLOB.length, (start) => {
    later.push(start);
    return Promise.resolve(ranged(start));
  });
  assertEquals(later, [3000]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
  assertEquals(await listDir(dir), [DIGEST.slice(7)]);
});

Deno.test("download() resumes from the largest partial of the digest, whatever its name, and removes the others", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const dir = join(cache.root, "blobs", "sha256");
  await Deno.mkdir(dir, { recursive: true });
  const hex = DIGEST.slice(7);
  await Deno.writeFile(join(dir, `${hex}.0f3a9c2e.partial`), BLOB.slice(0, 6000));
  await Deno.writeFile(join(dir, `${hex}.77aa.partial`), BLOB.slice(0, 2000));
  await Deno.writeFile(join(dir, `${hex}.partial`), BLOB.slice(0, 1000));
  const starts: number[] = [];
  await cache.download(DIGEST, BLOB.length, (start) => {
    starts.push(start);
    return Promise.resolve(ranged(start));
  });
  assertEquals(starts, [6000]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
  assertEquals(await listDir(dir), [hex]);
});

Deno.test("a second download of a blob waits for the first one's lock and uses its copy", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const dir = join(cache.root, "blobs", "sha256");
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const opened: string[] = [];
  const first = cache.download(DIGEST, BLOB.length, async (start) => {
    opened.push("first");
    await gate;
    return ranged(start);
  });
  while (opened.length === 0) await new Promise((r) => setTimeout(r, 5));
  const second = new ZooCache(cache.root).download(DIGEST, BLOB.length, (start) => {
    opened.push("second");
    return Promise.resolve(ranged(start));
  });
  await new Promise((r) => setTimeout(r, 200));
  assertEquals(opened, ["first"]);
  assert((await listDir(dir)).includes(`${DIGEST.slice(7)}.lock`));
  release();
  await Promise.all([first, second]);
  assertEquals(opened, ["first"]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
  assertEquals(await listDir(dir), [DIGEST.slice(7)]);
});

Deno.test("sweep() removes partials and locks nobody touched for a day and partials of complete blobs", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const dir = join(cache.root, "blobs", "sha256");
  await cache.download(DIGEST, BLOB.length, (s) => Promise.resolve(ranged(s)));
  const hex = DIGEST.slice(7);
  const other = "c".repeat(64);
  const young = "d".repeat(64);
  const old = new Date(Date.now() - 25 * 3600 * 1000);
  const minutesAgo = new Date(Date.now() - 5 * 60 * 1000);
  const files: [string, Date][] = [
    [`${hex}.9e1f.partial`, minutesAgo], // its blob is complete
    [`${other}.partial`, old],
    [`${other}.lock`, old],
    [`${young}.partial`, minutesAgo], // kept for resume
    [`${young}.lock`, new Date()],
  ];
  for (const [name, time] of files) {
    await Deno.writeFile(join(dir, name), new Uint8Array(10));
    await Deno.utime(join(dir, name), time, time);
  }
  const removed = await cache.sweep();
  assertEquals(removed.sort(), [`${hex}.9e1f.partial`, `${other}.lock`, `${other}.partial`]);
  assertEquals(await listDir(dir), [hex, `${young}.lock`, `${young}.partial`]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
});

Deno.test("download() starts over when the server ignores Range", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const dir = join(cache.root, "blobs", "sha256");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, `${DIGEST.slice(7)}.partial`), BLOB.slice(0, 5000));
  const starts: number[] = [];
  await cache.download(DIGEST, BLOB.length, (start) => {
    starts.push(start);
    return Promise.resolve(new Response(BLOB.slice(), { status: 200 }));
  });
  assertEquals(starts, [5000]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
});

Deno.test("download() throws IntegrityError on wrong bytes and leaves no file behind", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const bad = BLOB.slice();
  bad[123] = bad[123]! ^ 0xff;
  const e = await assertRejects(
    () => cache.download(DIGEST, BLOB.length, () => Promise.resolve(new Response(bad))),
    IntegrityError,
  );
  assertEquals(e.expected, DIGEST);
  assertEquals(e.actual, sha256(bad));
  assertEquals(await listDir(join(cache.root, "blobs", "sha256")), []);
});

Deno.test("download() refuses a body longer than the manifest says", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const long = new Uint8Array(BLOB.length + 10);
  await assertRejects(
    () => cache.download(DIGEST, BLOB.length, () => Promise.resolve(new Response(long))),
    IntegrityError,
  );
  assertEquals(await listDir(join(cache.root, "blobs", "sha256")), []);
});

Deno.test("download() restarts from 0 once when a resumed partial holds stale bytes", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const dir = join(cache.root, "blobs", "sha256");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, `${DIGEST.slice(7)}.partial`), new Uint8Array(5000));
  const starts: number[] = [];
  await cache.download(DIGEST, BLOB.length, (start) => {
    starts.push(start);
    return Promise.resolve(ranged(start));
  });
  assertEquals(starts, [5000, 0]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
});

Deno.test("readBlob() and hasBlob() notice a corrupted cached blob and remove it", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  await cache.download(DIGEST, BLOB.length, (s) => Promise.resolve(ranged(s)));
  assertEquals(await cache.readBlob(DIGEST), BLOB);
  const bad = BLOB.slice();
  bad[0] = bad[0]! ^ 1;
  await Deno.writeFile(cache.blobPath(DIGEST), bad);
  assertEquals(await cache.readBlob(DIGEST), null);
  assertEquals(await cache.hasBlob(DIGEST), false);
  await Deno.writeFile(cache.blobPath(DIGEST), bad);
  assertEquals(await cache.hasBlob(DIGEST), false);
  assertEquals(await listDir(join(cache.root, "blobs", "sha256")), []);
});

Deno.test("two concurrent downloads of one blob both succeed with one verified file", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  const slow = (start: number) =>
    new Promise<Response>((resolve) => setTimeout(() => resolve(ranged(start)), 10));
  await Promise.all([
    cache.download(DIGEST, BLOB.length, slow),
    new ZooCache(cache.root).download(DIGEST, BLOB.length, slow),
  ]);
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
  assertEquals(await listDir(join(cache.root, "blobs", "sha256")), [DIGEST.slice(7)]);
});

Deno.test("refs and version documents round-trip and reject unsafe names", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  assertEquals(await cache.readRef("zoo", "lenet5", "latest"), null);
  await cache.writeRef("zoo", "lenet5", "latest", "1.2.0");
  assertEquals(await cache.readRef("zoo", "lenet5", "latest"), "1.2.0");
  const doc = versionDoc("1.2.0", [{ path: "model.json", digest: DIGEST, size: BLOB.length }]);
  await cache.writeVersion(doc);
  assertEquals(await cache.readVersion("zoo", "lenet5", "1.2.0"), doc);
  assert(
    (await Deno.stat(join(cache.root, "models/zoo/lenet5/versions/1.2.0/manifest.json"))).isFile,
  );
  await assertRejects(() => cache.writeRef("..", "x", "latest", "1.0.0"), RangeError);
  await assertRejects(
    () => cache.writeVersion({ ...doc, files: [{ path: "../x", digest: DIGEST, size: 1 }] }),
    RangeError,
  );
});

Deno.test("linkFiles() run concurrently never writes through a link into the blob", async () => {
  const cache = new ZooCache(await Deno.makeTempDir());
  await cache.download(DIGEST, BLOB.length, (s) => Promise.resolve(ranged(s)));
  const doc = versionDoc("1.0.0", [
    { path: "weights/group1-shard1of1.bin", digest: DIGEST, size: BLOB.length },
  ]);
  const dirs = await Promise.all(Array.from({ length: 8 }, () => cache.linkFiles(doc)));
  assertEquals(await Deno.readFile(cache.blobPath(DIGEST)), BLOB);
  assertEquals(await Deno.readFile(join(dirs[0]!, "weights/group1-shard1of1.bin")), BLOB);
  assertEquals(await listDir(join(dirs[0]!, "weights")), ["group1-shard1of1.bin"]);
});

Deno.test("readBlobInto() verifies blobs of 8 MiB and more on worker threads when asked to", async () => {
  const cache = new ZooCache(await Deno.makeTempDir(), { verifyWorkers: 2 });
  const blobs = [0, 1, 2].map((k) => {
    const b = new Uint8Array(9 << 20).fill(k + 1);
    b.set(BLOB, (k + 1) << 20);
    return b;
  });
  const digests = blobs.map((b) => sha256(b));
  for (const [i, b] of blobs.entries()) {
    await cache.download(digests[i]!, b.length, () => Promise.resolve(new Response(b.slice())));
  }
  const out = new Uint8Array(3 * (9 << 20));
  const parts = blobs.map((_, i) => out.subarray(i * (9 << 20), (i + 1) * (9 << 20)));
  const before = readPool(2)!.answered;
  const ok = await Promise.all(digests.map((d, i) => cache.readBlobInto(d, parts[i]!)));
  assertEquals(ok, [true, true, true]);
  assertEquals(readPool(2)!.answered - before, 3);
  for (const [i, b] of blobs.entries()) assertEquals(sha256(parts[i]!), sha256(b));

  // One flipped byte in the middle: refused and removed; the others still read.
  const path = cache.blobPath(digests[1]!);
  const bytes = await Deno.readFile(path);
  bytes[4 << 20] = bytes[4 << 20]! ^ 1;
  await Deno.writeFile(path, bytes);
  assertEquals(await cache.readBlobInto(digests[1]!, parts[1]!), false);
  assertEquals(await Deno.stat(path).catch(() => null), null);
  // A blob of the wrong size and an absent one are refused too.
  assertEquals(await cache.readBlobInto(digests[0]!, new Uint8Array((9 << 20) - 1)), false);
  assertEquals(await cache.readBlobInto(digests[1]!, parts[1]!), false);
  assertEquals(await cache.readBlobInto(digests[2]!, parts[2]!), true);
  assertEquals(sha256(parts[2]!), digests[2]);
  // With verifyWorkers: 0 the calling thread reads and hashes.
  const answered = readPool(2)!.answered;
  const alone = new ZooCache(cache.root, { verifyWorkers: 0 });
  assertEquals(await alone.readBlobInto(digests[2]!, parts[2]!), true);
  assertEquals(readPool(2)!.answered, answered);
});
