import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import {
  loadNsfwjsModel,
  type NsfwjsModelName,
  nsfwjsPreprocessing,
  readNsfwjsModel,
} from "../../zoo/nsfwjs/source.ts";

await tf.setBackend("cpu");

Deno.test("readNsfwjsModel() returns the model.json and exactly the bytes its manifest lists", async () => {
  for (const name of ["mobilenet_v2", "inception_v3"] as const) {
    const { modelJson, weightData } = await readNsfwjsModel(name);
    let expected = 0;
    for (const g of modelJson.weightsManifest) {
      for (const w of g.weights) {
        assertEquals(w.quantization?.dtype, "uint8");
        expected += w.shape.reduce((a, b) => a * b, 1);
      }
    }
    assertEquals(weightData.byteLength, expected, name);
  }
});

Deno.test("loadNsfwjsModel() loads MobileNetV2 with a [null, 5] softmax output", async () => {
  const model = await loadNsfwjsModel("mobilenet_v2");
  try {
    assertEquals(model.inputs[0]?.shape, [null, 224, 224, 3]);
    assertEquals(model.outputs[0]?.shape, [null, 5]);
    const y = tf.tidy(() => model.predict(tf.fill([1, 224, 224, 3], 0.5)) as tf.Tensor);
    const p = Array.from(y.dataSync());
    y.dispose();
    assertEquals(p.length, 5);
    assertAlmostEquals(p.reduce((a, b) => a + b, 0), 1, 1e-4);
    assert(p.every((v) => Number.isFinite(v) && v >= 0));
  } finally {
    model.dispose();
  }
});

Deno.test("readNsfwjsModel() rejects an unknown checkpoint name", async () => {
  await assertRejects(
    () => readNsfwjsModel("resnet" as NsfwjsModelName),
    RangeError,
    'Cannot read nsfwjs model "resnet"',
  );
});

Deno.test("nsfwjsPreprocessing() gives the input size each checkpoint was trained at", () => {
  assertEquals(nsfwjsPreprocessing("mobilenet_v2").inputSize, 224);
  assertEquals(nsfwjsPreprocessing("inception_v3").inputSize, 299);
  assertEquals(nsfwjsPreprocessing("inception_v3").valueRange, [0, 1]);
});
