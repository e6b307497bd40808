/** foldForInference(): BatchNormalization folded into convolutions gives model.predict's numbers with fewer layers run. */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { foldForInference } from "../../../sdk/surgery/fold.ts";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { loadNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";

/** Gives every BatchNormalization moving statistics, γ and β far from their initial values. */
function randomizeBatchNorms(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    layer.setWeights(
      layer.getWeights().map((w, i) =>
        tf.tidy(() => {
          const u = tf.randomUniform(w.shape, 0, 1, "float32", seed++);
          // The last weight is the moving variance: keep it positive.
          return i === layer.getWeights().length - 1 ? u.mul(2).add(0.1) : u.sub(0.5).mul(3);
        })
      ),
    );
  }
}

/**
 * A functional net with each case folding meets: conv → BN → ReLU6, depthwise →
 * BN → ReLU, a biased conv → BN with no activation, BN without γ or β, a
 * residual add, a conv read twice (not folded), a ReLU with another bound (not fused).
 */
function foldNet(): tf.LayersModel {
  const input = tf.input({ shape: [10, 9, 3] });
  const c1 = tf.layers.conv2d({
    filters: 6,
    kernelSize: 3,
    padding: "same",
    useBias: false,
    name: "c1",
  })
    .apply(input);
  const b1 = tf.layers.batchNormalization({ name: "b1" }).apply(c1);
  const r1 = tf.layers.reLU({ maxValue: 6, name: "r1" }).apply(b1);
  const d2 = tf.layers.depthwiseConv2d({
    kernelSize: 3,
    strides: 2,
    depthMultiplier: 2,
    padding: "valid",
    useBias: false,
    name: "d2",
  }).apply(r1);
  const b2 = tf.layers.batchNormalization({ name: "b2", scale: false }).apply(d2);
  const r2 = tf.layers.activation({ activation: "relu", name: "r2" }).apply(b2);
  const c3 = tf.layers.conv2d({ filters: 12, kernelSize: 1, name: "c3" }).apply(r2);
  const b3 = tf.layers.batchNormalization({ name: "b3", center: false }).apply(c3);
  const added = tf.layers.add({ name: "add" }).apply([b3, r2] as tf.SymbolicTensor[]);
  // c4's output is read by b4 and by the concatenation: nothing to fold.
  const c4 = tf.layers.conv2d({ filters: 5, kernelSize: 1, useBias: false, name: "c4" }).apply(
    added,
  );
  const b4 = tf.layers.batchNormalization({ name: "b4" }).apply(c4);
  const both = tf.layers.concatenate({ name: "cat" }).apply([b4, c4] as tf.SymbolicTensor[]);
  const c5 = tf.layers.conv2d({ filters: 4, kernelSize: 2, useBias: false, name: "c5" }).apply(
    both,
  );
  const b5 = tf.layers.batchNormalization({ name: "b5" }).apply(c5);
  const r5 = tf.layers.reLU({ maxValue: 3, name: "r5" }).apply(b5);
  const flat = tf.layers.flatten().apply(r5);
  // Logits, not probabilities: a saturated softmax would hide differences.
  const out = tf.layers.dense({ units: 3, name: "out" }).apply(flat);
  return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
}

/**
 * The largest difference over the largest value wanted. An all-zero output
 * would make it 0/0 and would check nothing: the nets here are seeded so
 * that theirs is not, and an all-zero one fails.
 */
async function relativeError(got: tf.Tensor, want: tf.Tensor): Promise<number> {
  const [a, b] = [await got.data(), await want.data()];
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  assert(den > 0, "the output wanted is all zero: it would check nothing");
  return num / den;
}

/**
 * Seeds every weight but BatchNormalization's (randomizeBatchNorms sets
 * those): the default initializers are unseeded, and with some draws every
 * ReLU before the output was 0, so its logits were all zero (about one run
 * in fifteen, before the weights were seeded).
 */
function seedWeights(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() === "BatchNormalization") continue;
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    layer.setWeights(
      weights.map((w) => tf.tidy(() => tf.randomUniform(w.shape, -0.5, 0.5, "float32", seed++))),
    );
  }
}

Deno.test("foldForInference folds each conv's BatchNormalization and ReLU, and matches model.predict", async () => {
  await tf.setBackend("cpu");
  const model = foldNet();
  seedWeights(model, 100);
  randomizeBatchNorms(model, 1);
  const before = tf.memory().numTensors;
  const folded = foldForInference(model);
  assertEquals(folded.folded, [
    { conv: "c1", into: ["b1", "r1"] },
    { conv: "d2", into: ["b2", "r2"] },
    { conv: "c3", into: ["b3"] },
    { conv: "c5", into: ["b5"] },
  ]);
  const x = tf.randomNormal([3, 10, 9, 3], 0, 2, "float32", 7);
  const want = model.predict(x) as tf.Tensor;
  const inFold = tf.memory().numTensors;
  const got = folded.predict(x);
  assertEquals(tf.memory().numTensors, inFold + 1, "predict keeps only its output");
  assertEquals(got.shape, want.shape);
  const err = await relativeError(got, want);
  assert(err < 1e-5, `relative error ${err}`);
  tf.dispose([x, want, got]);
  folded.dispose();
  assertEquals(tf.memory().numTensors, before, "dispose frees the folded weights");
  assertThrows(() => folded.predict(tf.zeros([1, 10, 9, 3])), Error, "fold the model again");
  model.dispose();
});

Deno.test("foldForInference leaves a BatchNormalization over another axis and a non-linear conv alone", async () => {
  await tf.setBackend("cpu");
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, activation: "relu" }),
      tf.layers.batchNormalization(),
      tf.layers.conv2d({ filters: 4, kernelSize: 1 }),
      tf.layers.batchNormalization({ axis: 1 }),
    ],
  });
  seedWeights(model, 300);
  randomizeBatchNorms(model, 5);
  const folded = foldForInference(model);
  assertEquals(folded.folded, []);
  const x = tf.randomNormal([2, 6, 6, 2], 0, 1, "float32", 3);
  const err = await relativeError(folded.predict(x), model.predict(x) as tf.Tensor);
  assert(err < 1e-6, `relative error ${err}`);
  folded.dispose();
});

/**
 * LeNet's first layers and the pairs foldForInference runs as one op or
 * leaves: c1 (ReLU, 5×5 over one channel) → 2×2 max pool; c2 (no bias) → BN
 * → ReLU → 2×2 max pool (folded, then pooled); c3 → a max pool of stride 1,
 * c4 (tanh) → a 2×2 max pool, c5 read by a pool and the output (none pooled).
 */
function poolNet(): tf.LayersModel {
  const input = tf.input({ shape: [12, 14, 1] });
  const layer = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    l.apply(x) as tf.SymbolicTensor;
  const c1 = layer(
    tf.layers.conv2d({
      filters: 6,
      kernelSize: 5,
      padding: "same",
      activation: "relu",
      name: "c1",
    }),
    input,
  );
  const p1 = layer(tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }), c1);
  const c2 = layer(tf.layers.conv2d({ filters: 8, kernelSize: 3, useBias: false, name: "c2" }), p1);
  const b2 = layer(tf.layers.batchNormalization({ name: "b2" }), c2);
  const r2 = layer(tf.layers.reLU({ name: "r2" }), b2);
  const p2 = layer(tf.layers.maxPooling2d({ poolSize: 2, name: "p2" }), r2);
  const c3 = layer(tf.layers.conv2d({ filters: 4, kernelSize: 1, name: "c3" }), p2);
  const p3 = layer(tf.layers.maxPooling2d({ poolSize: 2, strides: 1, name: "p3" }), c3);
  const c4 = layer(
    tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: "tanh", name: "c4" }),
    p2,
  );
  const p4 = layer(tf.layers.maxPooling2d({ poolSize: 2, name: "p4" }), c4);
  const c5 = layer(tf.layers.conv2d({ filters: 4, kernelSize: 1, name: "c5" }), p2);
  const p5 = layer(tf.layers.maxPooling2d({ poolSize: 2, name: "p5" }), c5);
  const flat = (t: tf.SymbolicTensor) => layer(tf.layers.flatten(), t);
  const out = layer(tf.layers.concatenate({ name: "cat" }), [
    flat(p3),
    flat(p4),
    flat(p5),
    flat(c5),
  ]);
  return tf.model({ inputs: input, outputs: out });
}

Deno.test("foldForInference runs a convolution and the 2×2 max pool after it as one op, on wasm pooled as it is computed", async () => {
  for (const backend of ["cpu", "wasm"]) {
    if (backend === "wasm") await initWasmBackend({});
    else await tf.setBackend("cpu");
    const model = poolNet();
    seedWeights(model, 200);
    randomizeBatchNorms(model, 11);
    const before = tf.memory().numTensors;
    const folded = foldForInference(model);
    assertEquals(folded.folded, [{ conv: "c2", into: ["b2", "r2"] }]);
    assertEquals(folded.pooled, [{ conv: "c1", pool: "p1" }, { conv: "c2", pool: "p2" }]);
    const x = tf.randomNormal([5, 12, 14, 1], 0, 2, "float32", 9);
    const want = model.predict(x) as tf.Tensor;
    const inFold = tf.memory().numTensors;
    const profile = await tf.profile(() => folded.predict(x));
    const got = profile.result as tf.Tensor;
    assertEquals(tf.memory().numTensors, inFold + 1, `${backend}: predict keeps only its output`);
    const kernels = profile.kernels.map((k) => k.name);
    if (backend === "wasm") {
      assertEquals(kernels.filter((k) => k === "ZooConv2DMaxPool").length, 2, `${kernels}`);
      assertEquals(kernels.filter((k) => k === "MaxPool").length, 3, `${kernels}`);
    } else assertEquals(kernels.filter((k) => k === "MaxPool").length, 5, `${kernels}`);
    assertEquals(got.shape, want.shape);
    const err = await relativeError(got, want);
    assert(err < 1e-5, `${backend}: relative error ${err}`);
    tf.dispose([x, want, got]);
    folded.dispose();
    assertEquals(tf.memory().numTensors, before, `${backend}: dispose frees the weights it copied`);
    model.dispose();
  }
  await tf.setBackend("cpu");
});

Deno.test("foldForInference refuses a model with two inputs, saying which shapes it folds", () => {
  const a = tf.input({ shape: [4] }), b = tf.input({ shape: [4] });
  const sum = tf.layers.add().apply([a, b]) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [a, b], outputs: sum });
  assertThrows(() => foldForInference(model), TypeError, "only single-input, single-output");
});

Deno.test("MobileNetV2 folded on wasm: every BatchNormalization folded, ReLU6s fused, model.predict's numbers", async () => {
  await initWasmBackend({});
  const model = await loadNsfwjsModel("mobilenet_v2");
  const folded = foldForInference(model);
  const bns = model.layers.filter((l) => l.getClassName() === "BatchNormalization").length;
  const relus = model.layers.filter((l) => l.getClassName() === "ReLU").length;
  assertEquals(folded.folded.length, bns);
  assertEquals(folded.folded.filter((f) => f.into.length === 2).length, relus);
  const x = tf.randomUniform([2, 224, 224, 3], 0, 1, "float32", 11);
  const want = model.predict(x) as tf.Tensor;
  const got = folded.predict(x);
  const err = await relativeError(got, want);
  assert(err < 1e-4, `relative error ${err}`);
  tf.dispose([x, want, got]);
  folded.dispose();
  model.dispose();
});
