/**
 * `full` and `partial` train what the strategy says, whatever the
 * checkpoint's own `trainable` flags: zoo/mobilenet-v2 (nsfwjs) ships blocks
 * 0-10 marked `trainable: false`. One step on four noise images in
 * micro-batches of two, through `fineTune()` with an output folder, so the
 * card is checked too.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import type { Dataset } from "../../../sdk/data/types.ts";
import { fineTune } from "../../../sdk/finetune/fine_tune.ts";
import { loadNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";
import { tempDir } from "../../_helpers/temp.ts";

await initWasmBackend({ threads: false });

/** Four seeded noise images of 224x224x3, two classes. */
function noise(): Dataset {
  const n = 4;
  const labels = [0, 1, 0, 1];
  return {
    name: "noise",
    identity: "noise-224-4",
    classes: ["a", "b"],
    size: n,
    imageShape: [224, 224, 3],
    counts: [2, 2],
    async *batches(batchSize) {
      for (let i = 0; i < n; i += batchSize) {
        const k = Math.min(batchSize, n - i);
        yield {
          xs: tf.randomUniform([k, 224, 224, 3], 0, 1, "float32", 11 + i) as tf.Tensor4D,
          ys: tf.tensor1d(labels.slice(i, i + k), "int32"),
        };
      }
    },
  };
}

/** Every weight tensor of `layers` in `model`, by `layer/index`, as arrays. */
async function weightsByLayer(
  model: tf.LayersModel,
  layers: Iterable<string>,
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const name of layers) {
    const ws = model.getLayer(name).getWeights();
    for (const [i, w] of ws.entries()) out.set(`${name}/${i}`, (await w.data()) as Float32Array);
  }
  return out;
}

function changed(a: Float32Array, b: Float32Array): boolean {
  return a.some((v, i) => v !== b[i]);
}

const source = await loadNsfwjsModel("mobilenet_v2");
const flaggedFrozen = source.layers.filter((l) => !l.trainable && l.weights.length > 0);
const base = source.layers.filter((l) => l.weights.length > 0).map((l) => l.name);
// The new head replaces the classifier (dense_3) and reads the penultimate dense_2.
const kept = base.filter((n) => n !== "dense_3");

Deno.test("the nsfwjs MobileNetV2 ships layers marked trainable: false", () => {
  assert(flaggedFrozen.length >= 40, `${flaggedFrozen.length} flagged layers`);
  assert(flaggedFrozen.some((l) => l.name === "block_10_project_BN"));
});

/**
 * One fine-tuning step of `source` on the noise images into a temp folder:
 * the kept layers' weights before and after, the card, the trainable tensors.
 */
async function fineTuneOnce(
  strategy: { strategy: "full" } | { strategy: "partial"; freezeUntil: string },
) {
  const before = await weightsByLayer(source, kept);
  await using out = await tempDir(`${strategy.strategy}_flags_`);
  const run = await fineTune({
    model: source,
    train: noise(),
    ...strategy,
    device: "wasm",
    wasmThreads: 1,
    training: { epochs: 1, batchSize: 4, microBatch: 2 },
    output: { outDir: out.path },
    callbacks: { log: () => {} },
  });
  try {
    const after = await weightsByLayer(run.model, kept);
    const card = JSON.parse(await Deno.readTextFile(join(out.path, "card.json")));
    const trainableTensors = run.model.layers.flatMap((l) => l.trainableWeights).length;
    return { before, after, card, trainableTensors };
  } finally {
    run.model.dispose();
  }
}

Deno.test("full fine-tuning of zoo/mobilenet-v2 changes every weight tensor and its card lists no frozen layer", async () => {
  const { before, after, card, trainableTensors: trainable } = await fineTuneOnce({
    strategy: "full",
  });
  assertEquals(after.size, before.size);
  // Moving statistics included: BatchNormalization runs in training mode under `full`.
  const still = [...before].filter(([k, v]) => !changed(v, after.get(k)!)).map(([k]) => k);
  assertEquals(still, [], `${still.length} of ${before.size} weight tensors did not change`);
  assertEquals(card.fineTuning.frozenLayers, []);
  assertEquals(card.fineTuning.trainedLayers, [...kept, "head_logits"]);
  assertEquals(card.fineTuning.trainedWeights.tensors, trainable);
  assert(trainable > 150, `${trainable} trainable tensors`);
});

Deno.test("partial fine-tuning of zoo/mobilenet-v2 freezes exactly up to freezeUntil, flagged layers after it train", async () => {
  const cut = kept.indexOf("block_3_expand");
  const frozen = kept.slice(0, cut);
  const { before, after, card } = await fineTuneOnce({
    strategy: "partial",
    freezeUntil: "block_2_add",
  });
  for (const [key, v] of before) {
    const layer = key.split("/")[0]!;
    assertEquals(changed(v, after.get(key)!), !frozen.includes(layer), key);
  }
  assertEquals(card.fineTuning.frozenLayers, frozen);
  assertEquals(card.fineTuning.trainedLayers, [...kept.slice(cut), "head_logits"]);
  // block_3 to block_10 ship trainable: false and trained all the same.
  assert(flaggedFrozen.some((l) => l.name === "block_10_expand"));
});
