/**
 * BatchNormalization without a scale or an offset (Keras' InceptionV3 has
 * `scale: false` everywhere) trains: tfjs 4.22 fails on it in training mode,
 * so the training loop normalizes those layers itself, as tfjs would.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import type { Dataset } from "../../../sdk/data/types.ts";
import { fineTuneNetwork } from "../../../sdk/train/network.ts";
import { splitForward, trainableForward } from "../../../sdk/train/_loop.ts";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";

await tf.setBackend("cpu");

function net(scale: boolean, center: boolean): tf.LayersModel {
  const input = tf.input({ name: "image", shape: [6, 6, 3] });
  const conv = tf.layers.conv2d({ name: "conv", filters: 3, kernelSize: 3, seed: 1 } as never)
    .apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: "bn", scale, center, momentum: 0.9 })
    .apply(conv) as tf.SymbolicTensor;
  const pool = tf.layers.globalAveragePooling2d({ name: "pool" }).apply(bn) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "logits", units: 2, activation: "softmax" })
    .apply(pool) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

Deno.test("a training-mode step through BatchNormalization without scale gives what tfjs gives with scale fixed at 1", async () => {
  const x = tf.randomUniform([4, 6, 6, 3], 0, 1, "float32", 3);
  const plain = net(false, true);
  const scaled = net(true, true);
  // Same weights, the scale fixed at 1.
  for (const name of ["conv", "logits"]) {
    scaled.getLayer(name).setWeights(plain.getLayer(name).getWeights());
  }
  const [beta, mean, variance] = plain.getLayer("bn").getWeights();
  scaled.getLayer("bn").setWeights([tf.onesLike(beta!), beta!, mean!, variance!]);
  const ours = trainableForward(splitForward(plain, null), x);
  const theirs = scaled.apply(x, { training: true }) as tf.Tensor;
  const diff = (await tf.max(tf.abs(tf.sub(ours, theirs))).data())[0]!;
  assert(diff < 1e-5, `outputs differ by ${diff}`);
  const [m1, v1] = plain.getLayer("bn").getWeights().slice(1);
  const [m2, v2] = scaled.getLayer("bn").getWeights().slice(2);
  assert((await tf.max(tf.abs(tf.sub(m1!, m2!))).data())[0]! < 1e-6, "moving mean");
  assert((await tf.max(tf.abs(tf.sub(v1!, v2!))).data())[0]! < 1e-6, "moving variance");
  assert((await tf.max(tf.abs(m1!)).data())[0]! > 0, "the moving mean did not move");
  tf.dispose([x, ours, theirs]);
  plain.dispose();
  scaled.dispose();
});

Deno.test("fineTuneNetwork() full trains a net whose BatchNormalization has neither scale nor offset, with flat tensor counts", async () => {
  const data: Dataset = {
    name: "noise",
    identity: "noise-6",
    classes: ["a", "b"],
    size: 8,
    imageShape: [6, 6, 3],
    counts: [4, 4],
    async *batches(n) {
      for (let i = 0; i < 8; i += n) {
        const k = Math.min(n, 8 - i);
        yield {
          xs: tf.randomUniform([k, 6, 6, 3], 0, 1, "float32", i) as tf.Tensor4D,
          ys: tf.tensor1d(Array.from({ length: k }, (_, j) => j % 2), "int32"),
        };
      }
    },
  };
  const model = net(false, false);
  const run = async () =>
    await fineTuneNetwork({
      model,
      train: data,
      strategy: "full",
      cut: "pool",
      numClasses: 2,
      preprocess: { height: 6, width: 6, channels: 3, range: [0, 1] },
      epochs: 2,
      batchSize: 4,
      microBatch: 2,
      lr: 0.01,
      seed: 0,
    });
  const first = await run();
  first.model.dispose();
  const before = tf.memory().numTensors;
  const second = await run();
  assertEquals(second.history.length, 2);
  assert(second.history.every((m) => Number.isFinite(m.trainLoss)));
  const [mean] = second.model.getLayer("bn").getWeights();
  assert((await mean!.data()).some((v) => v !== 0), "the moving mean did not move");
  second.model.dispose();
  assertEquals(tf.memory().numTensors, before);
  model.dispose();
});

/** The largest absolute difference between two tensors, relative to the larger's largest magnitude. */
async function relativeDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [d, m] = tf.tidy(
    () => [tf.max(tf.abs(tf.sub(a, b))), tf.maximum(tf.max(tf.abs(a)), tf.max(tf.abs(b)))],
  );
  const out = (await d!.data())[0]! / Math.max((await m!.data())[0]!, 1e-12);
  tf.dispose([d!, m!]);
  return out;
}

for (
  const [backend, scale, center] of [
    ["cpu", true, true],
    ["cpu", false, true],
    ["cpu", true, false],
    ["cpu", false, false],
    ["wasm", true, true],
    ["wasm", false, false],
  ] as const
) {
  Deno.test(`the training loop's BatchNormalization (scale ${scale}, center ${center}) gives tfjs's gradients for every weight on ${backend}`, async () => {
    if (backend === "wasm") await initWasmBackend({ threads: false });
    else await tf.setBackend("cpu");
    // tfjs's own training path fails without a scale or an offset, so the
    // reference is the same net with the missing ones fixed at 1 and 0 (not trained).
    const model = net(scale, center), reference = net(true, true);
    for (const name of ["conv", "logits"]) {
      reference.getLayer(name).setWeights(model.getLayer(name).getWeights());
    }
    // getWeights() gives the variables themselves: nothing here disposes them.
    const stats = model.getLayer("bn").getWeights().slice(-2);
    // Channels of different scale and offset, so that each term of the gradient matters.
    const g2 = tf.tensor1d([0.5, 2, -1.5]), b2 = tf.tensor1d([0.3, -0.7, 1.1]);
    const one = tf.ones([3]), zero = tf.zeros([3]);
    model.getLayer("bn").setWeights([...(scale ? [g2] : []), ...(center ? [b2] : []), ...stats]);
    reference.getLayer("bn").setWeights([scale ? g2 : one, center ? b2 : zero, ...stats]);
    const x = tf.randomUniform([5, 6, 6, 3], -1, 2, "float32", 7);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 1, 0, 1], "int32"), 2);
    const lossOf = (probs: tf.Tensor) => tf.losses.logLoss(labels, probs) as tf.Scalar;
    const split = splitForward(model, null);
    const ours = tf.variableGrads(
      () => lossOf(trainableForward(split, x)),
      model.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const theirs = tf.variableGrads(
      () => lossOf(reference.apply(x, { training: true }) as tf.Tensor),
      reference.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    assert(Math.abs((await ours.value.data())[0]! - (await theirs.value.data())[0]!) < 1e-6);
    const byLayer = (m: tf.LayersModel, grads: tf.NamedTensorMap) =>
      new Map(
        m.trainableWeights.map((
          w,
        ) => [`${w.originalName}`, grads[(w.read() as tf.Variable).name]!]),
      );
    const a = byLayer(model, ours.grads), b = byLayer(reference, theirs.grads);
    assertEquals(a.size, 4 + Number(scale) + Number(center));
    for (const [name, g] of a) {
      if (name === "conv/bias") {
        // Before a batch's normalization a bias cancels out: its gradient is zero.
        for (const t of [g, b.get(name)!]) assert((await tf.max(tf.abs(t)).data())[0]! < 1e-5);
        continue;
      }
      const diff = await relativeDiff(g, b.get(name)!);
      assert(diff < 1e-4, `${name}: gradients differ by ${diff} of their largest value`);
      assert((await tf.max(tf.abs(g)).data())[0]! > 1e-6, `${name}: a zero gradient tests nothing`);
    }
    // The moving statistics moved as tfjs moves them.
    const [m1, v1] = model.getLayer("bn").getWeights().slice(-2);
    const [m2, v2] = reference.getLayer("bn").getWeights().slice(-2);
    assert((await relativeDiff(m1!, m2!)) < 1e-6, "moving mean");
    assert((await relativeDiff(v1!, v2!)) < 1e-6, "moving variance");
    tf.dispose([x, labels, g2, b2, one, zero, ours.value, theirs.value, ours.grads, theirs.grads]);
    model.dispose();
    reference.dispose();
  });
}

/** A conv → ReLU6 → pool → softmax net: the training forward runs its ReLU6 as one operation. */
function relu6Net(): tf.LayersModel {
  const input = tf.input({ name: "image", shape: [5, 5, 2] });
  const conv = tf.layers.conv2d({ name: "conv", filters: 4, kernelSize: 3, seed: 2 } as never)
    .apply(input) as tf.SymbolicTensor;
  const relu = tf.layers.reLU({ name: "relu6", maxValue: 6 }).apply(conv) as tf.SymbolicTensor;
  const pool = tf.layers.globalAveragePooling2d({ name: "pool" }).apply(relu) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "logits", units: 2, activation: "softmax" })
    .apply(pool) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

for (const backend of ["cpu", "wasm"]) {
  Deno.test(`a bounded ReLU trains as one operation with tfjs's ReLU-then-clip values and gradients (${backend})`, async () => {
    if (backend === "wasm") await initWasmBackend({ threads: false });
    else await tf.setBackend("cpu");
    const model = relu6Net();
    // Inputs that put the ReLU's input below 0, inside (0, 6], exactly at 0 and 6, and above 6.
    const x = tf.randomUniform([3, 5, 5, 2], -4, 4, "float32", 9);
    const conv = model.getLayer("conv");
    const [w, b] = conv.getWeights();
    conv.setWeights([w!.mul(3), b!]);
    const exact = tf.tensor([0, 6, -1, 7], [4]);
    const split = splitForward(model, null);
    const layersLoss = () =>
      tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, tf.tensor([1, -2])));
    const oursLoss = () => tf.sum(tf.mul(trainableForward(split, x), tf.tensor([1, -2])));
    const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    const theirs = tf.variableGrads(layersLoss as () => tf.Scalar, vars);
    const profile = await tf.profile(() => {
      const run = tf.variableGrads(oursLoss as () => tf.Scalar, vars);
      tf.dispose(Object.values(run.grads));
      return run.value;
    });
    const kernels = profile.kernelNames;
    const ours = tf.variableGrads(oursLoss as () => tf.Scalar, vars);
    assertEquals(await ours.value.data(), await theirs.value.data());
    for (const v of vars) {
      const d =
        (await tf.max(tf.abs(tf.sub(ours.grads[v.name]!, theirs.grads[v.name]!))).data())[0]!;
      assert(d < 1e-6, `${v.name}: gradients differ by ${d}`);
    }
    assert(!kernels.includes("Relu"), `the ReLU6 ran as relu then clip: ${kernels.join(" ")}`);
    // At 0 and 6 themselves, and either side: the gradient of the one operation is dy · [0 < x ≤ 6].
    const relu = model.getLayer("relu6");
    const g = tf.grad((t: tf.Tensor) =>
      trainableForward(splitForward(reluOnly(relu), null), t).sum()
    );
    const want = tf.grad((t: tf.Tensor) => (relu.apply(t) as tf.Tensor).sum());
    const at = exact.reshape([1, 1, 2, 2]);
    assertEquals(await g(at).data(), await want(at).data());
    assertEquals(await g(at).data(), new Float32Array([0, 1, 0, 0]));
    tf.dispose([
      x,
      exact,
      at,
      ours.value,
      theirs.value,
      Object.values(ours.grads),
      Object.values(theirs.grads),
    ]);
    model.dispose();
  });
}

/** A model of one ReLU layer (with `relu`'s config) on a [1, 2, 2] input. */
function reluOnly(layer: tf.layers.Layer): tf.LayersModel {
  const input = tf.input({ name: "in", shape: [1, 2, 2] });
  const config = layer.getConfig() as { maxValue?: number };
  const out = tf.layers.reLU({ name: "only", maxValue: config.maxValue ?? 6 }).apply(
    input,
  ) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}
