import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { createRegistryApp, type RegistryOptions } from "../../registry/app.ts";
import { createToken } from "../../registry/auth.ts";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import type { Store } from "../../registry/storage/store.ts";
import { digestOf, inProcessApp, type TestFile, tinyConvnetFiles } from "../_helpers/registry.ts";

await tf.setBackend("cpu");

interface Ctx {
  app: ReturnType<typeof createRegistryApp>;
  store: Store;
  token: string;
  req(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  upload(files: TestFile[]): Promise<{ path: string; digest: string; size: number }[]>;
}

async function withApp(fn: (ctx: Ctx) => Promise<void>, opts: Omit<RegistryOptions, "store"> = {}) {
  await using registry = await inProcessApp("zoo-app-", opts);
  const { app, store, token } = registry;
  const req: Ctx["req"] = (path, init = {}) => {
    const headers = new Headers(init.headers);
    const t = init.token === undefined ? token : init.token;
    if (t !== null) headers.set("authorization", `Bearer ${t}`);
    return Promise.resolve(app.request(path, { ...init, headers }));
  };
  const upload: Ctx["upload"] = async (files) => {
    const out = [];
    for (const f of files) {
      const digest = await digestOf(f.bytes);
      const r = await req(`/api/blobs?digest=${digest}`, { method: "POST", body: f.bytes });
      assert(r.ok, `upload ${f.path}: ${r.status}`);
      out.push({ path: f.path, digest, size: f.bytes.byteLength });
    }
    return out;
  };
  await fn({ app, store, token, req, upload });
}

async function problemOf(r: Response, status: number): Promise<string> {
  assertEquals(r.status, status, await r.clone().text());
  assertEquals(r.headers.get("content-type"), "application/problem+json");
  const body = await r.json() as { status: number; title: string; detail: string };
  assertEquals(body.status, status);
  assert(body.title.length > 0);
  assert(!/\bat .*\.ts:\d+/.test(body.detail), "no stack traces in problems");
  return body.detail;
}

const put = (files: unknown, card: unknown = {}) => ({
  method: "PUT",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ files, card }),
});

let modelCache: TestFile[] | undefined;
async function tinyFiles(): Promise<TestFile[]> {
  modelCache ??= await tinyConvnetFiles();
  return modelCache;
}

Deno.test("names, versions, tags and digests with path tricks are rejected before the store", async () => {
  await withApp(async ({ req }) => {
    // ".." and "%2e%2e" are dot segments that URL parsing collapses before any
    // route sees them: the request lands on another path and finds nothing.
    for (const path of ["/api/models/zoo/..", "/api/models/zoo/%2e%2e", "/api/models/%2e%2e/x"]) {
      const r = await req(path);
      assertEquals(r.headers.get("content-type"), "application/problem+json");
      assert(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
    }
    assertMatch(await problemOf(await req("/api/models/zoo/a%2Fb"), 400), /Invalid name/);
    assertMatch(await problemOf(await req("/api/models/zoo/a%2e%2e"), 400), /Invalid name/);
    assertMatch(await problemOf(await req("/api/models/zoo/..x"), 400), /Invalid name/);
    await problemOf(await req("/api/models/zoo/a%00b"), 400);
    await problemOf(await req("/api/models/zoo/a%0Ab"), 400);
    await problemOf(await req(`/api/models/zoo/${"a".repeat(65)}`), 400);
    await problemOf(await req("/api/models/Zoo/upper"), 400);
    await problemOf(await req("/api/models/zoo/x/v%2F1"), 400);
    await problemOf(await req("/api/blobs/sha256:..%2F..%2Fetc"), 400);
    await problemOf(await req("/api/blobs/md5:abc"), 400);
    const files = await tinyFiles();
    const detail = await problemOf(await req("/api/models/zoo/x/1.0", put([], {})), 422);
    assertStringIncludes(detail, 'Invalid version "1.0"');
    const evil = [{ path: "../../etc/passwd", digest: await digestOf(files[0]!.bytes), size: 1 }];
    const errs = await problemOf(await req("/api/models/zoo/x/1.0.0", put(evil)), 422);
    assertStringIncludes(errs, 'without ".." segments');
  });
});

Deno.test("publishing validates JSON, files, digests, weights and layer classes", async () => {
  await withApp(async ({ req, upload }) => {
    const files = await tinyFiles();
    const malformed = await req("/api/models/zoo/x/1.0.0", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assertStringIncludes(await problemOf(malformed, 400), "not valid JSON");

    const missing = files.map((f, i) => ({
      path: f.path,
      digest: `sha256:${String(i).repeat(64)}`,
      size: 1,
    }));
    assertStringIncludes(
      await problemOf(await req("/api/models/zoo/x/1.0.0", put(missing)), 422),
      "has not been uploaded",
    );

    const entries = await upload(files);
    const noModel = entries.filter((e) => e.path !== "model.json");
    assertStringIncludes(
      await problemOf(await req("/api/models/zoo/x/1.0.0", put(noModel)), 422),
      "model.json",
    );

    const wrongSize = entries.map((e) => ({ ...e, size: e.size + 1 }));
    assertStringIncludes(
      await problemOf(await req("/api/models/zoo/x/1.0.0", put(wrongSize)), 422),
      "bytes but blob",
    );

    // A shard one float short of what the weights need.
    const shard = files[1]!.bytes.slice(0, files[1]!.bytes.byteLength - 4);
    const [short] = await upload([{ path: "group1-shard1of1.bin", bytes: shard }]);
    const truncated = [entries[0]!, short!];
    const r = await req("/api/models/zoo/x/1.0.0", put(truncated));
    const detail = await problemOf(r.clone(), 422);
    assertStringIncludes(detail, "not a valid TensorFlow.js LayersModel");

    const json = JSON.parse(new TextDecoder().decode(files[0]!.bytes));
    json.modelTopology.config.layers[0].class_name = "NoSuchLayer";
    const [bad] = await upload([{
      path: "model.json",
      bytes: new TextEncoder().encode(JSON.stringify(json)),
    }]);
    const unknown = await problemOf(
      await req("/api/models/zoo/x/1.0.0", put([bad!, entries[1]!])),
      422,
    );
    assertStringIncludes(unknown, "NoSuchLayer");

    const [notJson] = await upload([{
      path: "model.json",
      bytes: new TextEncoder().encode("<html>"),
    }]);
    assertStringIncludes(
      await problemOf(await req("/api/models/zoo/x/1.0.0", put([notJson!])), 422),
      "not valid JSON",
    );

    const badCard = await req("/api/models/zoo/x/1.0.0", put(entries, { labels: "cat" }));
    assertStringIncludes(await problemOf(badCard, 422), "card.labels");

    assertEquals((await req("/api/models/zoo/x/1.0.0", put(entries))).status, 201);
    const again = await problemOf(await req("/api/models/zoo/x/1.0.0", put(entries)), 409);
    assertStringIncludes(again, "immutable");
  });
});

Deno.test("a publish request over the manifest limit is refused with 413", async () => {
  await withApp(async ({ req }) => {
    const body = JSON.stringify({ files: [], card: { description: "x".repeat(5000) } });
    const r = await req("/api/models/zoo/x/1.0.0", { method: "PUT", body });
    assertStringIncludes(await problemOf(r, 413), "over the limit");
  }, { limits: { maxManifestBytes: 1000 } });
});

Deno.test("writes need a token with the namespace's publish scope", async () => {
  await withApp(async ({ req, store }) => {
    const files = await tinyFiles();
    const digest = await digestOf(files[1]!.bytes);
    const { token: other } = await createToken(store, ["publish:other"], "other");
    const { token: reader } = await createToken(store, ["read"], "reader");
    const upload = { method: "POST", body: files[1]!.bytes };
    const refused: [string, Parameters<typeof req>[1], 401 | 403, string][] = [
      [`/api/blobs?digest=${digest}`, { ...upload, token: null }, 401, "token"],
      ["/api/models/zoo/x/1.0.0", { ...put([]), token: "zoo_bad_token" }, 401, "Unknown token"],
      [
        "/api/models/zoo/x/1.0.0",
        { ...put([]), headers: { authorization: "Basic abc" }, token: null },
        401,
        "Authorization",
      ],
      ["/api/models/zoo/x/1.0.0", { ...put([]), token: other }, 403, '"publish:zoo"'],
      [`/api/blobs?digest=${digest}`, { ...upload, token: reader }, 403, "publish"],
      ["/api/models/zoo/x/tags/stable", { method: "PUT", body: "{}", token: reader }, 403, "zoo"],
      ["/api/models/zoo/x/1.0.0/yank", { method: "POST", token: null }, 401, "token"],
    ];
    for (const [path, init, status, says] of refused) {
      const r = await req(path, init);
      if (status === 401) {
        assertEquals(r.headers.get("www-authenticate"), 'Bearer realm="model-zoo"', path);
      }
      assertStringIncludes(await problemOf(r, status), says, path);
    }
    // Reads are anonymous by default.
    assertEquals((await req("/api/models", { token: null })).status, 200);
  });
});

Deno.test("a private registry needs a read token for reads", async () => {
  await withApp(async ({ req, store }) => {
    assertStringIncludes(
      await problemOf(await req("/api/models", { token: null }), 401),
      "private",
    );
    const { token: publisher } = await createToken(store, ["publish:zoo"]);
    await problemOf(await req("/api/models", { token: publisher }), 403);
    const { token: reader } = await createToken(store, ["read"]);
    assertEquals((await req("/api/models", { token: reader })).status, 200);
    // A document read with a token is not kept for anonymous reads.
    const { token: admin } = await createToken(store, ["admin"]);
    const files = [{ path: "model.json", digest: `sha256:${"1".repeat(64)}`, size: 2 }];
    await store.publish({
      namespace: "zoo",
      name: "secret",
      version: "1.0.0",
      files,
      card: {},
      architecture: {},
    });
    for (const path of ["/api/models/zoo/secret", "/api/models/zoo/secret/1.0.0"]) {
      assertEquals((await req(path, { token: reader })).status, 200);
      assertEquals((await req(path, { token: admin })).status, 200);
      await problemOf(await req(path, { token: null }), 401);
      await problemOf(await req(path, { token: publisher }), 403);
    }
    assertEquals((await req("/healthz", { token: null })).status, 200);
  }, { auth: { private: true } });
});

Deno.test("tags move, yanked versions are skipped by tags and latest but stay downloadable by version", async () => {
  await withApp(async ({ req, upload }) => {
    const entries = await upload(await tinyFiles());
    for (const v of ["1.0.0", "1.1.0", "2.0.0-rc.1"]) {
      assertEquals((await req(`/api/models/zoo/m/${v}`, put(entries))).status, 201);
    }
    const latest = async () => (await (await req("/api/models/zoo/m/latest")).json()).version;
    assertEquals(await latest(), "1.1.0", "a prerelease does not take latest");
    const tag = await req("/api/models/zoo/m/tags/stable", {
      method: "PUT",
      body: JSON.stringify({ version: "1.0.0" }),
    });
    assertEquals(tag.status, 200);
    assertEquals((await (await req("/api/models/zoo/m/stable")).json()).version, "1.0.0");
    await problemOf(
      await req("/api/models/zoo/m/tags/stable", {
        method: "PUT",
        body: JSON.stringify({ version: "9.9.9" }),
      }),
      404,
    );
    await problemOf(
      await req("/api/models/zoo/m/tags/1.0.0", {
        method: "PUT",
        body: JSON.stringify({ version: "1.0.0" }),
      }),
      400,
    );

    assertEquals((await req("/api/models/zoo/m/1.1.0/yank", { method: "POST" })).status, 200);
    assertEquals(await latest(), "1.0.0");
    assertEquals((await req("/api/models/zoo/m/1.0.0/yank", { method: "POST" })).status, 200);
    assertEquals(await latest(), "2.0.0-rc.1", "a prerelease is used when nothing stable is left");
    const stable = await problemOf(await req("/api/models/zoo/m/stable"), 404);
    assertStringIncludes(stable, 'points at yanked version "1.0.0"');
    const exact = await req("/api/models/zoo/m/1.0.0");
    assertEquals(exact.status, 200);
    assertEquals((await exact.json()).yanked, true);
    assertEquals((await req("/api/models/zoo/m/1.0.0/model.json")).status, 200);
    const unyank = await req("/api/models/zoo/m/1.1.0/yank", {
      method: "POST",
      body: JSON.stringify({ yanked: false }),
    });
    assertEquals((await unyank.json()).yanked, false);
    assertEquals(await latest(), "1.1.0");
    // An empty body yanks as none does: a POST without Content-Length
    // (`curl -X POST`) arrives as an empty stream.
    const emptyStream = () => new ReadableStream({ start: (ctl) => ctl.close() });
    for (const body of [emptyStream(), ""]) {
      const r = await req("/api/models/zoo/m/1.1.0/yank", { method: "POST", body });
      assertEquals((await r.json()).yanked, true);
      assertEquals(await latest(), "2.0.0-rc.1");
      await req("/api/models/zoo/m/1.1.0/yank", {
        method: "POST",
        body: JSON.stringify({ yanked: false }),
      });
    }
    assertStringIncludes(
      await problemOf(await req("/api/models/zoo/m/3.0.0"), 404),
      "available versions",
    );
    assertStringIncludes(
      await problemOf(await req("/api/models/zoo/m/nightly"), 404),
      'Tag "nightly"',
    );
    await problemOf(await req("/api/models/zoo/none/latest"), 404);
    await problemOf(await req("/api/models/zoo/m/9.9.9/yank", { method: "POST" }), 404);
  });
});

Deno.test("every version GET counts itself and the next GET shows one more, as does the model document", async () => {
  await withApp(async ({ req, upload }) => {
    const entries = await upload(await tinyFiles());
    assertEquals((await req("/api/models/zoo/dl/1.0.0", put(entries))).status, 201);
    const downloads = async (path: string) => (await (await req(path)).json()).downloads;
    for (const expected of [1, 2, 3]) {
      assertEquals(await downloads("/api/models/zoo/dl/1.0.0"), expected);
    }
    assertEquals(await downloads("/api/models/zoo/dl"), 3);
    assertEquals(await downloads("/api/models/zoo/dl/latest"), 4);
    await (await req("/api/models/zoo/dl/1.0.0/model.json")).body?.cancel();
    const model = await (await req("/api/models/zoo/dl")).json();
    assertEquals([model.downloads, model.versions[0].downloads], [5, 5]);
    assertEquals(await downloads("/api/models/zoo/dl/1.0.0"), 6);
  });
});

Deno.test("a yank, unyank, tag move or publish shows on the very next GET of a document read before", async () => {
  await withApp(async ({ store, req, upload }) => {
    const entries = await upload(await tinyFiles());
    for (const v of ["1.0.0", "1.1.0"]) {
      assertEquals((await req(`/api/models/zoo/fresh/${v}`, put(entries))).status, 201);
    }
    // Each read goes anonymously (answered before the router once kept) and
    // with a token (through the route); both must say the same.
    const doc = async (path: string) => {
      const anonymous = await (await req(path, { token: null })).json();
      const routed = await (await req(path)).json();
      // A version GET counts itself: the two counts are one apart.
      if (path.split("/").length === 6) {
        assertEquals(routed.downloads, anonymous.downloads + 1);
        delete anonymous.downloads;
        delete routed.downloads;
      }
      assertEquals(anonymous, routed);
      return routed;
    };
    const warm = async () => {
      for (const p of ["", "/1.0.0", "/1.1.0", "/latest"]) await doc(`/api/models/zoo/fresh${p}`);
    };
    /** A second app on the same store reads everything afresh. */
    const cold = createRegistryApp({ store });
    const sameAsCold = async () => {
      const warmText = await (await req("/api/models/zoo/fresh")).text();
      assertEquals(warmText, await (await cold.request("/api/models/zoo/fresh")).text());
    };

    await warm();
    assertEquals((await req("/api/models/zoo/fresh/1.1.0/yank", { method: "POST" })).status, 200);
    assertEquals((await doc("/api/models/zoo/fresh/1.1.0")).yanked, true);
    assertEquals((await doc("/api/models/zoo/fresh/latest")).version, "1.0.0");
    const model = await doc("/api/models/zoo/fresh");
    assertEquals([model.latest, model.versions[1].yanked], ["1.0.0", true]);
    await sameAsCold();

    await warm();
    const unyank = { method: "POST", body: JSON.stringify({ yanked: false }) };
    assertEquals((await req("/api/models/zoo/fresh/1.1.0/yank", unyank)).status, 200);
    assertEquals((await doc("/api/models/zoo/fresh/1.1.0")).yanked, false);
    assertEquals((await doc("/api/models/zoo/fresh/latest")).version, "1.1.0");
    await sameAsCold();

    const stable = (version: string) => ({ method: "PUT", body: JSON.stringify({ version }) });
    assertEquals((await req("/api/models/zoo/fresh/tags/stable", stable("1.0.0"))).status, 200);
    assertEquals((await doc("/api/models/zoo/fresh/stable")).version, "1.0.0");
    await warm();
    assertEquals((await req("/api/models/zoo/fresh/tags/stable", stable("1.1.0"))).status, 200);
    assertEquals((await doc("/api/models/zoo/fresh/stable")).version, "1.1.0");
    assertEquals((await doc("/api/models/zoo/fresh")).tags.stable, "1.1.0");
    await sameAsCold();

    await warm();
    assertEquals((await req("/api/models/zoo/fresh/2.0.0", put(entries))).status, 201);
    assertEquals((await doc("/api/models/zoo/fresh/latest")).version, "2.0.0");
    assertEquals((await doc("/api/models/zoo/fresh")).versions.length, 3);
    await sameAsCold();

    // Writes that bypass this app: straight to the store, and from another app.
    await warm();
    await store.setYanked("zoo", "fresh", "2.0.0", true);
    assertEquals((await doc("/api/models/zoo/fresh/2.0.0")).yanked, true);
    assertEquals((await doc("/api/models/zoo/fresh/latest")).version, "1.1.0");
    await cold.request("/api/models/zoo/fresh/1.1.0/yank", {
      method: "POST",
      headers: { authorization: `Bearer ${(await createToken(store, ["admin"])).token}` },
    });
    assertEquals((await doc("/api/models/zoo/fresh/latest")).version, "1.0.0");
    await sameAsCold();
  });
});

Deno.test("a write by another process on the same data shows on the very next GET", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zoo-app-" });
  const store = await openSqliteFsStore(dir);
  try {
    const app = createRegistryApp({ store });
    const files = [{ path: "model.json", digest: `sha256:${"1".repeat(64)}`, size: 2 }];
    const v = { namespace: "zoo", name: "shared", files, card: {}, architecture: {} };
    await store.publish({ ...v, version: "1.0.0" });
    const doc = async (path: string) => await (await app.request(path)).json();
    const inChild = async (code: string) => {
      const storeModule = new URL("../../registry/storage/sqlite_fs.ts", import.meta.url).href;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { openSqliteFsStore } from ${JSON.stringify(storeModule)};
           const store = await openSqliteFsStore(${JSON.stringify(dir)});
           ${code}
           await store.close();`,
        ],
        stderr: "inherit",
      }).output();
      assertEquals(out.code, 0);
    };
    assertEquals((await doc("/api/models/zoo/shared/1.0.0")).yanked, false);
    assertEquals((await doc("/api/models/zoo/shared")).latest, "1.0.0");
    await inChild(`await store.publish(${JSON.stringify({ ...v, version: "1.1.0" })});`);
    assertEquals((await doc("/api/models/zoo/shared")).latest, "1.1.0");
    assertEquals((await doc("/api/models/zoo/shared/latest")).version, "1.1.0");
    await inChild(`await store.setYanked("zoo", "shared", "1.1.0", true);`);
    assertEquals((await doc("/api/models/zoo/shared/1.1.0")).yanked, true);
    assertEquals((await doc("/api/models/zoo/shared/latest")).version, "1.0.0");
    await inChild(`await store.setTag("zoo", "shared", "stable", "1.0.0");`);
    assertEquals((await doc("/api/models/zoo/shared")).tags.stable, "1.0.0");
    // Two GETs of 1.0.0 here (one through latest), one there, and this one.
    await inChild(`await store.countDownload("zoo", "shared", "1.0.0");`);
    assertEquals((await doc("/api/models/zoo/shared/1.0.0")).downloads, 4);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("API responses, problems included, let any origin read them", async () => {
  await withApp(async ({ req, upload }) => {
    const [entry] = await upload(await tinyFiles());
    for (
      const [path, status] of [
        ["/api/models", 200],
        ["/api/models/zoo/none", 404],
        ["/api/models/zoo/none/1.0.0", 404],
        [`/api/blobs/${entry!.digest}`, 200],
      ] as const
    ) {
      const r = await req(path, { token: null });
      await r.body?.cancel();
      assertEquals(r.status, status, path);
      assertEquals(r.headers.get("access-control-allow-origin"), "*", path);
      assertStringIncludes(r.headers.get("access-control-expose-headers") ?? "", "etag", path);
    }
    const preflight = await req("/api/models/zoo/x/1.0.0", {
      method: "OPTIONS",
      token: null,
      headers: {
        origin: "https://example.org",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    assertEquals(preflight.status, 204);
    assertEquals(preflight.headers.get("access-control-allow-origin"), "*");
    assertStringIncludes(preflight.headers.get("access-control-allow-methods") ?? "", "PUT");
    assertEquals(
      preflight.headers.get("access-control-allow-headers"),
      "authorization,content-type",
    );
    assertEquals((await req("/healthz")).headers.get("access-control-allow-origin"), null);
  });
});

Deno.test("listing sorts by downloads or update time and pages with a cursor", async () => {
  await withApp(async ({ req, upload }) => {
    const entries = await upload(await tinyFiles());
    for (const name of ["a", "b", "c", "d", "e"]) {
      assertEquals(
        (await req(
          `/api/models/zoo/${name}/1.0.0`,
          put(entries, { task: name === "e" ? "other" : "cls" }),
        )).status,
        201,
      );
    }
    for (let i = 0; i < 3; i++) await req("/api/models/zoo/c/latest");
    const top = await (await req("/api/models?sort=downloads&limit=1")).json();
    assertEquals(top.items[0].name, "c");
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { name: string }[]; nextCursor: string | null } = await (await req(
        `/api/models?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      )).json();
      seen.push(...page.items.map((m) => m.name));
      cursor = page.nextCursor;
    } while (cursor);
    assertEquals(seen.toSorted(), ["a", "b", "c", "d", "e"]);
    const other = await (await req("/api/models?task=other")).json();
    assertEquals(other.items.map((m: { name: string }) => m.name), ["e"]);
    await problemOf(await req("/api/models?sort=stars"), 400);
    await problemOf(await req("/api/models?limit=0"), 400);
    await problemOf(await req("/api/models?limit=1000"), 400);
    await problemOf(await req("/api/models?cursor=garbage!!"), 400);
  });
});

Deno.test("unknown routes, wrong methods and server faults answer problem+json", async () => {
  await withApp(async ({ req }) => {
    assertStringIncludes(
      await problemOf(await req("/api/nothing/here/at/all/x"), 404),
      "openapi.json",
    );
    const r405 = await req("/api/blobs", { method: "GET" });
    assertStringIncludes(await problemOf(r405.clone(), 405), "POST");
    assertEquals(r405.headers.get("allow"), "POST");
    const del = await req(`/api/blobs/sha256:${"0".repeat(64)}`, { method: "DELETE" });
    await problemOf(del, 405);
  });
  const dir = await Deno.makeTempDir();
  const store = await openSqliteFsStore(dir);
  try {
    const broken = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === "getModel") return () => Promise.reject(new Error("disk on fire"));
        return Reflect.get(target, prop, receiver);
      },
    });
    const app = createRegistryApp({ store: broken });
    const original = console.error;
    console.error = () => {};
    try {
      const detail = await problemOf(await app.request("/api/models/zoo/x"), 500);
      assert(!detail.includes("disk on fire"), "internal causes stay in the log");
    } finally {
      console.error = original;
    }
  } finally {
    await store.close();
  }
});

Deno.test("the OpenAPI document lists exactly the routes the app serves, pages aside", async () => {
  await withApp(async ({ app, req }) => {
    const doc = await (await req("/openapi.json")).json();
    assertEquals(doc.openapi, "3.1.0");
    const documented = new Set<string>();
    for (
      const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    ) {
      for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${path}`);
    }
    const served = new Set<string>();
    for (const r of app.routes) {
      if (r.method === "ALL") continue;
      served.add(`${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`);
    }
    // Hono answers HEAD with the GET handler; the blob route documents it.
    served.add("HEAD /api/blobs/{digest}");
    // The HTML pages, their assets and the API reference are for people, not part of the API.
    const pages = [
      "GET /",
      "GET /{ns}/{name}",
      "GET /{ns}/{name}/{version}",
      "GET /docs",
      "GET /docs/scalar.js",
      "GET /assets/{file}",
      "GET /favicon.ico",
    ];
    for (const p of pages) assert(served.delete(p), `${p} is served`);
    assertEquals([...documented].sort(), [...served].sort());
  });
});

Deno.test("a write that outlasts the request time limit is answered 503 and stores nothing", async () => {
  await withApp(async ({ req, store }) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(10));
        timer = setTimeout(() => c.close(), 1000);
      },
    });
    const r = await req("/api/blobs", { method: "POST", body: stalled });
    clearTimeout(timer);
    assertStringIncludes(await problemOf(r, 503), "longer than 200 ms");
    assertEquals((await store.listModels({})).items.length, 0);
    // Reads are not timed: they answer at once and stream.
    assertEquals((await req("/healthz")).status, 200);
  }, { limits: { requestTimeoutMs: 200 } });
});
