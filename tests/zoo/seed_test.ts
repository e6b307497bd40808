/**
 * The registry's first start on an empty data dir publishes the whole zoo
 * (namespace `zoo`, version 1.0.0, tag `latest`); a second start and a
 * `deno task zoo:publish` against the seeded registry change nothing. Runs
 * the real command lines in child processes on a real port.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { IMPORTED_ENTRIES, TRAINED_ENTRIES } from "../../zoo/mod.ts";

await tf.setBackend("cpu");

const ROOT = new URL("../../", import.meta.url).pathname;
const ZOO = [...TRAINED_ENTRIES, ...IMPORTED_ENTRIES];

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts `registry/main.ts` on a data dir and returns its URL, what it printed before listening, and a stop. */
async function startRegistry(data: string) {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "registry/main.ts", "--port", String(port), "--data", data],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  while (!printed.includes("Registry on http://")) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(`registry/main.ts exited before listening:\n${printed}\n${await stderr}`);
    }
    printed += value;
  }
  const stop = async () => {
    child.kill("SIGTERM");
    await reader.cancel();
    const { code } = await child.status;
    await stderr;
    assertEquals(code, 0, "SIGTERM stops the registry cleanly");
  };
  return { url: `http://127.0.0.1:${port}`, printed, stop };
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  assertEquals(res.status, 200, url);
  return await res.json();
}

Deno.test("the registry's first start on an empty data dir publishes the zoo at 1.0.0 tagged latest, once", async () => {
  const data = await Deno.makeTempDir({ prefix: "zoo-seed-" });
  try {
    const minted = await run([
      "run",
      "-A",
      "registry/token.ts",
      "create",
      "--scope",
      "publish:zoo",
      "--data",
      data,
    ]);
    assertEquals(minted.code, 0, minted.stderr);
    const token = minted.stdout.trim();

    const first = await startRegistry(data);
    try {
      assertMatch(first.printed, /Seeded the empty store with 5 zoo checkpoints/);
      for (const name of ZOO) assertStringIncludes(first.printed, `zoo/${name}@1.0.0`);

      const list = await getJson(`${first.url}/api/models?limit=100`);
      const items = list.items as { namespace: string; name: string }[];
      assertEquals(
        items.map((m) => `${m.namespace}/${m.name}`).sort(),
        ZOO.map((n) => `zoo/${n}`).sort(),
      );
      for (const name of ZOO) {
        const model = await getJson(`${first.url}/api/models/zoo/${name}`);
        assertEquals((model.tags as Record<string, string>).latest, "1.0.0", name);
        const latest = await getJson(`${first.url}/api/models/zoo/${name}/latest`);
        assertEquals(latest.version, "1.0.0", name);
        const card = latest.card as Record<string, unknown>;
        for (const field of ["task", "labels", "license", "source", "preprocessing", "metrics"]) {
          assert(card[field] !== undefined, `${name}: card has no "${field}"`);
        }
        const paths = (latest.files as { path: string }[]).map((f) => f.path);
        assert(paths.includes("model.json") && paths.includes("README.md"), `${name}: ${paths}`);
      }
      // Plain tfjs loads the seeded LeNet-5 through the tag.
      const lenet = await tf.loadLayersModel(
        `${first.url}/api/models/zoo/lenet5/latest/model.json`,
      );
      assertEquals(lenet.outputs[0]?.shape, [null, 10]);
      lenet.dispose();

      // Publishing the zoo into the seeded registry is a no-op, not an error.
      const again = await run([
        "task",
        "-q",
        "zoo:publish",
        "--url",
        first.url,
        "--token",
        token,
      ]);
      assertEquals(again.code, 0, again.stderr);
      for (const name of ZOO) {
        assertStringIncludes(again.stdout, `zoo/${name}@1.0.0: already published, skipped`);
      }
    } finally {
      await first.stop();
    }

    const second = await startRegistry(data);
    try {
      assert(!second.printed.includes("Seeded"), second.printed);
      for (const name of ZOO) {
        const model = await getJson(`${second.url}/api/models/zoo/${name}`);
        const versions = (model.versions as { version: string }[]).map((v) => v.version);
        assertEquals(versions, ["1.0.0"], name);
      }
    } finally {
      await second.stop();
    }
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
