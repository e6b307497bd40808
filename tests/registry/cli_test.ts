import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import { publish, tinyConvnetFiles } from "../_helpers/registry.ts";
import { freePort, runDeno } from "../_helpers/cli.ts";

const run = (args: string[], env: Record<string, string> = {}) =>
  runDeno(["run", "-A", ...args], { env });

Deno.test("registry/main.ts and token.ts explain their flags with --help", async () => {
  const main = await run(["registry/main.ts", "--help"]);
  assertEquals(main.code, 0);
  for (
    const s of [
      "--port",
      "ZOO_PORT",
      "--data",
      "ZOO_DATA",
      "./.zoo-data",
      "--private",
      "--max-blob-bytes",
    ]
  ) {
    assertStringIncludes(main.stdout, s);
  }
  const token = await run(["registry/token.ts", "--help"]);
  assertEquals(token.code, 0);
  assertStringIncludes(token.stdout, "publish:<namespace>");
  const bad = await run(["registry/main.ts", "--prot", "1"]);
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, "--help");
});

Deno.test("a token minted on the command line publishes to the registry the command line serves", async () => {
  const data = await Deno.makeTempDir({ prefix: "zoo-cli-" });
  const minted = await run([
    "registry/token.ts",
    "create",
    "--scope",
    "publish:zoo",
    "--label",
    "ci",
    "--data",
    data,
  ]);
  assertEquals(minted.code, 0, minted.stderr);
  const token = minted.stdout.trim();
  assertMatch(token, /^zoo_[0-9a-f]{8}_[0-9a-f]{48}$/);
  const badScope = await run([
    "registry/token.ts",
    "create",
    "--scope",
    "write:all",
    "--data",
    data,
  ]);
  assertEquals(badScope.code, 1);
  assertStringIncludes(badScope.stderr, 'Invalid scope "write:all"');

  const port = freePort();
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "registry/main.ts", "--port", String(port), "--data", data, "--no-seed"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}`;
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try {
        const r = await fetch(`${url}/healthz`);
        up = r.ok;
        await r.body?.cancel();
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert(up, "the registry answers /healthz");
    const files = await tinyConvnetFiles(5);
    const r = await publish({ url, token }, "zoo/from-cli", "1.0.0", files);
    assertEquals(r.status, 201);
    await r.body?.cancel();
    const list = await (await fetch(`${url}/api/models`)).json();
    assertEquals(list.items.map((m: { name: string }) => m.name), ["from-cli"]);
    for (const expected of [1, 2, 3]) {
      const doc = await (await fetch(`${url}/api/models/zoo/from-cli/1.0.0`)).json();
      assertEquals(doc.downloads, expected);
    }
    // Well within the store's 1 s between writes: only the shutdown can have written them.
    server.kill("SIGTERM");
    const { code } = await server.output();
    assertEquals(code, 0, "SIGTERM stops the registry cleanly");
    const store = await openSqliteFsStore(data);
    try {
      assertEquals((await store.getVersion("zoo", "from-cli", "1.0.0"))?.downloads, 3);
    } finally {
      await store.close();
    }
  } finally {
    try {
      server.kill("SIGTERM");
      await server.output();
    } catch {
      // stopped already
    }
    await Deno.remove(data, { recursive: true });
  }
});
