import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertGreater,
  assertLess,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import {
  digestOf,
  modelFiles,
  publish,
  startRegistry,
  tinyConvnet,
  tinyConvnetFiles,
} from "../_helpers/registry.ts";

await tf.setBackend("cpu");

async function json(r: Response): Promise<Record<string, unknown>> {
  return await r.json() as Record<string, unknown>;
}

Deno.test("a published model is listed, searchable and loads with stock tf.loadLayersModel over HTTP", async () => {
  const reg = await startRegistry();
  const model = tinyConvnet();
  try {
    const files = await modelFiles(model);
    const r = await publish(reg, "zoo/tiny-cnn", "1.0.0", files, {
      task: "image-classification",
      description: "A tiny convnet for tests",
      labels: ["a", "b", "c"],
    });
    assertEquals(r.status, 201, await r.clone().text());
    const doc = await json(r);
    assertEquals(doc.reference, "zoo/tiny-cnn@1.0.0");
    const arch = doc.architecture as Record<string, unknown>;
    assertEquals(arch.totalStride, 2);

    const list = await json(await fetch(`${reg.url}/api/models?search=tiny`));
    assertEquals((list.items as { name: string }[]).map((m) => m.name), ["tiny-cnn"]);
    const byLabel = await json(
      await fetch(`${reg.url}/api/models?search=convnet&task=image-classification`),
    );
    assertEquals((byLabel.items as unknown[]).length, 1);
    const none = await json(await fetch(`${reg.url}/api/models?search=nothing-like-this`));
    assertEquals(none.items, []);

    const manifest = await json(await fetch(`${reg.url}/api/models/zoo/tiny-cnn/latest`));
    assertEquals(manifest.version, "1.0.0");
    assertEquals((manifest.files as unknown[]).length, 2);

    const loaded = await tf.loadLayersModel(`${reg.url}/api/models/zoo/tiny-cnn/1.0.0/model.json`);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, "float32", 7);
    const want = model.predict(x) as tf.Tensor;
    const got = loaded.predict(x) as tf.Tensor;
    const diff = (await tf.max(tf.abs(tf.sub(want, got))).data())[0]!;
    assertLess(diff, 1e-6);
    tf.dispose([x, want, got]);
    loaded.dispose();

    const info = await json(await fetch(`${reg.url}/api/models/zoo/tiny-cnn`));
    assertEquals(
      info.downloads,
      2,
      "the manifest GET and the model.json GET each count one download",
    );
    assertEquals(info.latest, "1.0.0");
  } finally {
    model.dispose();
    await reg.close();
  }
});

Deno.test("blobs are served with a strong ETag, immutable caching, ranges, HEAD and 304", async () => {
  const reg = await startRegistry();
  try {
    const bytes = new Uint8Array(1000).map((_, i) => i % 251);
    const digest = await digestOf(bytes);
    const up = await fetch(`${reg.url}/api/blobs?digest=${digest}`, {
      method: "POST",
      headers: { authorization: `Bearer ${reg.token}` },
      body: bytes,
    });
    assertEquals(up.status, 201);
    assertEquals(await up.json(), { digest, size: 1000 });
    const again = await fetch(`${reg.url}/api/blobs?digest=${digest}`, {
      method: "POST",
      headers: { authorization: `Bearer ${reg.token}` },
      body: bytes,
    });
    assertEquals(again.status, 200);
    await again.body?.cancel();

    const url = `${reg.url}/api/blobs/${digest}`;
    const full = await fetch(url);
    assertEquals(full.status, 200);
    assertEquals(full.headers.get("etag"), `"${digest}"`);
    assertEquals(full.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assertEquals(full.headers.get("accept-ranges"), "bytes");
    assertEquals(full.headers.get("content-length"), "1000");
    assertEquals(new Uint8Array(await full.arrayBuffer()), bytes);

    const head = await fetch(url, { method: "HEAD" });
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("content-length"), "1000");
    assertEquals((await head.arrayBuffer()).byteLength, 0);

    const part = await fetch(url, { headers: { range: "bytes=10-19" } });
    assertEquals(part.status, 206);
    assertEquals(part.headers.get("content-range"), "bytes 10-19/1000");
    assertEquals(part.headers.get("content-length"), "10");
    assertEquals(new Uint8Array(await part.arrayBuffer()), bytes.slice(10, 20));

    const tail = await fetch(url, { headers: { range: "bytes=-5" } });
    assertEquals(tail.status, 206);
    assertEquals(new Uint8Array(await tail.arrayBuffer()), bytes.slice(995));

    const open = await fetch(url, { headers: { range: "bytes=990-" } });
    assertEquals(open.headers.get("content-range"), "bytes 990-999/1000");
    await open.body?.cancel();

    const outside = await fetch(url, { headers: { range: "bytes=5000-" } });
    assertEquals(outside.status, 416);
    assertEquals(outside.headers.get("content-range"), "bytes */1000");
    assertEquals(outside.headers.get("content-type"), "application/problem+json");
    await outside.body?.cancel();

    const cached = await fetch(url, { headers: { "if-none-match": `"${digest}"` } });
    assertEquals(cached.status, 304);
    await cached.body?.cancel();

    const missing = await fetch(`${reg.url}/api/blobs/sha256:${"0".repeat(64)}`);
    assertEquals(missing.status, 404);
    assertEquals(missing.headers.get("content-type"), "application/problem+json");
    await missing.body?.cancel();
  } finally {
    await reg.close();
  }
});

Deno.test("everything is still there after the server restarts on the same data dir", async () => {
  const first = await startRegistry();
  const files = await tinyConvnetFiles(3);
  try {
    assertEquals((await publish(first, "zoo/kept", "1.0.0", files, { task: "t" })).status, 201);
    const r = await fetch(`${first.url}/api/models/zoo/kept/1.0.0/yank`, {
      method: "POST",
      headers: { authorization: `Bearer ${first.token}` },
    });
    assertEquals(r.status, 200);
    await r.body?.cancel();
  } finally {
    await first.close();
  }
  const second = await startRegistry({ dataDir: first.dataDir });
  try {
    const doc = await json(await fetch(`${second.url}/api/models/zoo/kept/1.0.0`));
    assertEquals(doc.yanked, true);
    const shard = (doc.files as { path: string; digest: string }[]).find((f) =>
      f.path !== "model.json"
    )!;
    const bytes = new Uint8Array(
      await (await fetch(`${second.url}/api/blobs/${shard.digest}`)).arrayBuffer(),
    );
    assertEquals(await digestOf(bytes), shard.digest);
    const gone = await fetch(`${second.url}/api/models/zoo/kept/latest`);
    assertEquals(gone.status, 404, "a yanked version is skipped by latest");
    assertStringIncludes((await json(gone)).detail as string, "yanked");
  } finally {
    await second.close();
  }
});

Deno.test("16 concurrent publishes of one version give exactly one 201 and fifteen 409s", async () => {
  await using reg = await startRegistry();
  const files = await tinyConvnetFiles(4);
  const results = await Promise.all(
    Array.from(
      { length: 16 },
      () => publish(reg, "zoo/race", "1.0.0", files, { description: "race" }),
    ),
  );
  const statuses = results.map((r) => r.status).sort();
  await Promise.all(results.map((r) => r.body?.cancel()));
  assertEquals(statuses, [201, ...Array(15).fill(409)]);
  const info = await json(await fetch(`${reg.url}/api/models/zoo/race`));
  assertEquals((info.versions as unknown[]).length, 1);
  const doc = await json(await fetch(`${reg.url}/api/models/zoo/race/1.0.0`));
  assertEquals((doc.files as unknown[]).length, 2);
});

Deno.test("a blob upload cut off midway stores nothing and leaves no temp file visible", async () => {
  await using reg = await startRegistry();
  const total = 4 * 1024 * 1024;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(reg.url).port) });
  const head = `POST /api/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${reg.token}\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n`;
  await conn.write(new TextEncoder().encode(head));
  const half = new Uint8Array(total / 2).fill(7);
  await conn.write(half);
  await new Promise((r) => setTimeout(r, 200));
  conn.close();
  await new Promise((r) => setTimeout(r, 300));
  const full = new Uint8Array(total).fill(7);
  full.set(half);
  const digest = await digestOf(half);
  const r = await fetch(`${reg.url}/api/blobs/${digest}`, { method: "HEAD" });
  assertEquals(r.status, 404);
  assertEquals(await reg.pendingUploads(), []);
  assertEquals(await reg.storedBlobs(), []);
});

Deno.test("an upload with a wrong digest or over the size limit stores nothing", async () => {
  await using reg = await startRegistry({ limits: { maxBlobBytes: 1024 } });
  const bytes = new Uint8Array(100).fill(1);
  const wrong = await fetch(`${reg.url}/api/blobs?digest=sha256:${"a".repeat(64)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${reg.token}` },
    body: bytes,
  });
  assertEquals(wrong.status, 400);
  assertMatch(
    (await json(wrong)).detail as string,
    /hash to "sha256:[0-9a-f]{64}", not the expected/,
  );
  const real = await digestOf(bytes);
  assertEquals((await fetch(`${reg.url}/api/blobs/${real}`, { method: "HEAD" })).status, 404);

  const big = await fetch(`${reg.url}/api/blobs`, {
    method: "POST",
    headers: { authorization: `Bearer ${reg.token}` },
    body: new Uint8Array(2048),
  });
  assertEquals(big.status, 413);
  assertStringIncludes((await json(big)).detail as string, "over the limit of 1024 bytes");
  // A streamed body without Content-Length is cut at the limit too.
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(512));
      c.close();
    },
  });
  const chunked = await fetch(`${reg.url}/api/blobs`, {
    method: "POST",
    headers: { authorization: `Bearer ${reg.token}` },
    body: stream,
  });
  assertEquals(chunked.status, 413);
  await chunked.body?.cancel();
  assertEquals(await reg.storedBlobs(), []);
  assertGreater(1, 0);
});

Deno.test("HEAD of a blob says whether the registry has it without sending it", async () => {
  await using reg = await startRegistry();
  const bytes = new TextEncoder().encode("hello");
  const digest = await digestOf(bytes);
  assertEquals((await fetch(`${reg.url}/api/blobs/${digest}`, { method: "HEAD" })).status, 404);
  const up = await fetch(`${reg.url}/api/blobs?digest=${digest}`, {
    method: "POST",
    headers: { authorization: `Bearer ${reg.token}` },
    body: bytes,
  });
  await up.body?.cancel();
  const head = await fetch(`${reg.url}/api/blobs/${digest}`, { method: "HEAD" });
  assert(head.ok);
  assertEquals(head.headers.get("content-length"), "5");
});
