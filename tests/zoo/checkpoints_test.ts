import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { analyze } from "../../core/arch/analyze.ts";
import { loadBuiltin } from "../../sdk/data/mod.ts";
import { initWasmBackend } from "../../sdk/devices/wasm/backend.ts";
import { checkModelJson } from "../../core/model_json.ts";
import { tfjsLayers } from "../../sdk/model_layers.ts";
import { evaluateAccuracy } from "../../zoo/_train.ts";
import { TRAINED_ENTRIES, zooEntries, type ZooEntry } from "../../zoo/mod.ts";

await initWasmBackend();

const entries = await zooEntries({ imported: false });

function loadEntry(entry: ZooEntry): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(new TextDecoder().decode(entry.files[0]!.bytes)) as tf.io.ModelJSON;
  const shards = entry.files.filter((f) => f.path.endsWith(".bin"));
  assertEquals(shards.length, 1);
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: shards[0]!.bytes.buffer,
  }));
}

Deno.test("zooEntries() reads the three committed checkpoints with model.json, shard and README", () => {
  assertEquals(entries.map((e) => e.name), [...TRAINED_ENTRIES]);
  for (const e of entries) {
    assertEquals(e.version, "1.0.0");
    assertEquals(e.files.map((f) => f.path), ["model.json", "group1-shard1of1.bin", "README.md"]);
    const modelJson = JSON.parse(new TextDecoder().decode(e.files[0]!.bytes));
    const sizes = new Map([["group1-shard1of1.bin", e.files[1]!.bytes.byteLength]]);
    assertEquals(checkModelJson(modelJson, sizes, tfjsLayers), [], e.name);
  }
});

for (const entry of entries) {
  Deno.test(`the committed ${entry.name} checkpoint reaches its recorded test accuracy on 200 test digits`, async () => {
    const model = await loadEntry(entry);
    try {
      const card = entry.card as {
        metrics: { name: string; value: number; dataset: string }[];
        preprocessing: { height: number; width: number; channels: 1; range: [number, number] };
      };
      const recorded = card.metrics.find((m) => m.name === "accuracy")!;
      assert(
        /^mnist@1\.1\.0 test split \(seed 0, 20% per class, \d+ images\)$/.test(recorded.dataset),
      );
      const test = await loadBuiltin("mnist", { split: "test", perClass: 20, seed: 0 });
      const before = tf.memory().numTensors;
      const { accuracy, count } = await evaluateAccuracy(model, test, card.preprocessing);
      assertEquals(tf.memory().numTensors, before);
      assertEquals(count, 200);
      assert(
        Math.abs(accuracy - recorded.value) <= 0.04,
        `${entry.name}: ${accuracy} on 200 test digits, card says ${recorded.value}`,
      );
      // The zoo's targets: 97% for lenet5 and resnet-mini, 95% for vggish.
      const target = entry.name === "vggish" ? 0.95 : 0.97;
      assert(recorded.value >= target, `${entry.name}: recorded accuracy ${recorded.value}`);
    } finally {
      model.dispose();
    }
  });
}

Deno.test("each trained card records the statistics of its penultimate codes over the train split", () => {
  for (const e of entries) {
    const modelJson = JSON.parse(new TextDecoder().decode(e.files[0]!.bytes));
    const card = e.card as {
      datasetSize: number;
      sourceStats: { layer: string; dim: number; count: number; mean: number[]; std: number[] };
      parent: unknown;
      task: string;
      labels: string[];
      license: string;
    };
    const { sourceStats: s } = card;
    assertEquals(s.layer, analyze(modelJson).classifierCut, e.name);
    assertEquals([s.mean.length, s.std.length], [s.dim, s.dim]);
    assertEquals(s.count, card.datasetSize);
    assert(s.mean.every((v) => v >= 0) && s.std.every((v) => v >= 0), "ReLU'd codes are >= 0");
    assertEquals(card.parent, null);
    assertEquals(card.task, "image-classification");
    assertEquals(card.labels, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assertEquals(card.license, "MIT");
  }
});
