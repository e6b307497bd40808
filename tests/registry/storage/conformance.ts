/**
 * The conformance suite every storage backend passes: blobs (round trip,
 * ranges, digest checks, cancel, re-commit), publishing (atomic, immutable,
 * concurrent), `latest` by semver precedence, yanks, tags, downloads, revisions, search
 * and cursor pagination, tokens, and durability across a reopen.
 *
 * A backend's test file calls {@linkcode storeConformance} once:
 *
 * ```ts ignore
 * storeConformance("openSqliteFsStore()", async () => {
 *   const dir = await Deno.makeTempDir();
 *   return {
 *     store: await openSqliteFsStore(dir),
 *     reopen: () => openSqliteFsStore(dir),
 *     cleanup: () => Deno.remove(dir, { recursive: true }),
 *   };
 * });
 * ```
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertExists,
  assertInstanceOf,
  assertMatch,
  assertNotEquals,
  assertRejects,
} from "@std/assert";
import {
  type BlobInfo,
  ConflictError,
  DigestMismatchError,
  type ModelRecord,
  type NewVersion,
  NotFoundError,
  type Store,
} from "../../../registry/storage/store.ts";

/** A fresh, empty backend for one test. */
export interface ConformanceFixture {
  /** The store under test; the suite closes it. */
  store: Store;
  /**
   * Opens another instance over the same data. The suite calls it both while
   * `store` is open (several instances at once) and after closing it
   * (durability), and closes every instance it gets.
   */
  reopen?: () => Promise<Store>;
  /** Removes what the fixture created; called after every store is closed. */
  cleanup: () => Promise<void>;
}

/** The store instances a test opened, each closed exactly once. */
interface Instances {
  /** Closes `s` when the test ends. */
  track(s: Store): Store;
  /** Closes `s` now. */
  close(s: Store): Promise<void>;
}

/**
 * Registers the shared storage tests with `Deno.test`, each on a fresh
 * fixture.
 *
 * @param name how the backend reads in a test name, e.g. `openSqliteFsStore()`
 * @param open makes a fresh, empty fixture
 * @param ignore skips every test (a backend whose server is not configured)
 */
export function storeConformance(
  name: string,
  open: () => Promise<ConformanceFixture>,
  ignore = false,
): void {
  const test = (
    sentence: string,
    fn: (f: ConformanceFixture, instances: Instances) => Promise<void>,
  ) =>
    Deno.test({ name: `${name} ${sentence}`, ignore }, async () => {
      const f = await open();
      const open_ = new Set<Store>([f.store]);
      const instances: Instances = {
        track(s) {
          open_.add(s);
          return s;
        },
        async close(s) {
          if (open_.delete(s)) await s.close();
        },
      };
      try {
        await fn(f, instances);
      } finally {
        for (const s of open_) await s.close();
        await f.cleanup();
      }
    });

  // Blobs

  test("reads back a committed blob byte for byte under its SHA-256 digest", async ({ store }) => {
    const data = bytes(700_001, 1);
    const blob = await putBlob(store, data, 65_537);
    assertEquals(blob, { digest: await sha256(data), size: data.length });
    assertEquals(await store.blobs.stat(blob.digest), blob);
    assertEquals(await readAll(await store.blobs.read(blob.digest)), data);
  });

  test("stores and reads an empty blob", async ({ store }) => {
    const blob = await putBlob(store, new Uint8Array(0));
    assertEquals(blob, { digest: await sha256(new Uint8Array(0)), size: 0 });
    assertEquals(await readAll(await store.blobs.read(blob.digest)), new Uint8Array(0));
  });

  test("returns exactly the requested byte range of a blob", async ({ store }) => {
    const data = bytes(600_000, 2);
    const { digest } = await putBlob(store, data);
    for (
      const [start, end] of [[0, 0], [5, 9], [0, 599_999], [599_999, 599_999], [
        262_000,
        530_000,
      ], [1, 599_998]] as const
    ) {
      assertEquals(
        await readAll(await store.blobs.read(digest, { start, end })),
        data.slice(start, end + 1),
        `range ${start}-${end}`,
      );
    }
    for (const [start, end] of [[10, 9], [0, 600_000], [-1, 3]] as const) {
      await assertRejects(() => store.blobs.read(digest, { start, end }), RangeError);
    }
  });

  test("answers null for a blob it does not hold", async ({ store }) => {
    const absent = `sha256:${"0".repeat(64)}`;
    assertEquals(await store.blobs.stat(absent), null);
    assertEquals(await store.blobs.read(absent), null);
  });

  test("refuses a malformed digest", async ({ store }) => {
    for (const bad of ["sha256:../../zoo.sqlite", "md5:abc", `sha256:${"A".repeat(64)}`]) {
      await assertRejects(() => store.blobs.stat(bad), RangeError);
      await assertRejects(() => store.blobs.read(bad), RangeError);
    }
  });

  test("stores nothing when the uploaded bytes do not match the expected digest", async ({ store }) => {
    const data = bytes(10_000, 3);
    const claimed = await sha256(bytes(10_000, 4));
    const w = await store.blobs.writer();
    await w.write(data);
    const e = await assertRejects(() => w.commit(claimed), DigestMismatchError);
    assertEquals(e.expected, claimed);
    assertEquals(e.actual, await sha256(data));
    assertEquals(await store.blobs.stat(claimed), null);
    assertEquals(await store.blobs.stat(await sha256(data)), null);
  });

  test("commits when the uploaded bytes match the expected digest", async ({ store }) => {
    const data = bytes(10_000, 5);
    const w = await store.blobs.writer();
    await w.write(data);
    assertEquals(w.size, data.length);
    const blob = await w.commit(await sha256(data));
    assertEquals(await store.blobs.stat(blob.digest), blob);
  });

  test("leaves nothing behind when an upload is cancelled", async ({ store }) => {
    const data = bytes(50_000, 6);
    const w = await store.blobs.writer();
    await w.write(data);
    await w.cancel();
    await w.cancel();
    assertEquals(await store.blobs.stat(await sha256(data)), null);
    await assertRejects(() => w.write(data), TypeError);
    await assertRejects(() => w.commit(), TypeError);
  });

  test("accepts a commit of content it already holds", async ({ store }) => {
    const data = bytes(80_000, 7);
    const first = await putBlob(store, data);
    const again = await putBlob(store, data, 999);
    assertEquals(again, first);
    const racing = await Promise.all(
      Array.from({ length: 4 }, () => putBlob(store, data, 4096)),
    );
    for (const b of racing) assertEquals(b, first);
    assertEquals(await readAll(await store.blobs.read(first.digest)), data);
  });

  // Publishing

  test("publishes a version that getVersion and getModel return", async ({ store }) => {
    const v = newVersion("zoo", "lenet5", "1.0.0", {
      description: "LeNet-5 on MNIST",
      task: "image-classification",
      labels: ["0", "1"],
      license: "MIT",
    });
    v.publishedBy = "ci";
    const published = await store.publish(v);
    assertEquals(published.version, "1.0.0");
    assertEquals(published.yanked, false);
    assertEquals(published.downloads, 0);
    assertMatch(published.createdAt, /^\d{4}-\d{2}-\d{2}T/);

    const got = await store.getVersion("zoo", "lenet5", "1.0.0");
    assertEquals(got, published);
    assertEquals(got?.files, v.files);
    assertEquals(got?.card, v.card);
    assertEquals(got?.architecture, v.architecture);
    assertEquals(got?.publishedBy, "ci");

    const model = await store.getModel("zoo", "lenet5");
    assertExists(model);
    assertEquals(model.namespace, "zoo");
    assertEquals(model.name, "lenet5");
    assertEquals(model.description, "LeNet-5 on MNIST");
    assertEquals(model.task, "image-classification");
    assertEquals(model.labels, ["0", "1"]);
    assertEquals(model.downloads, 0);
    assertEquals(model.tags, { latest: "1.0.0" });
    assertEquals(model.versions, [
      { version: "1.0.0", createdAt: published.createdAt, yanked: false, downloads: 0 },
    ]);
    assertEquals(model.updatedAt, published.createdAt);

    assertEquals(await store.getModel("zoo", "absent"), null);
    assertEquals(await store.getVersion("zoo", "lenet5", "9.9.9"), null);
    assertEquals(await store.getVersion("zoo", "absent", "1.0.0"), null);
  });

  test("lists a model's versions oldest first", async ({ store }) => {
    for (const version of ["1.0.0", "0.1.0", "2.0.0-rc.1", "1.1.0"]) {
      await store.publish(newVersion("zoo", "order", version));
    }
    const model = await store.getModel("zoo", "order");
    assertEquals(model?.versions.map((v) => v.version), ["1.0.0", "0.1.0", "2.0.0-rc.1", "1.1.0"]);
  });

  test("refuses to publish a version twice, even a yanked one", async ({ store }) => {
    await store.publish(newVersion("zoo", "dup", "1.0.0", { description: "first" }));
    const e = await assertRejects(
      () => store.publish(newVersion("zoo", "dup", "1.0.0", { description: "second" })),
      ConflictError,
    );
    assertEquals(e.key, "zoo/dup@1.0.0");
    await store.setYanked("zoo", "dup", "1.0.0", true);
    await assertRejects(() => store.publish(newVersion("zoo", "dup", "1.0.0")), ConflictError);
    const got = await store.getVersion("zoo", "dup", "1.0.0");
    assertEquals(got?.card.description, "first");
    assertEquals((await store.getModel("zoo", "dup"))?.versions.length, 1);
  });

  test("lets exactly one of 16 concurrent publishes of a version succeed", async ({ store }) => {
    const results = await Promise.allSettled(
      Array.from(
        { length: 16 },
        (_, i) => store.publish(newVersion("zoo", "race", "1.0.0", { description: `${i}` })),
      ),
    );
    assertOneWinner(results);
    assertEquals((await store.getModel("zoo", "race"))?.versions.length, 1);
  });

  test(
    "lets exactly one of 16 concurrent publishes through several instances succeed",
    async ({ store, reopen }, { track }) => {
      if (!reopen) return;
      const stores = [store];
      for (let i = 0; i < 3; i++) stores.push(track(await reopen()));
      const results = await Promise.allSettled(
        Array.from(
          { length: 16 },
          (_, i) => stores[i % stores.length]!.publish(newVersion("zoo", "race", "1.0.0")),
        ),
      );
      assertOneWinner(results);
      for (const s of stores) {
        assertEquals((await s.getModel("zoo", "race"))?.versions.length, 1);
      }
    },
  );

  // latest, yanks, tags

  test("moves latest to the highest release by semver precedence", async ({ store }) => {
    const latest = async () => (await store.getModel("zoo", "semver"))?.tags.latest;
    const steps = [
      { publish: "1.0.0", latest: "1.0.0" },
      { publish: "1.2.0", latest: "1.2.0" },
      { publish: "1.1.0", latest: "1.2.0" },
      { publish: "1.10.0", latest: "1.10.0" },
      { publish: "1.9.0", latest: "1.10.0" },
      { publish: "2.0.0-rc.1", latest: "1.10.0" },
    ];
    for (const step of steps) {
      await store.publish(newVersion("zoo", "semver", step.publish));
      assertEquals(await latest(), step.latest, `after publishing ${step.publish}`);
    }
  });

  test("gives latest to a prerelease only while it is the only version", async ({ store }) => {
    const latest = async () => (await store.getModel("zoo", "pre"))?.tags.latest;
    await store.publish(newVersion("zoo", "pre", "1.0.0-rc.1", { description: "rc" }));
    assertEquals(await latest(), "1.0.0-rc.1");
    assertEquals((await store.getModel("zoo", "pre"))?.description, "rc");
    await store.publish(newVersion("zoo", "pre", "0.9.0", { description: "release" }));
    assertEquals(await latest(), "0.9.0");
    assertEquals((await store.getModel("zoo", "pre"))?.description, "release");
    await store.publish(newVersion("zoo", "pre", "1.0.0-rc.2"));
    assertEquals(await latest(), "0.9.0");
  });

  test("records a yank, keeps the version readable and moves latest off it", async ({ store }) => {
    for (const version of ["1.0.0", "1.1.0", "1.2.0"]) {
      await store.publish(newVersion("zoo", "yank", version, { description: version }));
    }
    await store.setYanked("zoo", "yank", "1.2.0", true);
    assertEquals((await store.getVersion("zoo", "yank", "1.2.0"))?.yanked, true);
    let model = await store.getModel("zoo", "yank");
    assertEquals(model?.versions.map((v) => v.yanked), [false, false, true]);
    assertEquals(model?.tags.latest, "1.1.0");
    assertEquals(model?.description, "1.1.0");

    await store.setYanked("zoo", "yank", "1.0.0", true);
    assertEquals((await store.getModel("zoo", "yank"))?.tags.latest, "1.1.0");

    await store.setYanked("zoo", "yank", "1.2.0", false);
    model = await store.getModel("zoo", "yank");
    assertEquals((await store.getVersion("zoo", "yank", "1.2.0"))?.yanked, false);
    assertEquals(model?.tags.latest, "1.2.0");

    await assertRejects(() => store.setYanked("zoo", "yank", "9.0.0", true), NotFoundError);
    await assertRejects(() => store.setYanked("zoo", "absent", "1.0.0", true), NotFoundError);
  });

  test("does not give latest to a new version below a yanked release it skips", async ({ store }) => {
    await store.publish(newVersion("zoo", "skip", "1.0.0"));
    await store.publish(newVersion("zoo", "skip", "2.0.0"));
    await store.setYanked("zoo", "skip", "2.0.0", true);
    await store.publish(newVersion("zoo", "skip", "1.5.0"));
    assertEquals((await store.getModel("zoo", "skip"))?.tags.latest, "1.5.0");
  });

  test("points tags at versions and moves them", async ({ store }) => {
    await store.publish(newVersion("zoo", "tags", "1.0.0"));
    await store.publish(newVersion("zoo", "tags", "1.1.0"));
    const before = (await store.getModel("zoo", "tags"))!.updatedAt;
    await sleep(3);
    await store.setTag("zoo", "tags", "stable", "1.0.0");
    let model = await store.getModel("zoo", "tags");
    assertEquals(model?.tags, { latest: "1.1.0", stable: "1.0.0" });
    assert(model!.updatedAt > before, "a tag move updates updatedAt");
    await store.setTag("zoo", "tags", "stable", "1.1.0");
    await store.setTag("zoo", "tags", "latest", "1.0.0");
    model = await store.getModel("zoo", "tags");
    assertEquals(model?.tags, { latest: "1.0.0", stable: "1.1.0" });
    const e = await assertRejects(
      () => store.setTag("zoo", "tags", "stable", "2.0.0"),
      NotFoundError,
    );
    assertEquals(e.key, "zoo/tags@2.0.0");
    await assertRejects(() => store.setTag("zoo", "absent", "stable", "1.0.0"), NotFoundError);
  });

  test("counts downloads per version and sums them per model", async ({ store }) => {
    await store.publish(newVersion("zoo", "dl", "1.0.0"));
    await store.publish(newVersion("zoo", "dl", "1.1.0"));
    await Promise.all([
      ...Array.from({ length: 3 }, () => store.countDownload("zoo", "dl", "1.0.0")),
      ...Array.from({ length: 2 }, () => store.countDownload("zoo", "dl", "1.1.0")),
    ]);
    assertEquals((await store.getVersion("zoo", "dl", "1.0.0"))?.downloads, 3);
    const model = await store.getModel("zoo", "dl");
    assertEquals(model?.downloads, 5);
    assertEquals(model?.versions.map((v) => v.downloads), [3, 2]);
    await assertRejects(() => store.countDownload("zoo", "dl", "9.0.0"), NotFoundError);
  });

  test("answers each download with the version's count, that one included, and reads show it at once", async ({ store }) => {
    await store.publish(newVersion("zoo", "now", "1.0.0"));
    assertEquals(await store.countDownload("zoo", "now", "1.0.0"), 1);
    assertEquals(await store.countDownload("zoo", "now", "1.0.0"), 2);
    assertEquals((await store.getVersion("zoo", "now", "1.0.0"))?.downloads, 2);
    assertEquals((await store.getModel("zoo", "now"))?.downloads, 2);
    await store.flush();
    assertEquals(await store.countDownload("zoo", "now", "1.0.0"), 3);
    const model = await store.getModel("zoo", "now");
    assertEquals([model?.downloads, model?.versions[0]?.downloads], [3, 3]);
    assertEquals((await store.listModels({ sort: "downloads" })).items[0]?.downloads, 3);
  });

  test("adds up the downloads two instances count at the same time", async (f, { track }) => {
    if (!f.reopen) return;
    await f.store.publish(newVersion("zoo", "both", "1.0.0"));
    const other = track(await f.reopen());
    await Promise.all(
      Array.from(
        { length: 400 },
        (_, i) => (i % 2 === 0 ? f.store : other).countDownload("zoo", "both", "1.0.0"),
      ),
    );
    await Promise.all([f.store.flush(), other.flush()]);
    for (const s of [f.store, other]) {
      assertEquals((await s.getVersion("zoo", "both", "1.0.0"))?.downloads, 400);
      assertEquals((await s.getModel("zoo", "both"))?.downloads, 400);
    }
  });

  test("changes its revision on every publish, tag move and yank, and only its downloads part on a download", async ({ store }) => {
    const at = () => store.revision("zoo", "rev");
    const before = await at();
    assertEquals(await at(), before, "nothing written, nothing changed");
    const seen = [before.metadata];
    const changes = async (what: string) => {
      const r = await at();
      assert(!seen.includes(r.metadata), `${what} changes the metadata revision`);
      seen.push(r.metadata);
      return r;
    };
    await store.publish(newVersion("zoo", "rev", "1.0.0"));
    await changes("a publish");
    await store.setTag("zoo", "rev", "stable", "1.0.0");
    await changes("a tag move");
    await store.setYanked("zoo", "rev", "1.0.0", true);
    await changes("a yank");
    await store.setYanked("zoo", "rev", "1.0.0", false);
    const r = await changes("an unyank");
    await store.countDownload("zoo", "rev", "1.0.0");
    const counted = await at();
    assertEquals(counted.metadata, r.metadata, "a download leaves the metadata revision alone");
    assertNotEquals(counted.downloads, r.downloads);
    await store.flush();
    assertEquals(await at(), counted, "writing counts changes nothing a reader sees");
  });

  test(
    "changes its revision when another instance publishes, moves a tag or yanks",
    async (f, { track }) => {
      if (!f.reopen) return;
      const other = track(await f.reopen());
      const seen: number[] = [];
      const changes = async (what: string) => {
        const r = await other.revision("zoo", "elsewhere");
        assert(!seen.includes(r.metadata), `${what} in another instance changes the revision`);
        seen.push(r.metadata);
      };
      await changes("nothing yet");
      await f.store.publish(newVersion("zoo", "elsewhere", "1.0.0"));
      await changes("a publish");
      await f.store.setTag("zoo", "elsewhere", "stable", "1.0.0");
      await changes("a tag move");
      await f.store.setYanked("zoo", "elsewhere", "1.0.0", true);
      await changes("a yank");
      assertEquals((await other.getVersion("zoo", "elsewhere", "1.0.0"))?.yanked, true);
    },
  );

  // Listing

  test("searches namespace/name, description, task and labels case-insensitively", async ({ store }) => {
    await store.publish(newVersion("zoo", "lenet5", "1.0.0", {
      description: "Handwritten DIGITS",
      task: "image-classification",
      labels: ["zero", "one"],
    }));
    await store.publish(newVersion("acme", "segnet", "1.0.0", {
      description: "Road scenes",
      task: "semantic-segmentation",
      labels: ["Road", "Sky"],
    }));
    const names = async (search: string) =>
      (await store.listModels({ search })).items.map(fullName).sort();
    assertEquals(await names("ZOO/LEN"), ["zoo/lenet5"]);
    assertEquals(await names("digits"), ["zoo/lenet5"]);
    assertEquals(await names("SEGMENTATION"), ["acme/segnet"]);
    assertEquals(await names("sky"), ["acme/segnet"]);
    assertEquals(await names("e"), ["acme/segnet", "zoo/lenet5"]);
    assertEquals(await names("%"), []);
    assertEquals(await names("nothing matches this"), []);
  });

  test("takes a model's description, task and labels from its latest version", async ({ store }) => {
    await store.publish(newVersion("zoo", "card", "1.0.0", { description: "old", task: "a" }));
    await store.publish(newVersion("zoo", "card", "2.0.0", { description: "new", task: "b" }));
    await store.publish(newVersion("zoo", "card", "1.5.0", { description: "mid", task: "c" }));
    assertEquals((await store.listModels({ search: "old" })).items, []);
    assertEquals((await store.listModels({ search: "new" })).items.map(fullName), ["zoo/card"]);
    assertEquals((await store.listModels({ task: "b" })).items.map(fullName), ["zoo/card"]);
    assertEquals((await store.listModels({ task: "c" })).items, []);
  });

  test("filters models by exact task", async ({ store }) => {
    await store.publish(newVersion("zoo", "a", "1.0.0", { task: "image-classification" }));
    await store.publish(newVersion("zoo", "b", "1.0.0", { task: "object-detection" }));
    await store.publish(newVersion("zoo", "c", "1.0.0", { task: "image-classification" }));
    const r = await store.listModels({ task: "image-classification" });
    assertEquals(r.items.map(fullName).sort(), ["zoo/a", "zoo/c"]);
    assertEquals((await store.listModels({ task: "image" })).items, []);
    assertEquals(
      (await store.listModels({ task: "object-detection", search: "zoo/b" })).items.map(fullName),
      ["zoo/b"],
    );
  });

  test("sorts models by downloads or by update time, ties broken by name", async ({ store }) => {
    for (const n of ["b", "a", "c", "d"]) {
      await store.publish(newVersion("zoo", n, "1.0.0"));
      await sleep(3);
    }
    for (const [n, count] of [["c", 2], ["a", 1], ["b", 1]] as const) {
      for (let i = 0; i < count; i++) await store.countDownload("zoo", n, "1.0.0");
    }
    const byDownloads = await store.listModels({ sort: "downloads" });
    assertEquals(byDownloads.items.map(fullName), ["zoo/c", "zoo/a", "zoo/b", "zoo/d"]);
    assertEquals(byDownloads.nextCursor, null);

    await store.setTag("zoo", "b", "stable", "1.0.0");
    const byUpdate = await store.listModels({ sort: "updated" });
    assertEquals(byUpdate.items.map(fullName), ["zoo/b", "zoo/d", "zoo/c", "zoo/a"]);
    assertEquals((await store.listModels({})).items.map(fullName), byUpdate.items.map(fullName));
  });

  test("pages through every model with a cursor, with no duplicates or gaps", async ({ store }) => {
    const names = Array.from({ length: 23 }, (_, i) => `m${String(i).padStart(2, "0")}`);
    // Publish in bursts so that many models share an update time and the tie-break matters.
    await Promise.all(names.map((n) => store.publish(newVersion("zoo", n, "1.0.0"))));
    for (const [i, n] of names.entries()) {
      for (let d = 0; d < i % 4; d++) await store.countDownload("zoo", n, "1.0.0");
    }
    for (const sort of ["downloads", "updated"] as const) {
      const all = await store.listModels({ sort, limit: 100 });
      assertEquals(all.items.length, 23);
      assertEquals(all.nextCursor, null);
      assertSorted(all.items, sort);
      for (const limit of [1, 5, 7, 23]) {
        const seen = await collectPages(store, { sort, limit });
        assertEquals(seen, all.items.map(fullName), `sort ${sort}, limit ${limit}`);
      }
    }
    const filtered = await collectPages(store, { search: "m1", limit: 3 });
    assertEquals(filtered.sort(), names.filter((n) => n.startsWith("m1")).map((n) => `zoo/${n}`));
  });

  test("returns 20 models by default and refuses a limit outside 1-100", async ({ store }) => {
    await Promise.all(
      Array.from({ length: 21 }, (_, i) => store.publish(newVersion("zoo", `n${i}`, "1.0.0"))),
    );
    const page = await store.listModels({});
    assertEquals(page.items.length, 20);
    assertNotEquals(page.nextCursor, null);
    for (const limit of [0, 101, 2.5, -1]) {
      await assertRejects(() => store.listModels({ limit }), RangeError);
    }
  });

  test("refuses an invalid cursor with a RangeError", async ({ store }) => {
    await Promise.all(
      ["a", "b", "c"].map((n) => store.publish(newVersion("zoo", n, "1.0.0"))),
    );
    for (const cursor of ["not a cursor!", "e30", "", btoa("[1,2]")]) {
      await assertRejects(() => store.listModels({ cursor }), RangeError, "cursor");
    }
    const { nextCursor } = await store.listModels({ sort: "downloads", limit: 1 });
    assertExists(nextCursor);
    await assertRejects(
      () => store.listModels({ sort: "updated", cursor: nextCursor }),
      RangeError,
      "cursor",
    );
  });

  // Tokens

  test("keeps the publication time, downloads and change times a copy between stores gives", async ({ store }) => {
    const at = "2025-01-02T03:04:05.678Z";
    const record = await store.publish({
      ...newVersion("zoo", "copied", "1.0.0"),
      createdAt: at,
      downloads: 41,
    });
    assertEquals([record.createdAt, record.downloads], [at, 41]);
    await store.publish({ ...newVersion("zoo", "copied", "1.1.0"), createdAt: at, downloads: 1 });
    await store.setYanked("zoo", "copied", "1.1.0", true, "2025-02-01T00:00:00.000Z");
    await store.setTag("zoo", "copied", "stable", "1.0.0", "2025-03-01T00:00:00.000Z");
    const model = await store.getModel("zoo", "copied");
    assertEquals(model?.downloads, 42);
    assertEquals(model?.updatedAt, "2025-03-01T00:00:00.000Z");
    assertEquals(model?.versions.map((v) => [v.version, v.createdAt, v.downloads, v.yanked]), [
      ["1.0.0", at, 41, false],
      ["1.1.0", at, 1, true],
    ]);
    assertEquals(await store.countDownload("zoo", "copied", "1.0.0"), 42);
    const byDownloads = await store.listModels({ sort: "downloads" });
    assertEquals(byDownloads.items[0]?.downloads, 43);
  });

  test("finds a stored token by the hash of its secret", async ({ store }) => {
    const token = {
      id: "tok_1",
      hash: "a".repeat(64),
      scopes: ["read", "publish:zoo"],
      label: "ci",
      createdAt: new Date().toISOString(),
    };
    await store.addToken(token);
    assertEquals(await store.findToken(token.hash), token);
    assertEquals(await store.findToken("b".repeat(64)), null);
    await assertRejects(
      () => store.addToken({ ...token, hash: "c".repeat(64) }),
      ConflictError,
    );
    await assertRejects(() => store.addToken({ ...token, id: "tok_2" }), ConflictError);
  });

  // Durability

  test(
    "keeps blobs, versions, tags, downloads and tokens across a reopen",
    async (f, { track, close }) => {
      if (!f.reopen) return;
      const data = bytes(30_000, 8);
      const blob = await putBlob(f.store, data);
      const v = newVersion("zoo", "durable", "1.0.0", { description: "kept" });
      v.files = [{ path: "model.json", ...blob }];
      await f.store.publish(v);
      await f.store.setTag("zoo", "durable", "stable", "1.0.0");
      await f.store.countDownload("zoo", "durable", "1.0.0");
      const token = {
        id: "t",
        hash: "d".repeat(64),
        scopes: ["admin"],
        label: "ops",
        createdAt: new Date().toISOString(),
      };
      await f.store.addToken(token);
      const model = await f.store.getModel("zoo", "durable");
      const version = await f.store.getVersion("zoo", "durable", "1.0.0");
      await close(f.store);

      const store = track(await f.reopen());
      assertEquals(await store.getModel("zoo", "durable"), model);
      assertEquals(await store.getVersion("zoo", "durable", "1.0.0"), version);
      assertEquals(await store.findToken(token.hash), token);
      assertEquals(await readAll(await store.blobs.read(blob.digest)), data);
      assertEquals((await store.listModels({ search: "kept" })).items, [model!]);
    },
  );
}

/** A version of `ns/name` with one file and the given card. */
function newVersion(
  namespace: string,
  name: string,
  version: string,
  card: Record<string, unknown> = {},
): NewVersion {
  return {
    namespace,
    name,
    version,
    files: [
      { path: "model.json", digest: `sha256:${"1".repeat(64)}`, size: 1234 },
      { path: "group1-shard1of1.bin", digest: `sha256:${"2".repeat(64)}`, size: 5678 },
    ],
    card,
    architecture: { inputShape: [null, 28, 28, 1], totalStride: 4 },
  };
}

function fullName(m: ModelRecord): string {
  return `${m.namespace}/${m.name}`;
}

async function collectPages(
  store: Store,
  q: { sort?: "downloads" | "updated"; limit: number; search?: string },
): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const page: { items: ModelRecord[]; nextCursor: string | null } = await store.listModels(
      cursor === null ? q : { ...q, cursor },
    );
    assert(page.items.length <= q.limit, "a page holds at most `limit` items");
    seen.push(...page.items.map(fullName));
    cursor = page.nextCursor;
    if (cursor === null) break;
    assert(page.items.length === q.limit, "only the last page may be short");
  }
  assertEquals(new Set(seen).size, seen.length, "no model appears twice");
  return seen;
}

function assertSorted(items: ModelRecord[], sort: "downloads" | "updated"): void {
  for (let i = 1; i < items.length; i++) {
    const a = items[i - 1]!;
    const b = items[i]!;
    const ka = sort === "downloads" ? a.downloads : a.updatedAt;
    const kb = sort === "downloads" ? b.downloads : b.updatedAt;
    assert(
      ka > kb || (ka === kb && fullName(a) < fullName(b)),
      `"${fullName(a)}" sorts before "${fullName(b)}" by ${sort}, then by name`,
    );
  }
}

function assertOneWinner(results: PromiseSettledResult<unknown>[]): void {
  const won = results.filter((r) => r.status === "fulfilled");
  assertEquals(won.length, 1, "exactly one publish succeeds");
  for (const r of results) {
    if (r.status === "rejected") assertInstanceOf(r.reason, ConflictError);
  }
}

/** Deterministic pseudo-random bytes. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function sha256(data: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function putBlob(store: Store, data: Uint8Array, chunk = 65_536): Promise<BlobInfo> {
  const w = await store.blobs.writer();
  for (let i = 0; i < data.length; i += chunk) await w.write(data.subarray(i, i + chunk));
  return await w.commit();
}

async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  assertExists(stream, "the blob exists");
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
