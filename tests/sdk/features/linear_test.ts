import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertGreater, assertRejects } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm.ts";
import { type CnnCodes, evaluateLinear, trainLinear } from "../../../sdk/features/mod.ts";

await initWasmBackend();

/** Three Gaussian blobs in 5 dimensions, far from the origin and on different scales. */
function blobs(perClass: number, seed: number): CnnCodes {
  let s = seed + 1;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
  const dim = 5, count = 3 * perClass;
  const codes = new Float32Array(count * dim);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 3;
    for (let d = 0; d < dim; d++) {
      codes[i * dim + d] = 100 + (d + 1) * 10 * ((d === labels[i] ? 1 : 0) + 0.3 * rand());
    }
  }
  return { codes, labels, count, dim };
}

for (const classifier of ["svm", "softmax"] as const) {
  Deno.test(`trainLinear() with ${classifier} separates blobs, and its folded weights classify raw codes`, async () => {
    const before = tf.memory().numTensors;
    const fit = await trainLinear(blobs(30, 1), blobs(10, 2), {
      classifier,
      numClasses: 3,
      epochs: 40,
      batchSize: 16,
      lr: 0.05,
      seed: 0,
    });
    assertEquals(tf.memory().numTensors, before);
    assertEquals(fit.history[0]!.phase, "linear");
    assertGreater(fit.history.at(-1)!.valAccuracy!, 0.95);
    const test = await evaluateLinear(fit.model, blobs(20, 3));
    assertGreater(test.accuracy, 0.95);
  });
}

Deno.test("trainLinear() stops when the validation loss stops improving and keeps the best epoch", async () => {
  // Validation labels are the training labels shifted: the better it fits, the worse validation gets.
  const train = blobs(20, 1);
  const validation = { ...train, labels: train.labels.map((l) => (l + 1) % 3) };
  const fit = await trainLinear(train, validation, {
    classifier: "softmax",
    numClasses: 3,
    epochs: 50,
    batchSize: 60,
    lr: 0.05,
    seed: 0,
    patience: 2,
  });
  assertEquals(fit.history.length, 3);
  assertEquals(fit.bestEpoch, 1);
  const atBest = await evaluateLinear(fit.model, validation);
  assert(Math.abs(atBest.loss - fit.history[0]!.valLoss!) < 1e-4);
});

Deno.test("trainLinear() rejects labels out of range and codes of the wrong length", async () => {
  const train = blobs(2, 1);
  const opts = {
    classifier: "svm",
    numClasses: 2,
    epochs: 1,
    batchSize: 4,
    lr: 0.1,
    seed: 0,
  } as const;
  await assertRejects(() => trainLinear(train, undefined, opts), RangeError, `label "2"`);
  await assertRejects(
    () => trainLinear(train, { ...train, dim: 4 }, { ...opts, numClasses: 3 }),
    RangeError,
    "Invalid validation codes",
  );
});
