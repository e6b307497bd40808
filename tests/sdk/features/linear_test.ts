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

Deno.test("evaluateLinear() computes the Crammer–Singer hinge and the cross-entropy as written by hand", async () => {
  // scores = codes · kernel + bias, 2 dimensions, 3 classes.
  const kernel = new Float32Array([1, 0, -1, 0, 2, 1]);
  const bias = new Float32Array([0, 0.5, 0]);
  const codes: CnnCodes = {
    codes: new Float32Array([1, 0, 0, 1, 2, -1]),
    labels: new Int32Array([0, 2, 0]),
    count: 3,
    dim: 2,
  };
  const scores = [[1, 0.5, -1], [0, 2.5, 1], [2, -1.5, -3]];
  const model = {
    dim: 2,
    numClasses: 3,
    kernel,
    bias,
    mean: new Float32Array(2),
    std: new Float32Array([1, 1]),
  };
  // Hinge per example: max(0, max over j != y of s_j + 1 - s_y) = 0.5, 2.5, 0.
  const svm = await evaluateLinear({ ...model, classifier: "svm" }, codes);
  assert(Math.abs(svm.loss - 1) < 1e-6, `hinge ${svm.loss}`);
  assertEquals(svm.accuracy, 2 / 3);
  const ce = scores.map((s, i) => {
    const y = codes.labels[i]!;
    return Math.log(s.reduce((a, v) => a + Math.exp(v), 0)) - s[y]!;
  }).reduce((a, b) => a + b, 0) / 3;
  const softmax = await evaluateLinear({ ...model, classifier: "softmax" }, codes);
  assert(Math.abs(softmax.loss - ce) < 1e-5, `cross-entropy ${softmax.loss}, by hand ${ce}`);
});

Deno.test("trainLinear()'s L2 penalty shrinks the SVM's weights over the standardized codes", async () => {
  const opts = {
    classifier: "svm",
    numClasses: 3,
    epochs: 30,
    batchSize: 16,
    lr: 0.05,
    seed: 0,
  } as const;
  const norm = (m: { kernel: Float32Array; std: Float32Array; numClasses: number }) =>
    // The folded kernel is W / std row by row: undo it to get W.
    Math.sqrt(
      m.kernel.reduce((a, v, i) => a + (v * m.std[Math.floor(i / m.numClasses)]!) ** 2, 0),
    );
  const free = await trainLinear(blobs(30, 1), undefined, { ...opts, l2: 0 });
  const penalized = await trainLinear(blobs(30, 1), undefined, { ...opts, l2: 1 });
  const [a, b] = [norm(free.model), norm(penalized.model)];
  assert(b < 0.5 * a, `||W|| ${b} with l2 1, ${a} without`);
  assertGreater((await evaluateLinear(penalized.model, blobs(20, 3))).accuracy, 0.9);
});
