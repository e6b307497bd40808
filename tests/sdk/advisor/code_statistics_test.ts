import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import { analyze } from "../../../core/arch/analyze.ts";
import { loadBuiltin } from "../../../sdk/data/mod.ts";
import { lenet5, resnetMini, vggish } from "../../../zoo/_recipes.ts";
import { codeStatistics } from "../../../sdk/advisor/similarity.ts";
import { readNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";

await tf.setBackend("cpu");

const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
/** One MNIST training image per class, for the tests that need codes but not their values. */
const onePerClass = await loadBuiltin("mnist", { split: "train", perClass: 1, seed: 0 });

Deno.test("analyze().classifierCut is the representation before the classifier, past Dropout", async () => {
  const models = [lenet5(), vggish(), resnetMini()];
  try {
    assertEquals(models.map((m) => analyze(m).classifierCut), ["fc2", "fc1", "pool"]);
  } finally {
    models.forEach((m) => m.dispose());
  }
  const { modelJson } = await readNsfwjsModel("mobilenet_v2");
  assertEquals(analyze(modelJson).classifierCut, "dense_2");
});

Deno.test("codeStatistics() equals the mean and std of the ReLU'd codes computed in one piece", async () => {
  const model = lenet5();
  const data = await loadBuiltin("mnist", { split: "train", perClass: 3, seed: 0 });
  try {
    const before = tf.memory().numTensors;
    const stats = await codeStatistics(
      model,
      "fc1",
      data,
      preprocess,
      { batchSize: 7 },
      "mnist train, 3 per class",
    );
    assertEquals(tf.memory().numTensors, before);
    assertEquals([stats.layer, stats.dim, stats.count], ["fc1", 120, 30]);
    assertEquals(stats.dataset, "mnist train, 3 per class");
    const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer("fc1").output });
    let all: tf.Tensor | null = null;
    for await (const { xs, ys } of data.batches(30, { preprocess })) {
      all = tf.relu(sub.predict(xs) as tf.Tensor);
      tf.dispose([xs, ys]);
    }
    const { mean, variance } = tf.moments(all!, 0);
    const [m, v] = [await mean.data(), await variance.data()];
    tf.dispose([all!, mean, variance]);
    for (let i = 0; i < 120; i++) {
      assertAlmostEquals(stats.mean[i]!, m[i]!, 1e-4 + 1e-4 * Math.abs(m[i]!));
      assertAlmostEquals(stats.std[i]!, Math.sqrt(v[i]!), 1e-3);
    }
  } finally {
    model.dispose();
  }
});

Deno.test("codeStatistics() average-pools spatial codes to one value per channel", async () => {
  const model = resnetMini();
  try {
    const spatial = await codeStatistics(model, "stage3_out", onePerClass, preprocess);
    const pooled = await codeStatistics(model, "pool", onePerClass, preprocess);
    assertEquals(spatial.dim, 64);
    for (let i = 0; i < 64; i++) {
      assertAlmostEquals(spatial.mean[i]!, pooled.mean[i]!, 1e-4);
      assertAlmostEquals(spatial.std[i]!, pooled.std[i]!, 1e-4);
    }
  } finally {
    model.dispose();
  }
});

Deno.test("codeStatistics() rejects a layer the model does not have", async () => {
  const model = lenet5();
  await assertRejects(
    () => codeStatistics(model, "fc9", onePerClass, preprocess),
    RangeError,
    '"fc9"',
  );
  model.dispose();
});
