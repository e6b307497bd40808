/** freeze(): layers up to the boundary keep their weights under model.fit, the rest train. */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { freeze } from "../../../sdk/surgery/freeze.ts";

await tf.setBackend("cpu");

/** conv1-bn1-relu1-conv2-flat-logits on 8×8×1, seeded, so each run starts from the same weights. */
function convnet(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  /** A 4-filter 3×3 convolution; the first layer gives the input shape. */
  const conv = (name: string, seed: number, input: { inputShape?: [number, number, number] }) =>
    tf.layers.conv2d({ name, filters: 4, kernelSize: 3, kernelInitializer: init(seed), ...input });
  return tf.sequential({
    name: "bn_net",
    layers: [
      conv("conv1", 1, { inputShape: [8, 8, 1] }),
      tf.layers.batchNormalization({ name: "bn1" }),
      tf.layers.reLU({ name: "relu1" }),
      conv("conv2", 2, {}),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({
        name: "logits",
        units: 3,
        activation: "softmax",
        kernelInitializer: init(3),
      }),
    ],
  });
}

function weightsOf(model: tf.LayersModel, layer: string): Float32Array[] {
  return model.getLayer(layer).getWeights().map((w) => w.dataSync() as Float32Array);
}

async function fitOnce(model: tf.LayersModel): Promise<void> {
  model.compile({ optimizer: tf.train.sgd(0.5), loss: "sparseCategoricalCrossentropy" });
  // Inputs far from the moving statistics' start (mean 0, variance 1), so batch statistics would move them.
  const xs = tf.randomUniform([16, 8, 8, 1], 3, 9, "float32", 7);
  const ys = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0], "float32");
  await model.fit(xs, ys, { epochs: 2, batchSize: 8, verbose: 0 });
  tf.dispose([xs, ys]);
}

Deno.test("freeze() keeps the layers up to the boundary, BatchNormalization statistics included, under model.fit", async () => {
  const model = convnet();
  const result = freeze(model, { until: "relu1" });
  assertEquals(result.frozen, ["conv1", "bn1", "relu1"]);
  assertEquals(result.trainable, ["conv2", "flat", "logits"]);
  assertEquals(model.trainableWeights.map((w) => w.name), [
    "conv2/kernel",
    "conv2/bias",
    "logits/kernel",
    "logits/bias",
  ]);
  const before = { conv1: weightsOf(model, "conv1"), bn1: weightsOf(model, "bn1") };
  const conv2 = weightsOf(model, "conv2");
  await fitOnce(model);
  assertEquals(weightsOf(model, "conv1"), before.conv1);
  // gamma, beta, moving mean, moving variance: all as before.
  assertEquals(weightsOf(model, "bn1"), before.bn1);
  assertNotEquals(weightsOf(model, "conv2")[0], conv2[0]);
  model.dispose();
});

Deno.test("a BatchNormalization layer made non-trainable by hand still moves its statistics, which freeze() prevents", async () => {
  const model = convnet();
  for (const name of ["conv1", "bn1"]) model.getLayer(name).trainable = false;
  const [gamma, beta, mean] = weightsOf(model, "bn1");
  await fitOnce(model);
  const after = weightsOf(model, "bn1");
  assertEquals([after[0], after[1]], [gamma, beta]);
  assertNotEquals(after[2], mean, "tfjs runs a non-trainable BatchNormalization in training mode");
  model.dispose();
});

Deno.test("freeze() moves the boundary when called again and unpins BatchNormalization", async () => {
  const model = convnet();
  freeze(model, { until: "relu1" });
  const again = freeze(model, { until: "conv1" });
  assertEquals(again.frozen, ["conv1"]);
  assert(model.getLayer("bn1").trainable);
  const [gamma, , mean] = weightsOf(model, "bn1");
  await fitOnce(model);
  const [gammaAfter, , meanAfter] = weightsOf(model, "bn1");
  assertNotEquals(gammaAfter, gamma);
  assertNotEquals(meanAfter, mean);
  model.dispose();
});

Deno.test("freeze() refuses an unknown layer and names the closest one", () => {
  const model = convnet();
  const e = assertThrows(() => freeze(model, { until: "relu_1" }), RangeError);
  assertEquals(
    e.message,
    'Cannot freeze "bn_net" until "relu_1": there is no such layer: did you mean "relu1"?',
  );
  assert(model.layers.every((l) => l.trainable), "nothing was frozen");
  model.dispose();
});
