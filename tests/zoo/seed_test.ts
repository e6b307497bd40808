/**
 * The registry's first start on an empty data dir publishes the whole zoo
 * (namespace `zoo`, version 1.0.0, tag `latest`); a second start and a
 * `deno task zoo:publish` against the seeded registry change nothing; a seed
 * stopped by Ctrl-C or killed is completed by the next start. Runs the real
 * command lines in child processes on a real port.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import { IMPORTED_ENTRIES, TRAINED_ENTRIES } from "../../zoo/mod.ts";
import { command, freePort, mintToken, runDeno } from "../_helpers/cli.ts";

await tf.setBackend("cpu");

const ZOO = [...TRAINED_ENTRIES, ...IMPORTED_ENTRIES];

const run = (args: string[]) => runDeno(args);

/** Spawns `registry/main.ts` on a data dir and a free port; its stdout is read as text. */
function spawnRegistry(data: string, extra: string[] = []) {
  const port = freePort();
  const args = ["run", "-A", "registry/main.ts", "--port", String(port), "--data", data, ...extra];
  const child = command(Deno.execPath(), args).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  return { port, child, stderr, reader };
}

/** Starts `registry/main.ts` on a data dir and returns its URL, what it printed before listening, and a stop. */
async function startRegistry(data: string, extra: string[] = []) {
  const { port, child, stderr, reader } = spawnRegistry(data, extra);
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
    const token = await mintToken("publish:zoo", ["--data", data]);

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

/** The zoo versions stored in a data dir, read by this process while or after the registry runs. */
async function storedZoo(data: string): Promise<string[]> {
  const store = await openSqliteFsStore(data);
  try {
    const found: string[] = [];
    for (const name of ZOO) {
      if (await store.getVersion("zoo", name, "1.0.0")) found.push(name);
    }
    return found;
  } finally {
    await store.close();
  }
}

/** Starts `registry/main.ts` and sends `signal` once it prints that it seeded its first entry. */
async function interruptSeed(data: string, signal: Deno.Signal) {
  const { child, stderr, reader } = spawnRegistry(data);
  let printed = "";
  let sent = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    printed += value;
    if (!sent && /Seeded zoo\//.test(printed)) {
      child.kill(signal);
      sent = true;
    } else if (!sent && printed.includes("Registry on")) {
      // It seeded without saying so entry by entry: stop it, the test fails on `sent`.
      child.kill("SIGKILL");
    }
  }
  const { code } = await child.status;
  return { code, printed, stderr: await stderr, sent };
}

Deno.test("a seed stopped by Ctrl-C or killed is completed by the next start", async () => {
  const data = await Deno.makeTempDir({ prefix: "zoo-seed-stop-" });
  try {
    const stopped = await interruptSeed(data, "SIGINT");
    assert(stopped.sent, stopped.printed + stopped.stderr);
    assertEquals(stopped.code, 0, `Ctrl-C stops the seed cleanly:\n${stopped.stderr}`);
    const m =
      /Stopped seeding after (\d) of 5 missing zoo checkpoints: the next start adds the rest/
        .exec(stopped.printed);
    assert(m, stopped.printed);
    assert(!stopped.printed.includes("Registry on"), "a stopped seed does not go on to serve");
    const afterStop = await storedZoo(data);
    assertEquals(afterStop.length, Number(m[1]));
    assert(afterStop.length >= 1 && afterStop.length < 5, `${afterStop}`);
    const uploads: string[] = [];
    for await (const e of Deno.readDir(join(data, "uploads"))) uploads.push(e.name);
    assertEquals(uploads, [], "no upload is left behind");

    const killed = await interruptSeed(data, "SIGKILL");
    assert(killed.sent, killed.printed + killed.stderr);
    assert(killed.code !== 0);
    const afterKill = await storedZoo(data);
    assert(afterKill.length > afterStop.length, `${afterKill}`);

    const restart = await startRegistry(data);
    try {
      const seeded = 5 - afterKill.length;
      if (seeded > 0) {
        assertStringIncludes(
          restart.printed,
          `Added ${seeded} missing zoo checkpoints (${afterKill.length} of 5 were there) in `,
        );
      }
      for (const name of ZOO) {
        const model = await getJson(`${restart.url}/api/models/zoo/${name}`);
        assertEquals(model.latest, "1.0.0", name);
        assertEquals((model.versions as unknown[]).length, 1, name);
      }
    } finally {
      await restart.stop();
    }
    assertEquals(await storedZoo(data), ZOO);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
  // --no-seed adds nothing, even to an empty data dir.
  const empty = await Deno.makeTempDir({ prefix: "zoo-no-seed-" });
  try {
    const bare = await startRegistry(empty, ["--no-seed"]);
    try {
      assertEquals((await getJson(`${bare.url}/api/models`)).items, []);
    } finally {
      await bare.stop();
    }
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
