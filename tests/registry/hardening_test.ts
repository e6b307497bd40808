/**
 * What a registry on a real port refuses before it stores anything: JSON
 * documents nested too deep or too large, checkpoints whose weights do not fit
 * their layers, uploads that stall past the time limit; and what its problem
 * answers and private uploads do not give away.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { createToken } from "../../registry/auth.ts";
import {
  digestOf,
  modelFiles,
  publish,
  startRegistry,
  type TestFile,
} from "../_helpers/registry.ts";

await tf.setBackend("cpu");

async function problemDetail(r: Response, status: number): Promise<string> {
  const text = await r.text();
  assertEquals(r.status, status, text);
  assertEquals(r.headers.get("content-type"), "application/problem+json");
  const body = JSON.parse(text) as { status: number; detail: string };
  assertEquals(body.status, status);
  return body.detail;
}

/** A one-layer Dense model (16 inputs, 4 units, named "head"), saved as a publisher's folder holds it. */
async function denseFiles(): Promise<TestFile[]> {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [16], units: 4, name: "head" })],
  });
  try {
    return await modelFiles(model);
  } finally {
    model.dispose();
  }
}

/** Uploads `bytes` under their digest with `token`; the registry's answer, unread. */
async function postBlob(url: string, token: string, bytes: Uint8Array<ArrayBuffer>) {
  return await fetch(`${url}/api/blobs?digest=${await digestOf(bytes)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: bytes,
  });
}

/** The same files with model.json edited. */
function editModelJson(files: TestFile[], edit: (json: Record<string, unknown>) => void) {
  return files.map((f) => {
    if (f.path !== "model.json") return f;
    const json = JSON.parse(new TextDecoder().decode(f.bytes));
    edit(json);
    return { path: f.path, bytes: new TextEncoder().encode(JSON.stringify(json)) };
  });
}

async function getStatus(url: string): Promise<number> {
  const r = await fetch(url);
  await r.body?.cancel();
  return r.status;
}

/** Publishes zoo/dense@1.1.0 with a card given as JSON text (JSON.stringify overflows on a deep one). */
async function publishCardText(
  reg: { url: string; token: string },
  files: TestFile[],
  cardText: string,
): Promise<Response> {
  const entries = [];
  for (const f of files) {
    entries.push({ path: f.path, digest: await digestOf(f.bytes), size: f.bytes.byteLength });
  }
  return await fetch(`${reg.url}/api/models/zoo/dense/1.1.0`, {
    method: "PUT",
    headers: { authorization: `Bearer ${reg.token}`, "content-type": "application/json" },
    body: `{"files":${JSON.stringify(entries)},"card":${cardText}}`,
  });
}

/**
 * Publishes 1.0.0, then refuses `bad` as 1.1.0 with a 422 whose detail
 * matches `expected`, and checks that nothing was stored: 1.0.0 stays latest,
 * 1.1.0 does not exist, every document and page still answers, and a retry
 * of 1.1.0 with good files and card succeeds.
 */
async function refusedThenRetried(
  bad: { files?: TestFile[]; card?: Record<string, unknown>; cardText?: string },
  expected: RegExp,
): Promise<void> {
  const reg = await startRegistry();
  try {
    const good = await denseFiles();
    const first = await publish(reg, "zoo/dense", "1.0.0", good, { task: "test" });
    assertEquals(first.status, 201, await first.text());
    const refused = bad.cardText === undefined
      ? await publish(reg, "zoo/dense", "1.1.0", bad.files ?? good, bad.card ?? {})
      : await publishCardText(reg, good, bad.cardText);
    assertMatch(await problemDetail(refused, 422), expected);
    assertEquals(await reg.store.getVersion("zoo", "dense", "1.1.0"), null);
    const model = await (await fetch(`${reg.url}/api/models/zoo/dense`)).json();
    assertEquals(model.latest, "1.0.0");
    assertEquals(model.versions.map((v: { version: string }) => v.version), ["1.0.0"]);
    // A retry of the same version is not a 409: nothing of the refused one was kept.
    const retried = await publish(reg, "zoo/dense", "1.1.0", good, { task: "test" });
    assertEquals(retried.status, 201, await retried.text());
    for (
      const path of [
        "/api/models/zoo/dense/1.1.0",
        "/api/models/zoo/dense/latest",
        "/api/models/zoo/dense/latest/model.json",
        "/api/models/zoo/dense",
        "/zoo/dense",
        "/zoo/dense/1.1.0",
      ]
    ) {
      assertEquals(await getStatus(`${reg.url}${path}`), 200, path);
    }
    const latest = await (await fetch(`${reg.url}/api/models/zoo/dense/latest`)).json();
    assertEquals(latest.version, "1.1.0");
  } finally {
    await reg.close();
  }
}

Deno.test("a card nested 30,000 levels deep is refused with 422 and nothing is stored", async () => {
  await refusedThenRetried(
    { cardText: `{"task":"test","extra":${'{"a":'.repeat(30_000)}1${"}".repeat(30_000)}}` },
    /^The card nests more than 64 levels of objects and arrays \(at card\.extra\.a\.a\.a\.a\.a…\): flatten it/,
  );
});

Deno.test("a card over 256 KiB is refused with 422 and nothing is stored", async () => {
  await refusedThenRetried(
    { card: { task: "test", description: "x".repeat(300 * 1024) } },
    /The publish request is invalid: card takes \d+ bytes as JSON, over the limit of 262144/,
  );
});

Deno.test("a model.json of 30,000 nested Sequential models is refused with 422 and nothing is stored", async () => {
  const files = editModelJson(await denseFiles(), (json) => {
    let topology = json.modelTopology;
    for (let i = 0; i < 30_000; i++) {
      topology = { class_name: "Sequential", config: { name: `s${i}`, layers: [topology] } };
    }
    json.modelTopology = topology;
  });
  await refusedThenRetried(
    { files },
    /model\.json is not a valid TensorFlow\.js LayersModel: model\.json nests more than 64 levels \(?/,
  );
});

Deno.test("a model.json whose userDefinedMetadata nests 200,000 levels is refused with 422 and nothing is stored", async () => {
  const files = editModelJson(await denseFiles(), (json) => {
    json.userDefinedMetadata = "x";
  }).map((f) =>
    f.path === "model.json"
      ? {
        path: f.path,
        bytes: new TextEncoder().encode(
          new TextDecoder().decode(f.bytes).replace(
            '"userDefinedMetadata":"x"',
            `"userDefinedMetadata":${"[".repeat(200_000)}${"]".repeat(200_000)}`,
          ),
        ),
      }
      : f
  );
  await refusedThenRetried(
    { files },
    /Its userDefinedMetadata nests more than 64 levels of objects and arrays \(at userDefinedMetadata\[0\]/,
  );
});

Deno.test("a model.json whose userDefinedMetadata is over 1 MiB is refused with 422 and nothing is stored", async () => {
  const files = editModelJson(await denseFiles(), (json) => {
    json.userDefinedMetadata = { notes: "x".repeat(1024 * 1024) };
  });
  await refusedThenRetried(
    { files },
    /Its userDefinedMetadata takes \d+ bytes, over the limit of 1048576/,
  );
});

Deno.test("a Dense layer of 5 units with a [16,4] kernel is refused with 422 naming the layer and both shapes", async () => {
  const files = editModelJson(await denseFiles(), (json) => {
    const topology = json.modelTopology as { config: { layers: { config: { units: number } }[] } };
    topology.config.layers[0]!.config.units = 5;
  });
  await refusedThenRetried(
    { files },
    /Layer "head" \(Dense\) expects weight "head\/kernel" of shape \[16,5\], but the weights manifest gives \[16,4\]/,
  );
});

Deno.test('a Conv2D with kernel_size "y" is refused with 422 naming the layer', async () => {
  const conv = tf.sequential({
    layers: [tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 16, kernelSize: 1, name: "c" })],
  });
  const files = editModelJson(await modelFiles(conv), (json) => {
    const topology = json.modelTopology as {
      config: { layers: { config: Record<string, unknown> }[] };
    };
    topology.config.layers[0]!.config.kernel_size = "y";
  });
  conv.dispose();
  await refusedThenRetried(
    { files },
    /TensorFlow\.js cannot build the model from its topology at layer "c" \(Conv2D\): BaseConv expects config\.kernelSize/,
  );
});

Deno.test("an upload that stalls past --request-timeout is answered 503, its body aborted and its temp file removed", async () => {
  // Watches the blob folder's temp files, so it stays on the embedded store.
  const reg = await startRegistry({ embedded: true, limits: { requestTimeoutMs: 1500 } });
  const uploads = join(reg.dataDir, "uploads");
  const tmpFiles = async () => {
    const names: string[] = [];
    for await (const e of Deno.readDir(uploads)) names.push(e.name);
    return names;
  };
  const { port } = new URL(reg.url);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  try {
    // Announces 1 MB, sends 1,000 bytes, then stalls without closing.
    const t0 = performance.now();
    await conn.write(new TextEncoder().encode(
      `POST /api/blobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${reg.token}\r\n` +
        "content-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n",
    ));
    await conn.write(new Uint8Array(1000));
    let during = await tmpFiles();
    while (during.length === 0 && performance.now() - t0 < 1200) {
      await new Promise((r) => setTimeout(r, 20));
      during = await tmpFiles();
    }
    assertEquals(during.length, 1, "the upload is in progress");
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    const answeredAfter = performance.now() - t0;
    const response = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    assertMatch(response, /^HTTP\/1\.1 503/);
    assertStringIncludes(response, "application/problem+json");
    assertStringIncludes(response, "longer than 1500 ms");
    assert(answeredAfter < 4000, `answered after ${answeredAfter} ms`);
    // The client is still connected; the handler must not wait for it.
    let left = await tmpFiles();
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      left = await tmpFiles();
    }
    assertEquals(left, [], "the temp file is removed at the timeout, not when the client leaves");
  } finally {
    conn.close();
  }
  try {
    // The registry goes on: a full upload still works.
    const r = await postBlob(reg.url, reg.token, new Uint8Array(1000).fill(7));
    assertEquals(r.status, 201, await r.text());
  } finally {
    await reg.close();
  }
});

Deno.test("problem answers are not sniffed nor run by a browser", async () => {
  const reg = await startRegistry();
  try {
    for (
      const [path, init] of [
        ["/api/models/zoo/%3Cscript%3E", {}],
        ["/api/nothing", {}],
        ["/api/blobs", { method: "POST" }],
        ["/api/models/zoo/x/1.0.0", {
          method: "PUT",
          body: "{",
          headers: { authorization: `Bearer ${reg.token}` },
        }],
      ] as const
    ) {
      const r = await fetch(`${reg.url}${path}`, init);
      await r.body?.cancel();
      assert(r.status >= 400 && r.status < 500, `${path}: ${r.status}`);
      assertEquals(r.headers.get("content-type"), "application/problem+json", path);
      assertEquals(r.headers.get("x-content-type-options"), "nosniff", path);
      assertStringIncludes(
        r.headers.get("content-security-policy") ?? "",
        "default-src 'none'",
        path,
      );
    }
  } finally {
    await reg.close();
  }
});

Deno.test("on a private registry an upload token without read learns nothing of a blob it did not send", async () => {
  const reg = await startRegistry({ auth: { private: true } });
  try {
    const { token: reader } = await createToken(reg.store, ["read", "publish:zoo"], "reader");
    const stored = new Uint8Array(5000).fill(3);
    const storedDigest = await digestOf(stored);
    const up = await postBlob(reg.url, reg.token, stored);
    assertEquals(up.status, 201, await up.text());
    const absentDigest = await digestOf(new Uint8Array(5000).fill(4));
    const probe = async (token: string, digest: string) => {
      const r = await fetch(`${reg.url}/api/blobs?digest=${digest}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-length": "0" },
      });
      return { status: r.status, text: (await r.text()).replaceAll(digest, "<digest>") };
    };
    // The publish-only token gets the same answer for a stored and an absent blob.
    const onStored = await probe(reg.token, storedDigest);
    const onAbsent = await probe(reg.token, absentDigest);
    assertEquals(onStored, onAbsent);
    assert(onStored.status >= 400 && onStored.status < 500, onStored.text);
    assert(!onStored.text.includes("5000"), onStored.text);
    // A token that may read is told at once, as on a public registry.
    const known = await probe(reader, storedDigest);
    assertEquals(known.status, 200);
    assertEquals(JSON.parse(known.text), { digest: "<digest>", size: 5000 });
    // Sending the bytes proves them: the publish-only token's upload succeeds.
    const resent = await postBlob(reg.url, reg.token, stored);
    assertEquals(resent.status, 201, await resent.text());
  } finally {
    await reg.close();
  }
});
