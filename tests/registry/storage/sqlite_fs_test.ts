import { assert, assertEquals, assertExists } from "@std/assert";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { openSqliteFsStore } from "../../../registry/storage/sqlite_fs.ts";
import { ConflictError, type Store } from "../../../registry/storage/store.ts";
import { storeConformance } from "./conformance.ts";

storeConformance("openSqliteFsStore()", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zoo-store-" });
  return {
    store: await openSqliteFsStore(dir),
    reopen: () => openSqliteFsStore(dir),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

const STORE_MODULE = new URL("../../../registry/storage/sqlite_fs.ts", import.meta.url).href;

/** Runs `fn` on a fresh data directory, removed afterwards. */
async function withDataDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zoo-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `fn` on a store over a fresh data directory; closes the store and removes the directory after. */
async function withStore(
  fn: (store: Store, dir: string) => Promise<void>,
): Promise<void> {
  await withDataDir(async (dir) => {
    const store = await openSqliteFsStore(dir);
    try {
      await fn(store, dir);
    } finally {
      await store.close();
    }
  });
}

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) names.push(e.name);
  return names.sort();
}

/** Runs TypeScript in a separate Deno process; returns its stdout. */
async function runChild(code: string): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

function version(name: string, v: string) {
  return { namespace: "zoo", name, version: v, files: [], card: {}, architecture: {} };
}

Deno.test("openSqliteFsStore() creates the data directory with its database, blob and upload folders", async () => {
  await withDataDir(async (parent) => {
    const dir = join(parent, "nested", "data");
    const store = await openSqliteFsStore(dir);
    await store.close();
    const names = await listDir(dir);
    for (const n of ["blobs", "uploads", "zoo.sqlite"]) assert(names.includes(n), `has ${n}`);
    assertEquals(await listDir(join(dir, "blobs")), ["sha256"]);
  });
});

Deno.test("openSqliteFsStore() keeps its metadata in a WAL-mode SQLite database", async () => {
  await withDataDir(async (dir) => {
    const store = await openSqliteFsStore(dir);
    await store.publish(version("wal", "1.0.0"));
    const db = new DatabaseSync(join(dir, "zoo.sqlite"), { readOnly: true });
    try {
      assertEquals(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
      assertEquals(db.prepare("SELECT full_name FROM models").all().map((r) => r.full_name), [
        "zoo/wal",
      ]);
    } finally {
      db.close();
      await store.close();
    }
  });
});

Deno.test("openSqliteFsStore() stores a blob at blobs/sha256/<first two hex>/<hex>", async () => {
  await withStore(async (store, dir) => {
    const data = new TextEncoder().encode("layout check");
    const w = await store.blobs.writer();
    await w.write(data);
    const { digest } = await w.commit();
    const hex = await sha256Hex(data);
    assertEquals(digest, `sha256:${hex}`);
    assertEquals(await listDir(join(dir, "blobs", "sha256")), [hex.slice(0, 2)]);
    assertEquals(await listDir(join(dir, "blobs", "sha256", hex.slice(0, 2))), [hex]);
    assertEquals(await Deno.readFile(join(dir, "blobs", "sha256", hex.slice(0, 2), hex)), data);
    assertEquals(await listDir(join(dir, "uploads")), []);
  });
});

Deno.test("openSqliteFsStore() removes stale uploads left in uploads/ and nothing else", async () => {
  await withDataDir(async (dir) => {
    await Deno.mkdir(join(dir, "uploads"), { recursive: true });
    await Deno.writeTextFile(join(dir, "uploads", `${crypto.randomUUID()}.tmp`), "half an upload");
    await Deno.writeTextFile(join(dir, "uploads", "README"), "not an upload");
    const store = await openSqliteFsStore(dir);
    await store.close();
    assertEquals(await listDir(join(dir, "uploads")), ["README"]);
  });
});

Deno.test("openSqliteFsStore() leaves another instance's upload in progress alone", async () => {
  await withDataDir(async (dir) => {
    const first = await openSqliteFsStore(dir);
    try {
      const w = await first.blobs.writer();
      await w.write(new Uint8Array(1000).fill(7));
      const second = await openSqliteFsStore(dir);
      await second.close();
      assertEquals((await listDir(join(dir, "uploads"))).length, 1);
      await w.write(new Uint8Array(1000).fill(8));
      const blob = await w.commit();
      assertEquals(blob.size, 2000);
      assertEquals(await listDir(join(dir, "uploads")), []);
    } finally {
      await first.close();
    }
  });
});

Deno.test("an abandoned upload shows no blob, and cancel or close removes its temporary file", async () => {
  await withDataDir(async (dir) => {
    const store = await openSqliteFsStore(dir);
    const data = new Uint8Array(300_000).fill(1);
    const digest = `sha256:${await sha256Hex(data)}`;
    try {
      const cancelled = await store.blobs.writer();
      await cancelled.write(data.subarray(0, 100_000));
      const abandoned = await store.blobs.writer();
      await abandoned.write(data.subarray(0, 100_000));
      assertEquals(await store.blobs.stat(digest), null);
      assertEquals((await listDir(join(dir, "uploads"))).length, 2);
      await cancelled.cancel();
      assertEquals((await listDir(join(dir, "uploads"))).length, 1);
    } finally {
      await store.close();
    }
    assertEquals(await listDir(join(dir, "uploads")), []);
    const reopened = await openSqliteFsStore(dir);
    try {
      assertEquals(await reopened.blobs.stat(digest), null);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("an upload abandoned by a crashed process is removed when the store reopens", async () => {
  await withDataDir(async (dir) => {
    const child = await runChild(`
      import { openSqliteFsStore } from ${JSON.stringify(STORE_MODULE)};
      const store = await openSqliteFsStore(${JSON.stringify(dir)});
      const w = await store.blobs.writer();
      await w.write(new Uint8Array(100_000).fill(3));
      Deno.exit(0); // no commit, no cancel, no close
    `);
    assertEquals(child.code, 0);
    assertEquals((await listDir(join(dir, "uploads"))).length, 1);
    const store = await openSqliteFsStore(dir);
    await store.close();
    assertEquals(await listDir(join(dir, "uploads")), []);
    assertEquals(await listDir(join(dir, "blobs", "sha256")), []);
  });
});

Deno.test("a second store instance on the same directory sees committed blobs and versions", async () => {
  await withDataDir(async (dir) => {
    const a = await openSqliteFsStore(dir);
    const b = await openSqliteFsStore(dir);
    try {
      const data = new TextEncoder().encode("shared");
      const w = await a.blobs.writer();
      await w.write(data);
      const blob = await w.commit();
      await a.publish(version("shared", "1.0.0"));
      await a.countDownload("zoo", "shared", "1.0.0");
      await a.flush(); // counts reach other instances once written
      assertEquals(await b.blobs.stat(blob.digest), blob);
      assertEquals(
        new Uint8Array(await new Response(await b.blobs.read(blob.digest)).arrayBuffer()),
        data,
      );
      const model = await b.getModel("zoo", "shared");
      assertEquals(model?.tags.latest, "1.0.0");
      assertEquals(model?.downloads, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("concurrent publishes of one version from separate processes let exactly one succeed", async () => {
  await withDataDir(async (dir) => {
    await (await openSqliteFsStore(dir)).close();
    const children = Array.from({ length: 4 }, (_, p) =>
      runChild(`
        import { openSqliteFsStore } from ${JSON.stringify(STORE_MODULE)};
        const store = await openSqliteFsStore(${JSON.stringify(dir)});
        const results = await Promise.allSettled(Array.from({ length: 4 }, (_, i) =>
          store.publish({ namespace: "zoo", name: "race", version: "1.0.0", files: [],
            card: { description: "p${p} " + i }, architecture: {} })));
        for (const r of results) {
          console.log(r.status === "fulfilled" ? "ok" : r.reason.name);
        }
        await store.close();
      `));
    const outcomes = (await Promise.all(children)).flatMap((c) => {
      assertEquals(c.code, 0);
      return c.stdout.trim().split("\n");
    });
    assertEquals(outcomes.length, 16);
    assertEquals(outcomes.filter((o) => o === "ok").length, 1);
    assertEquals(outcomes.filter((o) => o === ConflictError.name).length, 15);
    const store = await openSqliteFsStore(dir);
    try {
      assertEquals((await store.getModel("zoo", "race"))?.versions.length, 1);
    } finally {
      await store.close();
    }
  });
});

Deno.test("a cancelled blob read closes its file", async () => {
  await withStore(async (store) => {
    const w = await store.blobs.writer();
    await w.write(new Uint8Array(2_000_000).fill(9));
    const { digest } = await w.commit();
    const stream = await store.blobs.read(digest, { start: 10, end: 1_999_990 });
    assertExists(stream);
    const reader = stream.getReader();
    const first = await reader.read();
    assert(!first.done && first.value.length > 0);
    await reader.cancel();
    // The test's resource sanitizer fails the test if the file stayed open.
  });
});

Deno.test("a large upload and read keep memory bounded", async () => {
  await withStore(async (store) => {
    const chunk = new Uint8Array(1 << 20).fill(42);
    const total = 192;
    const before = Deno.memoryUsage().rss;
    const w = await store.blobs.writer();
    for (let i = 0; i < total; i++) await w.write(chunk);
    const { digest, size } = await w.commit();
    assertEquals(size, total << 20);
    let read = 0;
    for await (const part of (await store.blobs.read(digest))!) read += part.length;
    assertEquals(read, size);
    const grown = Deno.memoryUsage().rss - before;
    assert(grown < 96 << 20, `rss grew by ${grown >> 20} MiB for a ${total} MiB blob`);
  });
});

Deno.test("openSqliteFsStore() keeps every download counted before close(), with no flush", async () => {
  await withDataDir(async (dir) => {
    const store = await openSqliteFsStore(dir);
    await store.publish(version("kept", "1.0.0"));
    await store.publish(version("kept", "1.1.0"));
    for (let i = 0; i < 150; i++) await store.countDownload("zoo", "kept", "1.0.0");
    for (let i = 0; i < 100; i++) await store.countDownload("zoo", "kept", "1.1.0");
    await store.close();
    const reopened = await openSqliteFsStore(dir);
    try {
      const model = await reopened.getModel("zoo", "kept");
      assertEquals(model?.versions.map((v) => v.downloads), [150, 100]);
      assertEquals(model?.downloads, 250);
    } finally {
      await reopened.close();
    }
    const db = new DatabaseSync(join(dir, "zoo.sqlite"), { readOnly: true });
    try {
      assertEquals(db.prepare("SELECT downloads FROM models").get()?.downloads, 250);
    } finally {
      db.close();
    }
  });
});

Deno.test("downloads counted in several processes at the same time are all kept", async () => {
  await withDataDir(async (dir) => {
    const store = await openSqliteFsStore(dir);
    await store.publish(version("busy", "1.0.0"));
    await store.close();
    // Writes every millisecond, so that the processes' writes contend for the lock.
    const children = Array.from({ length: 3 }, () =>
      runChild(`
        import { openSqliteFsStore } from ${JSON.stringify(STORE_MODULE)};
        const store = await openSqliteFsStore(${JSON.stringify(dir)}, { downloadFlushMs: 1 });
        for (let i = 0; i < 300; i++) {
          await store.countDownload("zoo", "busy", "1.0.0");
          if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
        }
        await store.close();
      `));
    for (const c of await Promise.all(children)) assertEquals(c.code, 0);
    const reopened = await openSqliteFsStore(dir);
    try {
      assertEquals((await reopened.getVersion("zoo", "busy", "1.0.0"))?.downloads, 900);
      assertEquals((await reopened.getModel("zoo", "busy"))?.downloads, 900);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("writing download counts never waits for another writer: counts and reads answer while the database is locked", async () => {
  await withDataDir(async (dir) => {
    const store = await openSqliteFsStore(dir, { downloadFlushMs: 5 });
    const db = new DatabaseSync(join(dir, "zoo.sqlite"));
    const stored = () => db.prepare("SELECT downloads FROM versions").get()?.downloads;
    try {
      await store.publish(version("locked", "1.0.0"));
      db.exec("BEGIN IMMEDIATE"); // another writer holds the lock from now on
      const t0 = performance.now();
      for (let i = 1; i <= 20; i++) {
        assertEquals(await store.countDownload("zoo", "locked", "1.0.0"), i);
        await new Promise((r) => setTimeout(r, 5)); // the store tries to write meanwhile
      }
      assertEquals((await store.getVersion("zoo", "locked", "1.0.0"))?.downloads, 20);
      assertEquals((await store.getModel("zoo", "locked"))?.downloads, 20);
      assertEquals((await store.listModels({ sort: "downloads" })).items[0]?.downloads, 20);
      const ms = performance.now() - t0;
      // Waiting for the lock would have stalled for the 10 s busy timeout.
      assert(ms < 3000, `20 counts and 3 reads took ${ms.toFixed(0)} ms`);
      assertEquals(stored(), 0, "nothing could be written yet");
      db.exec("ROLLBACK");
      for (let i = 0; i < 200 && stored() !== 20; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assertEquals(stored(), 20, "the counts are written once the lock is free");
    } finally {
      if (db.isTransaction) db.exec("ROLLBACK");
      db.close();
      await store.close();
    }
  });
});
