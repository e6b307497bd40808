import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { importModel, main } from "../../zoo/import.ts";
import { lenet5 } from "../../zoo/_recipes.ts";
import { modelToFiles } from "../../sdk/io_handler.ts";

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
