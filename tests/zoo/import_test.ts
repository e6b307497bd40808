import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { importModel, main } from "../../zoo/import.ts";
import { codeStatistics } from "../../sdk/advisor/similarity.ts";
import { loadBuiltin } from "../../sdk/data/builtin.ts";
import { lenet5 } from "../../zoo/_recipes.ts";
import { modelToFiles, ZooClient } from "../../sdk/client/mod.ts";
import { zooEntries } from "../../zoo/mod.ts";
import { startRegistry } from "../registry/_helpers.ts";

await tf.setBackend("cpu");

/** Serves files from memory on a free port; `override` changes what a path answers. */
function serve(files: Map<string, Uint8Array<ArrayBuffer>>) {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname.replace(/^\/models\/lenet\//, "");
    const bytes = files.get(path);
    return bytes ? new Response(bytes) : new Response("not found", { status: 404 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/models/lenet/model.json`, server };
}

async function lenetFiles(): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
  const model = lenet5();
  const files = await modelToFiles(model);
  model.dispose();
  return new Map(files.map((f) => [f.path, f.bytes]));
}

Deno.test("importModel() copies a served LayersModel byte for byte and writes a card skeleton", async () => {
  const files = await lenetFiles();
  const { url, server } = serve(files);
  const outDir = await Deno.makeTempDir({ prefix: "zoo-import-" });
  try {
    const result = await importModel(url, { outDir });
    assertEquals(result.name, "lenet");
    assertEquals(result.paths, ["model.json", "group1-shard1of1.bin", "card.json", "README.md"]);
    assertEquals(
      await Deno.readFile(join(outDir, "group1-shard1of1.bin")),
      files.get("group1-shard1of1.bin"),
    );
    assertEquals(
      JSON.parse(await Deno.readTextFile(join(outDir, "model.json"))),
      JSON.parse(new TextDecoder().decode(files.get("model.json"))),
    );
    const card = JSON.parse(await Deno.readTextFile(join(outDir, "card.json")));
    assertEquals(card.source, url);
    assertEquals(card.labels.length, 10);
    assertEquals(card.preprocessing.height, 28);
    assertEquals(result.architecture.totalParams, 61706);
    // The folder loads as is.
    const model = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: JSON.parse(await Deno.readTextFile(join(outDir, "model.json"))).modelTopology,
      weightSpecs:
        JSON.parse(await Deno.readTextFile(join(outDir, "model.json"))).weightsManifest[0].weights,
      weightData: (await Deno.readFile(join(outDir, "group1-shard1of1.bin"))).buffer,
    }));
    assertEquals(model.countParams(), 61706);
    model.dispose();
  } finally {
    await server.shutdown();
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("importModel() refuses a missing or truncated shard and a non-http URL", async () => {
  const files = await lenetFiles();
  const outDir = await Deno.makeTempDir({ prefix: "zoo-import-" });
  const shard = files.get("group1-shard1of1.bin")!;
  const { url, server } = serve(files);
  try {
    files.set("group1-shard1of1.bin", shard.slice(0, 100));
    await assertRejects(
      () => importModel(url, { outDir }),
      Error,
      "not a valid TensorFlow.js LayersModel",
    );
    files.delete("group1-shard1of1.bin");
    await assertRejects(
      () => importModel(url, { outDir }),
      Error,
      'shard "group1-shard1of1.bin" answered 404',
    );
    await assertRejects(
      () => importModel("file:///tmp/model.json", { outDir }),
      TypeError,
      "http(s)",
    );
    await assertRejects(() => main(["--url", url]), RangeError, "Missing --out");
  } finally {
    await server.shutdown();
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("zoo/import.ts --url imports a quantized model served over HTTP into a folder that publishes and loads", async () => {
  // nsfwjs's MobileNetV2 as the zoo publishes it: uint8-quantized weights.
  const [entry] = await zooEntries({ only: ["mobilenet-v2"] });
  const files = new Map(
    entry!.files.filter((f) => f.path !== "README.md").map((f) => [f.path, f.bytes]),
  );
  const { url, server } = serve(files);
  const outDir = await Deno.makeTempDir({ prefix: "zoo-import-cli-" });
  const reg = await startRegistry();
  try {
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "zoo/import.ts",
        "--url",
        url,
        "--out",
        outDir,
        "--name",
        "nsfw-mobilenet",
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(cli.stdout);
    assertEquals(cli.code, 0, new TextDecoder().decode(cli.stderr));
    assertStringIncludes(stdout, `Imported "nsfw-mobilenet"`);
    const shards = [...files.keys()].filter((p) => p !== "model.json");
    for (const path of shards) {
      assertEquals(await Deno.readFile(join(outDir, path)), files.get(path), path);
    }
    const modelJson = JSON.parse(await Deno.readTextFile(join(outDir, "model.json")));
    const weights = modelJson.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
    assert(
      weights.every((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === "uint8"),
    );
    const card = JSON.parse(await Deno.readTextFile(join(outDir, "card.json")));
    assertEquals(card.source, url);
    assertEquals(card.preprocessing.height, 224);
    assertEquals(card.labels.length, 5);
    assertEquals(card.sourceStats, null);
    assertStringIncludes(card.sourceStatsNote, "--source-data");
    assertStringIncludes(stdout, "No sourceStats");

    const client = new ZooClient({ url: reg.url, token: reg.token, progress: false });
    const published = await client.publish(outDir, {
      name: "zoo/nsfw-mobilenet",
      version: "1.0.0",
    });
    const fromRegistry = await tf.loadLayersModel(published.modelJsonUrl);
    const original = await tf.loadLayersModel(`${url.replace(/model\.json$/, "")}model.json`);
    try {
      const x = tf.randomUniform([1, 224, 224, 3], 0, 1, "float32", 3);
      const [a, b] = [fromRegistry.predict(x) as tf.Tensor, original.predict(x) as tf.Tensor];
      const [da, db] = [await a.data(), await b.data()];
      tf.dispose([x, a, b]);
      assertEquals(Array.from(da), Array.from(db));
    } finally {
      fromRegistry.dispose();
      original.dispose();
    }
  } finally {
    await server.shutdown();
    await reg.close();
    await Deno.remove(reg.dataDir, { recursive: true });
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("zoo/import.ts --source-data computes the card's sourceStats at the penultimate layer", async () => {
  const files = await lenetFiles();
  const { url, server } = serve(files);
  const outDir = await Deno.makeTempDir({ prefix: "zoo-import-stats-" });
  try {
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "zoo/import.ts",
        "--url",
        url,
        "--out",
        outDir,
        "--source-data",
        "mnist?perClass=4",
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(cli.code, 0, new TextDecoder().decode(cli.stderr));
    const card = JSON.parse(await Deno.readTextFile(join(outDir, "card.json")));
    assertEquals(card.sourceStatsNote, undefined);
    const model = await tf.loadLayersModel(`file://${join(outDir, "model.json")}`);
    const data = await loadBuiltin("mnist", { perClass: 4, split: "train", seed: 0 });
    const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
    const expected = await codeStatistics(model, card.sourceStats.layer, data, preprocess);
    model.dispose();
    assertEquals(card.sourceStats.layer, "fc2");
    assertEquals([card.sourceStats.dim, card.sourceStats.count], [expected.dim, expected.count]);
    card.sourceStats.mean.forEach((m: number, i: number) =>
      assert(Math.abs(m - expected.mean[i]!) < 1e-5, `mean ${i}`)
    );
    card.sourceStats.std.forEach((v: number, i: number) =>
      assert(Math.abs(v - expected.std[i]!) < 1e-5, `std ${i}`)
    );
    assertStringIncludes(
      new TextDecoder().decode(cli.stdout),
      `sourceStats: ${expected.dim} codes at "fc2"`,
    );
    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "zoo/import.ts", "--url", url, "--out", outDir, "--range", "1,0"],
      cwd: new URL("../../", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(bad.code, 1);
    assertStringIncludes(new TextDecoder().decode(bad.stderr), `Invalid --range "1,0"`);
  } finally {
    await server.shutdown();
    await Deno.remove(outDir, { recursive: true });
  }
});
