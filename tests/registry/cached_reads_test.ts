import { assert, assertEquals } from "@std/assert";
import { createRegistryApp } from "../../registry/app.ts";
import { cachedReads, DocumentCache, versionBody } from "../../registry/routes/_documents.ts";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import type { Store } from "../../registry/storage/store.ts";
import { tempDir } from "../_helpers/temp.ts";

const files = [{ path: "model.json", digest: `sha256:${"1".repeat(64)}`, size: 2 }];
const base = { namespace: "zoo", name: "m", files, card: {}, architecture: {} };

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  await using dir = await tempDir("zoo-cached-reads-");
  const store = await openSqliteFsStore(dir.path);
  try {
    await store.publish({ ...base, version: "1.0.0" });
    await fn(store);
  } finally {
    await store.close();
  }
}

/** A front door over one kept model and version document; `next` records what it is handed. */
async function front(store: Store) {
  const docs = new DocumentCache();
  const rev = await store.revision("zoo", "m");
  docs.setModel("zoo/m", rev, JSON.stringify({ name: "m", downloads: rev.downloads }));
  docs.setVersion(
    "zoo/m@1.0.0",
    rev,
    versionBody("1.0.0", { version: "1.0.0", downloads: 0, yanked: false }),
  );
  const passed: string[] = [];
  const answer = cachedReads({ store, docs, headers: { "content-type": "application/json" } });
  const get = (url: string, init?: RequestInit) =>
    answer(new Request(url, init), (req) => {
      passed.push(`${req.method} ${new URL(req.url).pathname}${new URL(req.url).search}`);
      return new Response("routed", { status: 299 });
    });
  return { get, passed };
}

Deno.test("the front door answers a kept document and counts the download", async () => {
  await withStore(async (store) => {
    const { get, passed } = await front(store);
    for (const expected of [1, 2]) {
      const r = await get("http://x/api/models/zoo/m/1.0.0");
      assertEquals(r.status, 200);
      assertEquals(r.headers.get("content-type"), "application/json");
      assertEquals(await r.json(), { version: "1.0.0", downloads: expected, yanked: false });
    }
    assertEquals(passed, []);
    assertEquals((await store.getVersion("zoo", "m", "1.0.0"))?.downloads, 2);
  });
});

Deno.test("the front door hands on what the routes must answer themselves", async () => {
  await withStore(async (store) => {
    const { get, passed } = await front(store);
    const routed = async (url: string, init?: RequestInit) => {
      const r = await get(url, init);
      assertEquals([r.status, await r.text()], [299, "routed"], url);
    };
    await routed("http://x/api/models/zoo/m/1.0.0", { method: "POST" });
    await routed("http://x/api/models/zoo/m/1.0.0", { method: "HEAD" });
    await routed("http://x/api/models/zoo/m/1.0.0", { headers: { authorization: "Bearer x" } });
    await routed("http://x/api/models/zoo/m/1.0.0?x=1");
    await routed("http://x/api/models/zoo/m/1.0.%30");
    await routed("http://x/api/models/zoo/m/1.0.0/model.json");
    await routed("http://x/api/models/zoo/m/1.0.0/");
    await routed("http://x/api/models/zoo/m/latest");
    await routed("http://x/api/models/zoo/other");
    await routed("http://x/x/api/models/zoo/m/1.0.0");
    await routed("http://x/api/models/zoo");
    assertEquals(passed.length, 11);
    // Nothing counted but the answers above.
    assertEquals((await store.getVersion("zoo", "m", "1.0.0"))?.downloads, 0);
  });
});

Deno.test("a write to the store makes the front door hand on a document read before", async () => {
  await withStore(async (store) => {
    const { get, passed } = await front(store);
    assertEquals((await get("http://x/api/models/zoo/m")).status, 200);
    assertEquals((await get("http://x/api/models/zoo/m/1.0.0")).status, 200);
    // The model document holds the download counts: a counted GET makes it stale.
    assertEquals((await get("http://x/api/models/zoo/m")).status, 299);
    await store.setYanked("zoo", "m", "1.0.0", true);
    assertEquals((await get("http://x/api/models/zoo/m/1.0.0")).status, 299);
    assertEquals((await get("http://x/api/models/zoo/m")).status, 299);
    assertEquals(passed, [
      "GET /api/models/zoo/m",
      "GET /api/models/zoo/m/1.0.0",
      "GET /api/models/zoo/m",
    ]);
  });
});

Deno.test("a store that fails hands the request to the routes", async () => {
  await withStore(async (store) => {
    const failing = Object.create(store) as Store;
    failing.revision = () => Promise.reject(new Error("disk gone"));
    const docs = new DocumentCache();
    const rev = await store.revision("zoo", "m");
    docs.setModel("zoo/m", rev, "{}");
    const answer = cachedReads({ store: failing, docs, headers: {} });
    const r = await answer(
      new Request("http://x/api/models/zoo/m"),
      () => new Response("routed", { status: 500 }),
    );
    assertEquals([r.status, await r.text()], [500, "routed"]);
  });
});

Deno.test("an anonymous repeat of a document GET answers as the route did", async () => {
  await withStore(async (store) => {
    const app = createRegistryApp({ store });
    for (const path of ["/api/models/zoo/m", "/api/models/zoo/m/1.0.0"]) {
      const first = await app.request(path, { headers: { origin: "https://example.com" } });
      const again = await app.request(path, { headers: { origin: "https://example.com" } });
      assertEquals([first.status, again.status], [200, 200]);
      assertEquals([...again.headers], [...first.headers]);
      const [a, b] = [await first.json(), await again.json()];
      if (path.endsWith("1.0.0")) {
        assertEquals(b.downloads, a.downloads + 1);
        delete a.downloads;
        delete b.downloads;
      }
      assertEquals(b, a);
      assert(a.name === "m");
    }
  });
});
