/**
 * The main job (`deno task start`) at tiny scale: a temp data dir seeded with
 * LeNet-5 only, a few Fashion-MNIST images per class, `--exit`; the published
 * version must exist with its lineage card.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { ZooClient } from "../sdk/client/mod.ts";
import { createRegistryApp } from "../registry/app.ts";
import { openSqliteFsStore } from "../registry/storage/sqlite_fs.ts";

Deno.test("main.ts seeds the registry, fine-tunes zoo/lenet5 on Fashion-MNIST, publishes with lineage and exits", async () => {
  const root = await Deno.makeTempDir({ prefix: "main_test_" });
  try {
    const data = join(root, "data");
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "--exit",
        "--port",
        "0",
        "--data",
        data,
        "--cache",
        join(root, "cache"),
        "--out",
        join(root, "out"),
        "--zoo",
        "lenet5",
        "--per-class",
        "5",
        "--epochs",
        "1",
        "--device",
        "wasm",
      ],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, `${stdout}\n${stderr}`);
    assertMatch(stdout, /Seeded the empty registry with zoo\/lenet5@1\.0\.0/);
    assertMatch(stderr, /advisor: /);
    const done = /Main job done in [\d.]+ s: (me\/lenet5-fashion@1\.0\.0) at (http:\/\/\S+)/.exec(
      stdout,
    );
    assert(done, stdout);

    // Reopen the same data dir: the published version and its lineage are stored.
    const store = await openSqliteFsStore(data);
    const server = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen: () => {} },
      createRegistryApp({ store }).fetch,
    );
    try {
      const client = new ZooClient({
        url: `http://127.0.0.1:${server.addr.port}`,
        cacheDir: join(root, "cache2"),
        progress: false,
      });
      const doc = await client.resolve("me/lenet5-fashion@1.0.0");
      const parent = await client.resolve("zoo/lenet5@1.0.0");
      assertEquals(doc.card.parent, "zoo/lenet5@1.0.0");
      assertEquals(
        doc.card.parentDigest,
        parent.files.find((f) => f.path === "model.json")!.digest,
      );
      const ft = doc.card.fineTuning as Record<string, unknown>;
      assert(["features-top", "features-early", "partial", "full"].includes(String(ft.strategy)));
      assertEquals(ft.requestedStrategy, "auto");
      assert(typeof ft.cutLayer === "string");
      assertEquals((doc.card.dataset as Record<string, unknown>).name, "fashion-mnist?perClass=5");
      assert(doc.files.some((f) => f.path === "model.json"));
    } finally {
      await server.shutdown();
      await store.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
