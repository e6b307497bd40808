/**
 * The advisor without source statistics: similarity from how sure the
 * checkpoint's own classifier is on the new images, on the zoo's trained
 * LeNet-5 (its committed checkpoint).
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertMatch } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import type { Preprocessing } from "../../../sdk/data/types.ts";
import {
  PREDICTION_SIMILARITY_THRESHOLD,
  predictionSimilarity,
} from "../../../sdk/advisor/similarity.ts";
import { fineTune } from "../../../sdk/finetune/fine_tune.ts";

await initWasmBackend({ threads: false });

const PREPROCESS: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };
const CHECKPOINT = new URL("../../../zoo/lenet5/checkpoint/model.json", import.meta.url);

async function trainedLenet(): Promise<tf.LayersModel> {
  return await tf.loadLayersModel(`file://${CHECKPOINT.pathname}`);
}

Deno.test("predictionSimilarity() is 1 - mean entropy / ln K of the checkpoint's predictions, high on digits and low on clothes", async () => {
  const model = await trainedLenet();
  const digits = await loadBuiltin("mnist", { split: "test", perClass: 10 });
  const clothes = await loadBuiltin("fashion-mnist", { perClass: 10 });
  const before = tf.memory().numTensors;
  const d = await predictionSimilarity(model, digits, PREPROCESS, { sample: 100 });
  const c = await predictionSimilarity(model, clothes, PREPROCESS, { sample: 100 });
  assertEquals(tf.memory().numTensors, before);
  assertEquals([d.count, d.classes], [100, 10]);
  // The same figure from one predict over the whole set (the sample is all 100 images).
  const all = await (async () => {
    for await (const { xs, ys } of clothes.batches(100, { preprocess: PREPROCESS })) {
      const p = model.predict(xs) as tf.Tensor;
      const rows = (await p.array()) as number[][];
      tf.dispose([xs, ys, p]);
      return rows;
    }
    throw new Error("no batch");
  })();
  const entropy =
    all.reduce((s, r) => s - r.reduce((h, q) => h + (q > 0 ? q * Math.log(q) : 0), 0), 0) /
    all.length;
  assertAlmostEquals(c.meanEntropy, entropy, 1e-4);
  assertAlmostEquals(c.similarity, 1 - entropy / Math.log(10), 1e-4);
  assert(d.similarity >= PREDICTION_SIMILARITY_THRESHOLD, `digits ${d.similarity}`);
  assert(c.similarity < PREDICTION_SIMILARITY_THRESHOLD, `clothes ${c.similarity}`);
  assert(d.meanConfidence > c.meanConfidence);
  // Logits give what their softmax gives.
  const last = model.layers.at(-1)!;
  assertEquals(last.getConfig().activation, "softmax");
  const linear = tf.layers.dense({ units: 10, activation: "linear" });
  const logits = tf.model({
    inputs: model.inputs,
    outputs: linear.apply(last.input as tf.SymbolicTensor) as tf.SymbolicTensor,
  });
  linear.setWeights(last.getWeights());
  const fromLogits = await predictionSimilarity(logits, clothes, PREPROCESS, { sample: 100 });
  assertAlmostEquals(fromLogits.similarity, c.similarity, 1e-4);
  linear.dispose();
  model.dispose();
});

Deno.test("fineTune() with auto on a checkpoint whose card has sourceStats null decides from its predictions and says so in one line", async () => {
  const model = await trainedLenet();
  const lines: string[] = [];
  const run = await fineTune({
    model,
    data: "fashion-mnist?perClass=5",
    strategy: "auto",
    training: { epochs: 2 },
    device: "wasm",
    wasmThreads: 1,
    source: {
      card: {
        preprocessing: PREPROCESS,
        sourceStats: null,
        sourceStatsNote: "the source data is not published",
      },
    },
    output: { cacheDir: await Deno.makeTempDir() },
    callbacks: { log: (l) => lines.push(l) },
  });
  const said = lines.filter((l) => l.includes("no sourceStats"));
  assertEquals(said.length, 1, lines.join("\n"));
  assertMatch(
    said[0]!,
    /the source data is not published.*own classifier.*1 - entropy\/ln 10 = 0\.\d\d/,
  );
  assert(run.advice !== undefined);
  assertEquals(run.advice.thresholds.similarity, PREDICTION_SIMILARITY_THRESHOLD);
  assert(run.advice.similarity < PREDICTION_SIMILARITY_THRESHOLD);
  assertEquals(run.strategy, "features-early");
  assertMatch(run.advice.explanation, /from its own predictions/);
  run.model.dispose();
  model.dispose();
});
