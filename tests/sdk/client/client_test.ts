import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertGreater,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import { DEFAULT_URL, registerZooRouter, sha256, ZooClient } from "../../../sdk/client/mod.ts";
import { IntegrityError, NotFoundError, OfflineError, RegistryError } from "../../../sdk/errors.ts";
import {
  cutAfter,
  denseModel,
  flipByte,
  listDir,
  noNetwork,
  startProxy,
  startRegistry,
  type TestRegistry,
  writeCheckpointFolder,
} from "./_registry.ts";

await tf.setBackend("cpu");

const tempCache = () => Deno.makeTempDir({ prefix: "zoo-cache-" });

function client(
  url: string,
  cacheDir: string,
  extra: Partial<ConstructorParameters<typeof ZooClient>[0]> = {},
) {
  return new ZooClient({ url, cacheDir, progress: false, ...extra });
}

/** Publishes the dense model as zoo/dense@version; returns its shard's digest and size. */
async function publishDense(reg: TestRegistry, version = "1.0.0") {
  const model = denseModel();
  try {
    const pub = client(reg.url, await tempCache(), { token: reg.token });
    const result = await pub.publish(model, { name: "zoo/dense", version, card: { task: "test" } });
    const shard = result.version.files.find((f) => f.path.endsWith(".bin"))!;
    return { result, shard };
  } finally {
    model.dispose();
  }
}

async function predict(model: tf.LayersModel): Promise<Float32Array> {
  const x = tf.tidy(() => tf.linspace(-1, 1, 128).reshape([2, 64]));
  const y = model.predict(x) as tf.Tensor;
  const data = await y.data() as Float32Array;
  tf.dispose([x, y]);
  return data;
}

Deno.test("publish() of a folder uploads its files and pull() lays out a verified cache", async () => {
  await using reg = await startRegistry();
  const model = denseModel();
  const dir = await writeCheckpointFolder(model);
  model.dispose();
  const result = await client(reg.url, await tempCache(), { token: reg.token })
    .publish(dir, { name: "zoo/folder", version: "1.0.0" });
  assertEquals(result.reference, "zoo/folder@1.0.0");
  assertEquals(result.url, `${reg.url}/zoo/folder/1.0.0`);
  assertEquals(result.modelJsonUrl, `${reg.url}/api/models/zoo/folder/1.0.0/model.json`);
  assertEquals(result.uploaded, 3);
  assertEquals(result.version.card.task, "image-classification");
  assertEquals(result.version.files.map((f) => f.path).sort(), [
    "README.md",
    "group1-shard1of1.bin",
    "model.json",
  ]);

  const cacheDir = await tempCache();
  const pulled = await client(reg.url, cacheDir).pull("zoo/folder");
  assertEquals(pulled.reference, "zoo/folder@1.0.0");
  for (const f of pulled.files) {
    const bytes = await Deno.readFile(f.localPath);
    assertEquals(sha256(bytes), f.digest);
    assertEquals(await Deno.readFile(join(pulled.dir, f.path)), bytes);
    assertEquals(bytes, await Deno.readFile(join(dir, f.path)));
  }
  assertEquals(
    (await Deno.readTextFile(join(cacheDir, "models/zoo/folder/refs/latest"))).trim(),
    "1.0.0",
  );
  const manifest = JSON.parse(
    await Deno.readTextFile(join(cacheDir, "models/zoo/folder/versions/1.0.0/manifest.json")),
  );
  assertEquals(manifest.version, "1.0.0");
  assertEquals((await listDir(join(cacheDir, "blobs/sha256"))).length, 3);
});

Deno.test("loadModel() predicts like the published model and leaks no tensors", async () => {
  await using reg = await startRegistry();
  const original = denseModel();
  const expected = await predict(original);
  await client(reg.url, await tempCache(), { token: reg.token })
    .publish(original, { name: "zoo/dense", version: "1.0.0" });
  original.dispose();

  const before = tf.memory().numTensors;
  const fractions: number[] = [];
  const model = await client(reg.url, await tempCache())
    .loadModel("zoo/dense@1.0.0", { onProgress: (f) => fractions.push(f) });
  assertEquals(await predict(model), expected);
  model.dispose();
  assertEquals(tf.memory().numTensors, before);
  assertEquals(fractions.at(-1), 1);
  assert(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1]!)));
});

Deno.test("a cached exact version loads with no network, and offline mode answers from cached refs", async () => {
  await using reg = await startRegistry();
  await publishDense(reg);
  const cacheDir = await tempCache();
  (await client(reg.url, cacheDir).loadModel("zoo/dense")).dispose();

  const net = noNetwork();
  const cached = client(reg.url, cacheDir, { fetch: net.fetch });
  (await cached.loadModel("zoo/dense@1.0.0")).dispose();
  assertEquals((await cached.pull("zoo/dense@1.0.0")).reference, "zoo/dense@1.0.0");

  const offline = client(reg.url, cacheDir, { fetch: net.fetch, offline: true });
  (await offline.loadModel("zoo/dense")).dispose();
  const e = await assertRejects(() => offline.loadModel("zoo/dense@stable"), OfflineError);
  assertEquals(
    e.message,
    'Cannot load "zoo/dense@stable" offline: no cached ref "stable" for zoo/dense; run once online or pass an exact cached version',
  );
  await assertRejects(() => offline.resolve("zoo/dense@2.0.0"), OfflineError, "version 2.0.0");
  await assertRejects(
    () => offline.publish(denseModel(), { name: "zoo/x", version: "1.0.0" }),
    OfflineError,
  );
  assertEquals(net.calls, []);
});

Deno.test("offline mode reads ZOO_OFFLINE and names a missing blob", async () => {
  await using reg = await startRegistry();
  await publishDense(reg);
  const cacheDir = await tempCache();
  await client(reg.url, cacheDir).resolve("zoo/dense");
  Deno.env.set("ZOO_OFFLINE", "1");
  try {
    const offline = client(reg.url, cacheDir, { fetch: noNetwork().fetch });
    assert(offline.offline);
    const e = await assertRejects(() => offline.loadModel("zoo/dense"), OfflineError);
    const modelJson = (await offline.cache.readVersion("zoo", "dense", "1.0.0"))!.files
      .find((f) => f.path === "model.json")!;
    assertStringIncludes(e.message, `"model.json" (${modelJson.digest}) is not cached`);
    assertStringIncludes(e.message, 'Cannot load "zoo/dense@1.0.0" offline: ');
  } finally {
    Deno.env.delete("ZOO_OFFLINE");
  }
});

Deno.test("a download cut midway is resumed with a Range request", async () => {
  await using reg = await startRegistry();
  const { shard } = await publishDense(reg);
  const blobPath = `/api/blobs/${shard.digest}`;
  const cacheDir = await tempCache();
  {
    // Every blob response breaks off after 30000 bytes: the pull fails after its retries.
    await using cutting = startProxy(reg.url, async (req, forward) => {
      const res = await forward(req);
      return new URL(req.url).pathname === blobPath ? cutAfter(res, 30_000) : res;
    });
    const retry = { attempts: 3, baseDelayMs: 1 };
    const e = await assertRejects(
      () => client(cutting.url, cacheDir, { retry }).pull("zoo/dense@1.0.0"),
      TypeError,
    );
    // The error names the file, the version, the registry and what happens next.
    assertStringIncludes(
      e.message,
      `Cannot download "${shard.path}" of "zoo/dense@1.0.0" from "${cutting.url}": gave up after 3 attempts`,
    );
    assertStringIncludes(e.message, "the next pull resumes it");
    const ranges = cutting.seen.filter((s) => s.path === blobPath).map((s) => s.range);
    assertEquals(ranges, [null, "bytes=30000-", "bytes=60000-"]);
    const hex = shard.digest.slice(7);
    assert((await listDir(join(cacheDir, "blobs/sha256"))).includes(`${hex}.partial`));
  }
  await using honest = startProxy(reg.url);
  const pulled = await client(honest.url, cacheDir).pull("zoo/dense@1.0.0");
  const blob = honest.seen.filter((s) => s.path === blobPath);
  assertEquals(blob.map((s) => [s.range, s.status]), [["bytes=90000-", 206]]);
  const local = pulled.files.find((f) => f.path === shard.path)!;
  assertEquals(sha256(await Deno.readFile(local.localPath)), shard.digest);
  assert(!(await listDir(join(cacheDir, "blobs/sha256"))).some((n) => n.endsWith(".partial")));
});

Deno.test("a pull killed with SIGKILL mid-download is resumed by the next pull from its partial", async () => {
  await using reg = await startRegistry();
  // One 4 MiB shard: the download writes what arrives as it arrives.
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [1024], units: 1024, useBias: false })],
  });
  const published = await client(reg.url, await tempCache(), { token: reg.token })
    .publish(model, { name: "zoo/big", version: "1.0.0" });
  model.dispose();
  const shard = published.version.files.find((f) => f.path.endsWith(".bin"))!;
  assertEquals(shard.size, 4 << 20);
  const blobPath = `/api/blobs/${shard.digest}`;
  const sent = 2.5 * (1 << 20);
  // The proxy sends 2.5 MiB of the shard, then stalls until the client goes away.
  await using stalling = startProxy(reg.url, async (req, forward) => {
    const res = await forward(req);
    if (new URL(req.url).pathname !== blobPath) return res;
    const bytes = new Uint8Array(await res.arrayBuffer());
    return new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(bytes.slice(0, sent));
        },
      }),
      { status: res.status, headers: res.headers },
    );
  });
  const cacheDir = await tempCache();
  const dir = join(cacheDir, "blobs/sha256");
  const hex = shard.digest.slice(7);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_pull_child.ts", import.meta.url).pathname,
      stalling.url,
      cacheDir,
      "zoo/big@1.0.0",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const partialSize = async () => {
    try {
      return (await Deno.stat(join(dir, `${hex}.partial`))).size;
    } catch {
      return 0;
    }
  };
  for (const until = Date.now() + 60_000; (await partialSize()) < 2 << 20;) {
    assert(Date.now() < until, "the child never wrote 2 MiB of the partial");
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  assertEquals((await child.status).signal, "SIGKILL");
  // What was on disk when the process died is kept, never more than was sent.
  const kept = await partialSize();
  assert(kept >= 2 << 20 && kept <= sent, `the partial holds ${kept} bytes`);
  assert((await listDir(dir)).includes(`${hex}.lock`), "the killed process left its lock file");

  await using honest = startProxy(reg.url);
  const pulled = await client(honest.url, cacheDir).pull("zoo/big@1.0.0");
  const blob = honest.seen.filter((s) => s.path === blobPath);
  assertEquals(blob.map((s) => [s.range, s.status]), [[`bytes=${kept}-`, 206]]);
  const local = pulled.files.find((f) => f.path === shard.path)!;
  assertEquals(sha256(await Deno.readFile(local.localPath)), shard.digest);
  assertEquals((await listDir(dir)).filter((n) => n.startsWith(hex)), [hex]);
});

Deno.test("using the cache removes partials a killed download left a day ago", async () => {
  await using reg = await startRegistry();
  await publishDense(reg);
  const cacheDir = await tempCache();
  await client(reg.url, cacheDir).pull("zoo/dense@1.0.0");
  const dir = join(cacheDir, "blobs/sha256");
  const orphan = `${"e".repeat(64)}.3f9a1c0b2d4e4f6a8b0c1d2e3f4a5b6c.partial`;
  const recent = `${"f".repeat(64)}.partial`;
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
  await Deno.writeFile(join(dir, orphan), new Uint8Array(5_000));
  await Deno.utime(join(dir, orphan), twoDaysAgo, twoDaysAgo);
  await Deno.writeFile(join(dir, recent), new Uint8Array(5_000));
  // Everything is cached: no download, yet the next use of the cache sweeps it.
  (await client(reg.url, cacheDir, { offline: true }).loadModel("zoo/dense@1.0.0")).dispose();
  const names = await listDir(dir);
  assert(!names.includes(orphan), "the day-old partial is gone");
  assert(names.includes(recent), "a recent partial is kept for resume");
});

Deno.test("a server that ignores Range still gives a verified blob", async () => {
  await using reg = await startRegistry();
  const { shard } = await publishDense(reg);
  const cacheDir = await tempCache();
  const dir = join(cacheDir, "blobs/sha256");
  await Deno.mkdir(dir, { recursive: true });
  const full = new Uint8Array(
    await (await fetch(`${reg.url}/api/blobs/${shard.digest}`)).arrayBuffer(),
  );
  await Deno.writeFile(join(dir, `${shard.digest.slice(7)}.partial`), full.slice(0, 5000));
  await using ignoring = startProxy(reg.url, (req, forward) => {
    const headers = new Headers(req.headers);
    headers.delete("range");
    return forward(req, headers);
  });
  await client(ignoring.url, cacheDir).pull("zoo/dense@1.0.0");
  const blob = ignoring.seen.filter((s) => s.path.startsWith("/api/blobs/"));
  assert(blob.some((s) => s.range === "bytes=5000-" && s.status === 200));
  assertEquals(await Deno.readFile(join(dir, shard.digest.slice(7))), full);
});

Deno.test("a corrupted cached blob is noticed on use and fetched again", async () => {
  await using reg = await startRegistry();
  const { shard } = await publishDense(reg);
  const cacheDir = await tempCache();
  await using proxy = startProxy(reg.url);
  const zoo = client(proxy.url, cacheDir);
  const pulled = await zoo.pull("zoo/dense@1.0.0");
  const path = pulled.files.find((f) => f.path === shard.path)!.localPath;
  const good = await Deno.readFile(path);
  const bad = good.slice();
  bad[100] = bad[100]! ^ 0xff;
  await Deno.writeFile(path, bad);
  const fetchedBefore = proxy.seen.filter((s) => s.path.startsWith("/api/blobs/")).length;
  (await zoo.loadModel("zoo/dense@1.0.0")).dispose();
  assertEquals(
    proxy.seen.filter((s) => s.path.startsWith("/api/blobs/")).length,
    fetchedBefore + 1,
  );
  assertEquals(await Deno.readFile(path), good);
});

Deno.test("offline, a corrupted cached blob is reported as corrupted, not as not cached", async () => {
  await using reg = await startRegistry();
  const { shard } = await publishDense(reg);
  const cacheDir = await tempCache();
  const online = client(reg.url, cacheDir);
  const offline = client(reg.url, cacheDir, { fetch: noNetwork().fetch, offline: true });
  const path = (await online.pull("zoo/dense@1.0.0")).files.find((f) => f.path === shard.path)!
    .localPath;
  const good = await Deno.readFile(path);
  // One flipped byte (the size still matches) and a cut copy (the size differs).
  const flipped = good.slice();
  flipped[100] = flipped[100]! ^ 0xff;
  for (const bad of [flipped, good.slice(0, 1000)]) {
    await Deno.writeFile(path, bad);
    const e = await assertRejects(() => offline.loadModel("zoo/dense@1.0.0"), OfflineError);
    assertStringIncludes(
      e.message,
      `the cached copy of file "${shard.path}" (${shard.digest}) is corrupted`,
    );
    assert(!e.message.includes("not cached"), e.message);
    // Online, the same cache heals.
    (await online.loadModel("zoo/dense@1.0.0")).dispose();
    assertEquals(await Deno.readFile(path), good);
  }
});

Deno.test("bytes that do not match their digest throw IntegrityError and leave nothing cached", async () => {
  await using reg = await startRegistry();
  const { result } = await publishDense(reg);
  const cacheDir = await tempCache();
  await using flipping = startProxy(reg.url, async (req, forward) => {
    const res = await forward(req);
    return new URL(req.url).pathname.startsWith("/api/blobs/") ? flipByte(res, 7) : res;
  });
  const e = await assertRejects(
    () => client(flipping.url, cacheDir).pull("zoo/dense@1.0.0"),
    IntegrityError,
  );
  // The error names the manifest's digest and the digest of the bytes that came.
  const file = result.version.files.find((f) => f.digest === e.expected)!;
  const sent = new Uint8Array(
    await (await fetch(`${reg.url}/api/blobs/${file.digest}`)).arrayBuffer(),
  );
  sent[7] = sent[7]! ^ 0xff;
  assertEquals(e.actual, sha256(sent));
  assertStringIncludes(e.message, `Integrity check failed for "blob ${file.digest}"`);
  assertEquals(await listDir(join(cacheDir, "blobs/sha256")), []);
});

Deno.test("two processes pulling the same version at once share one verified cache", async () => {
  await using reg = await startRegistry();
  await publishDense(reg);
  const cacheDir = await tempCache();
  const child = () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_pull_child.ts", import.meta.url).pathname,
        reg.url,
        cacheDir,
        "zoo/dense",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const outs = await Promise.all([child(), child()]);
  for (const o of outs) {
    assertEquals(o.code, 0, new TextDecoder().decode(o.stderr));
    assertEquals(new TextDecoder().decode(o.stdout).trim(), "zoo/dense@1.0.0");
  }
  const names = await listDir(join(cacheDir, "blobs/sha256"));
  assertEquals(names.length, 2);
  for (const n of names) {
    assertEquals(sha256(await Deno.readFile(join(cacheDir, "blobs/sha256", n))), `sha256:${n}`);
  }
});

Deno.test("publish() asks HEAD of every blob first and sends only the blobs the registry lacks", async () => {
  await using reg = await startRegistry();
  await using proxy = startProxy(reg.url);
  const requests = () => {
    const out = proxy.seen.map((s) =>
      `${s.method} ${s.path.split("/").slice(0, 3).join("/")} ${s.status}`
    );
    proxy.seen.length = 0;
    return out;
  };
  const model = denseModel();
  try {
    const pub = client(proxy.url, await tempCache(), { token: reg.token });
    const first = await pub.publish(model, { name: "zoo/dense", version: "1.0.0" });
    assertEquals([first.uploaded, first.reused], [2, 0]);
    // Blobs go in parallel, each one's HEAD before its POST; the version last.
    const seen = requests();
    assertEquals(seen.slice(0, 4).sort(), [
      "HEAD /api/blobs 404",
      "HEAD /api/blobs 404",
      "POST /api/blobs 201",
      "POST /api/blobs 201",
    ]);
    assertEquals(seen[4], "PUT /api/models 201");
    const second = await pub.publish(model, { name: "zoo/dense", version: "1.0.1" });
    assertEquals([second.uploaded, second.reused], [0, 2]);
    assertEquals(requests(), ["HEAD /api/blobs 200", "HEAD /api/blobs 200", "PUT /api/models 201"]);
  } finally {
    model.dispose();
  }
});

Deno.test("publish() takes the readme option as README.md in place of the folder's", async () => {
  await using reg = await startRegistry();
  const model = denseModel();
  const dir = await writeCheckpointFolder(model);
  model.dispose();
  await client(reg.url, await tempCache(), { token: reg.token })
    .publish(dir, { name: "zoo/readme", version: "1.0.0", readme: "# Replaced\n" });
  const pulled = await client(reg.url, await tempCache()).pull("zoo/readme@1.0.0");
  assertEquals(await Deno.readTextFile(join(pulled.dir, "README.md")), "# Replaced\n");
  assertEquals(pulled.version.files.filter((f) => f.path === "README.md").length, 1);
});

Deno.test("ZooClient options come first, then ZOO_URL, ZOO_TOKEN and ZOO_CACHE, then defaults", async () => {
  await using reg = await startRegistry();
  const names = ["ZOO_URL", "ZOO_TOKEN", "ZOO_CACHE", "XDG_CACHE_HOME", "HOME"];
  const saved = new Map(names.map((n) => [n, Deno.env.get(n)]));
  const cacheDir = await tempCache();
  try {
    Deno.env.set("ZOO_URL", reg.url);
    Deno.env.set("ZOO_TOKEN", reg.token);
    Deno.env.set("ZOO_CACHE", cacheDir);
    const fromEnv = new ZooClient({ progress: false });
    assertEquals([fromEnv.url, fromEnv.cacheDir], [reg.url, cacheDir]);
    const model = denseModel();
    try {
      // The token comes from ZOO_TOKEN: the registry accepts the publish.
      await fromEnv.publish(model, { name: "zoo/env", version: "1.0.0" });
      await fromEnv.pull("zoo/env@1.0.0");
      assert((await listDir(join(cacheDir, "blobs/sha256"))).length > 0);
      // An option beats its variable: an empty token sends none, and the registry says 401.
      const flagged = new ZooClient({ url: `${reg.url}/`, token: "", cacheDir: "/tmp/other" });
      assertEquals([flagged.url, flagged.cacheDir], [reg.url, "/tmp/other"]);
      const e = await assertRejects(
        () => flagged.publish(model, { name: "zoo/env", version: "2.0.0" }),
        RegistryError,
      );
      assertEquals(e.status, 401);
    } finally {
      model.dispose();
    }
    for (const n of names) Deno.env.delete(n);
    Deno.env.set("XDG_CACHE_HOME", "/tmp/xdg");
    const defaults = new ZooClient();
    assertEquals([defaults.url, defaults.cacheDir], [DEFAULT_URL, "/tmp/xdg/deno-model-zoo"]);
    Deno.env.delete("XDG_CACHE_HOME");
    Deno.env.set("HOME", "/home/someone");
    assertEquals(new ZooClient().cacheDir, "/home/someone/.cache/deno-model-zoo");
  } finally {
    for (const [n, v] of saved) v === undefined ? Deno.env.delete(n) : Deno.env.set(n, v);
  }
});

Deno.test("a pull draws a download bar on stderr when asked, and none when stderr is not a terminal", async () => {
  await using reg = await startRegistry();
  const { result } = await publishDense(reg);
  const total = result.version.files.reduce((n, f) => n + f.size, 0);
  const pull = async (...extra: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_pull_child.ts", import.meta.url).pathname,
        reg.url,
        await tempCache(),
        "zoo/dense@1.0.0",
        ...extra,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const [stdout, stderr] = [out.stdout, out.stderr].map((b) => new TextDecoder().decode(b));
    assertEquals(out.code, 0, stderr);
    assertEquals(stdout!.trim(), "zoo/dense@1.0.0", "the bar leaves stdout alone");
    return stderr!;
  };
  const shown = await pull("--progress");
  assertStringIncludes(shown, "zoo/dense@1.0.0 [");
  assertStringIncludes(shown, `100% | ${total}/${total} bytes`);
  const piped = await pull();
  assert(!piped.includes("bytes"), piped);
});

Deno.test("publish() surfaces 401, 403, 409 and 422 with the registry's detail", async () => {
  await using reg = await startRegistry();
  await publishDense(reg);
  const model = denseModel();
  try {
    const cacheDir = await tempCache();
    /** The RegistryError of publishing `source` as `name@version` with `token`. */
    const refused = (
      token: string,
      source: tf.LayersModel | string,
      name: string,
      version: string,
    ) =>
      assertRejects(
        () => client(reg.url, cacheDir, { token }).publish(source, { name, version }),
        RegistryError,
      );
    const anonymous = await refused("", model, "zoo/dense", "2.0.0");
    assertEquals(anonymous.status, 401);
    assertStringIncludes(anonymous.message, 'Cannot publish "zoo/dense@2.0.0": ');
    const unknown = await refused("zoo_bad_token", model, "zoo/dense", "2.0.0");
    assertEquals(unknown.status, 401);
    assert(!unknown.message.includes("no detail"), unknown.message);
    const forbidden = await refused(await reg.mint(["publish:other"]), model, "zoo/dense", "2.0.0");
    assertEquals(forbidden.status, 403);
    const exists = await refused(reg.token, model, "zoo/dense", "1.0.0");
    assertEquals(exists.status, 409);
    assertStringIncludes(exists.message, 'Cannot publish "zoo/dense@1.0.0": ');
    assertStringIncludes(exists.message, "(409): ");
    const empty = await Deno.makeTempDir();
    await Deno.writeTextFile(join(empty, "model.json"), JSON.stringify({ weightsManifest: [] }));
    const invalid = await refused(reg.token, empty, "zoo/bad", "1.0.0");
    assertEquals(invalid.status, 422);
  } finally {
    model.dispose();
  }
});

Deno.test("resolve() of an unknown model throws NotFoundError", async () => {
  await using reg = await startRegistry();
  const zoo = client(reg.url, await tempCache());
  const e = await assertRejects(
    () => zoo.resolve("zoo/nope"),
    NotFoundError,
  );
  assertEquals(e.status, 404);
  assertStringIncludes(e.message, 'Cannot resolve "zoo/nope@latest": ');
  assertInstanceOf(e, RegistryError);
});

Deno.test("tf.loadLayersModel() loads zoo:// URLs through a registered client", async () => {
  await using reg = await startRegistry();
  await publishDense(reg);
  const zoo = client(reg.url, await tempCache());
  {
    using _router = registerZooRouter(zoo);
    const fractions: number[] = [];
    const model = await tf.loadLayersModel("zoo://zoo/dense@latest", {
      onProgress: (f) => fractions.push(f),
    });
    assertEquals(model.outputs[0]?.shape, [null, 3]);
    model.dispose();
    assertGreater(fractions.length, 0);
  }
  await assertRejects(() => tf.loadLayersModel("zoo://zoo/dense@latest"));
});

Deno.test("the publish CLI publishes a folder, lists its flags, and exits 1 with the registry's message", async () => {
  await using reg = await startRegistry();
  const model = denseModel();
  const dir = await writeCheckpointFolder(model);
  model.dispose();
  const cli = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../../../sdk/publish.ts", import.meta.url).pathname, ...args],
      env: { ZOO_TOKEN: reg.token },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const help = new TextDecoder().decode((await cli("--help")).stdout);
  for (
    const flag of [
      "--name",
      "--version",
      "--registry",
      "--token",
      "--card",
      "--readme",
      "ZOO_URL",
      "ZOO_TOKEN",
    ]
  ) {
    assertStringIncludes(help, flag);
  }
  const ok = await cli(dir, "--name", "zoo/cli", "--version", "1.0.0", "--registry", reg.url);
  assertEquals(ok.code, 0, new TextDecoder().decode(ok.stderr));
  assertStringIncludes(new TextDecoder().decode(ok.stdout), "Published zoo/cli@1.0.0");
  const again = await cli(dir, "--name", "zoo/cli", "--version", "1.0.0", "--registry", reg.url);
  assertEquals(again.code, 1);
  assertStringIncludes(new TextDecoder().decode(again.stderr), 'Cannot publish "zoo/cli@1.0.0": ');
  const missing = await cli(dir, "--version", "1.0.0");
  assertEquals(missing.code, 1);
  assertStringIncludes(new TextDecoder().decode(missing.stderr), "--name");
});
