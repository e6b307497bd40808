import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import type { Preprocessing } from "../../../sdk/data/types.ts";
import {
  codeSimilarity,
  codeStatistics,
  measureSimilarity,
} from "../../../sdk/advisor/similarity.ts";
import { lenet5 } from "../../../zoo/_recipes.ts";

await initWasmBackend();

const PREPROCESS: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };

Deno.test("codeSimilarity() is 1 for the same statistics and exp(-1) for a shift of one total spread", () => {
  const source = { mean: [1, 2, 3], std: [1, 2, 2] };
  assertEquals(codeSimilarity(source, source), 1);
  // Total variance 9; moving the means by (3, 0, 0) gives d = 9 / 9 = 1.
  assertAlmostEquals(codeSimilarity(source, { mean: [4, 2, 3], std: [1, 2, 2] }), Math.exp(-1));
  // A dead unit in the source weighs nothing.
  const dead = { mean: [1, 0], std: [1, 0] };
  assertEquals(codeSimilarity(dead, { mean: [1, 0], std: [1, 0] }), 1);
  assertThrows(() => codeSimilarity(source, dead), RangeError, "same layer");
  assertThrows(
    () => codeSimilarity({ mean: [0], std: [0] }, { mean: [0], std: [0] }),
    RangeError,
    "no variance",
  );
});

Deno.test("measureSimilarity() rates other digits as more similar to digits than clothes are, without leaking tensors", async () => {
  const model = lenet5();
  const stats = await codeStatistics(
    model,
    "pool2",
    await loadBuiltin("mnist", { perClass: 30 }),
    PREPROCESS,
  );
  assertEquals([stats.layer, stats.dim, stats.count], ["pool2", 16, 300]);
  /** The similarity of 200 test images of a builtin dataset to the MNIST training codes. */
  const similarityOf = async (name: "mnist" | "fashion-mnist") => {
    const target = await loadBuiltin(name, { split: "test", perClass: 30 });
    return measureSimilarity(model, stats, target, PREPROCESS, { sample: 200 });
  };
  const before = tf.memory().numTensors;
  const digits = await similarityOf("mnist");
  const clothes = await similarityOf("fashion-mnist");
  assertEquals(tf.memory().numTensors, before);
  assert(digits > 0.8, `digits: ${digits}`);
  assert(clothes < digits, `clothes ${clothes} >= digits ${digits}`);
  model.dispose();
});
