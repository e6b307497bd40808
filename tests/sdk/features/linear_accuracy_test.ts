/**
 * The linear classifiers against a tuned reference on the main job's codes:
 * zoo/lenet5's checkpoint, ReLU'd `pool1` flattened to 1,176 values,
 * Fashion-MNIST at 100 images per class. scikit-learn on the same codes
 * (standardized, `C` chosen on the validation split) reaches 80.5%
 * (Crammer–Singer SVM) and 80.6% (softmax) on the same 1,000 test images;
 * the project's classifiers must stay within half a point.
 */
import * as tf from "@tensorflow/tfjs";
import { assert } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import {
  codeExtractor,
  computeCodes,
  evaluateLinear,
  trainLinear,
} from "../../../sdk/features/mod.ts";
import { loadCheckpointModel } from "../../../zoo/_checkpoint.ts";

await initWasmBackend();

const REFERENCE = { svm: 0.805, softmax: 0.806 } as const;

Deno.test("on the main job's codes both classifiers reach the tuned scikit-learn reference within half a point", async () => {
  const dir = new URL("../../../zoo/lenet5/checkpoint/", import.meta.url);
  const model = await loadCheckpointModel(dir);
  const extractor = codeExtractor(model, "pool1", "flatten");
  const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
  const codes = async (split: "train" | "validation" | "test") =>
    await computeCodes(
      extractor.model,
      await loadBuiltin("fashion-mnist", { perClass: 100, split }),
      preprocess,
    );
  try {
    const [train, validation, test] = [
      await codes("train"),
      await codes("validation"),
      await codes("test"),
    ];
    for (const classifier of ["svm", "softmax"] as const) {
      const fit = await trainLinear(train, validation, {
        classifier,
        numClasses: 10,
        epochs: 100,
        seed: 0,
      });
      const { accuracy } = await evaluateLinear(fit.model, test);
      assert(
        accuracy >= REFERENCE[classifier] - 0.005,
        `${classifier}: ${accuracy} on the 1,000 test images, the reference ${
          REFERENCE[classifier]
        }`,
      );
    }
  } finally {
    tf.dispose([
      ...extractor.model.weights.map((w) => w.read()),
      ...model.weights.map((w) => w.read()),
    ]);
  }
});
