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
