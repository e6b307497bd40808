/**
 * `deno task registry:migrate` as a user runs it: an embedded registry copied
 * into PostgreSQL and S3, twice, and a corrupt source blob refused.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { createToken } from "../../registry/auth.ts";
import { openStore, type StoreConfig } from "../../registry/storage/open.ts";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import { blobPath, storageLayout } from "../../registry/storage/paths.ts";
import type { Store } from "../../registry/storage/store.ts";
import { freshBlobsUrl, freshDatabase, skipWithout } from "./storage/_servers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ignore = skipWithout({ pg: true, s3: true });

async function put(store: Store, text: string): Promise<{ digest: string; size: number }> {
  const w = await store.blobs.writer();
  await w.write(new TextEncoder().encode(text));
  return await w.commit();
}

async function migrate(from: string, to: StoreConfig) {
  const out = await new Deno.Command("deno", {
    args: [
      "task",
      "-q",
      "registry:migrate",
      "--from",
      from,
      "--to-database-url",
      to.databaseUrl!,
      "--to-blobs",
      to.blobsUrl!,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Registers a test run with an embedded registry to copy and a fresh database and prefix to copy it to. */
function migrationTest(
  name: string,
  fn: (from: string, to: StoreConfig, src: Store) => Promise<void>,
): void {
  Deno.test({ name, ignore }, async () => {
    const from = await Deno.makeTempDir({ prefix: "zoo-migrate-" });
    const db = await freshDatabase();
    const to: StoreConfig = { data: from, databaseUrl: db.url, blobsUrl: freshBlobsUrl() };
    try {
      await fn(from, to, await openSqliteFsStore(from));
    } finally {
      await db.drop();
      await Deno.remove(from, { recursive: true });
    }
  });
}

migrationTest(
  "registry:migrate copies an embedded registry into PostgreSQL and S3, and a second run changes nothing",
  async (from, to, src) => {
    const a = await put(src, '{"a":1}');
    const b = await put(src, "weights");
    const v = (
      name: string,
      version: string,
      files: { path: string; digest: string; size: number }[],
    ) => ({
      namespace: "zoo",
      name,
      version,
      files,
      card: { task: "image-classification", description: `${name} ${version}` },
      architecture: { totalStride: 2 },
      publishedBy: "alice",
    });
    await src.publish(v("one", "1.0.0", [{ path: "model.json", ...a }, { path: "w.bin", ...b }]));
    await src.publish(v("one", "1.1.0", [{ path: "model.json", ...a }]));
    await src.publish(v("two", "0.1.0-rc.1", [{ path: "model.json", ...a }]));
    await src.setYanked("zoo", "one", "1.1.0", true);
    await src.setTag("zoo", "one", "stable", "1.0.0");
    for (let i = 0; i < 3; i++) await src.countDownload("zoo", "one", "1.0.0");
    const { token } = await createToken(src, ["publish:zoo"], "ci");
    const before = {
      one: await src.getModel("zoo", "one"),
      two: await src.getModel("zoo", "two"),
      v: await src.getVersion("zoo", "one", "1.0.0"),
    };
    await src.close();

    const first = await migrate(from, to);
    assertEquals(first.code, 0, first.stderr);
    assertStringIncludes(first.stdout, "Copied 3 versions, 2 blobs (14 bytes) and 1 tokens");

    const target = await openStore(to);
    try {
      assertEquals(await target.getModel("zoo", "one"), before.one);
      assertEquals(await target.getModel("zoo", "two"), before.two);
      assertEquals(await target.getVersion("zoo", "one", "1.0.0"), before.v);
      const back = await new Response(await target.blobs.read(b.digest)).text();
      assertEquals(back, "weights");
      const hash = Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token))),
        (x) => x.toString(16).padStart(2, "0"),
      ).join("");
      assert(await target.findToken(hash), "the publisher's token works on the target");
    } finally {
      await target.close();
    }

    const second = await migrate(from, to);
    assertEquals(second.code, 0, second.stderr);
    assertStringIncludes(
      second.stdout,
      "Copied 0 versions, 0 blobs (0 bytes) and 0 tokens; 3 versions were there already and 2 blobs there hashed to their digests",
    );
    const again = await openStore(to);
    try {
      assertEquals(await again.getModel("zoo", "one"), before.one);
    } finally {
      await again.close();
    }
  },
);

migrationTest(
  "registry:migrate refuses a source blob that does not hash to its digest and writes nothing under it",
  async (from, to, src) => {
    const a = await put(src, '{"a":1}');
    await src.publish({
      namespace: "zoo",
      name: "bad",
      version: "1.0.0",
      files: [{ path: "model.json", ...a }],
      card: {},
      architecture: {},
    });
    await src.close();
    await Deno.writeTextFile(blobPath(storageLayout(from), a.digest), '{"a":2}');
    const out = await migrate(from, to);
    assertEquals(out.code, 1);
    assertStringIncludes(out.stderr, `not the expected "${a.digest}"`);
    const target = await openStore(to);
    try {
      assertEquals(await target.blobs.stat(a.digest), null);
      assertEquals(await target.getVersion("zoo", "bad", "1.0.0"), null);
    } finally {
      await target.close();
    }
  },
);
