import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import {
  CONVNET_TRAINING_KERNELS,
  kernelsUsed,
  missingKernels,
} from "../../../sdk/devices/kernels.ts";
import { mobilenetV2Small, resnetSmall } from "./_models.ts";
import { lenet5 } from "../../../zoo/_recipes.ts";
import { relativeError, seeded, withSeededRandom } from "./_compare.ts";

// One thread unless ZOO_WASM_THREADS says otherwise (wasm_threads_test.ts runs
// this file again on two threads, where every convolution runs on the SIMD pool).
await initWasmBackend(Deno.env.get("ZOO_WASM_THREADS") === undefined ? { threads: false } : {});

type Build = () => tf.LayersModel;

/** Trains a fresh copy of `build()` from `weights` for `steps` SGD-with-momentum steps; returns the weights after. */
async function train(
  backend: string,
  build: Build,
  weights: Float32Array[],
  xs: Float32Array,
  ys: Float32Array,
  steps: number,
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const model = build();
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(weights[i]!, w.shape)));
  model.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: "categoricalCrossentropy" });
  const inShape = model.inputs[0]!.shape.slice(1) as number[];
  const classes = model.outputs[0]!.shape[1] as number;
  const batch = ys.length / classes;
  const x = tf.tensor(xs, [batch, ...inShape]), y = tf.tensor(ys, [batch, classes]);
  for (let i = 0; i < steps; i++) await model.trainOnBatch(x, y);
  const after = model.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([x, y]);
  model.dispose();
  return after;
}

/**
 * The value a weight is compared by. A BatchNormalization moving statistic
 * holds only (1 − momentum) of each step's batch statistic on top of its
 * initial value, so after a few steps it is small next to the batch statistic
 * it averages, and a discrepancy there looks large against it. Compare the
 * averaged batch statistic instead: (moving − initial·mᵏ) / (1 − mᵏ).
 */
function comparable(
  values: Float32Array,
  initial: Float32Array,
  momentum: number | undefined,
  steps: number,
): Float32Array {
  if (momentum === undefined) return values;
  const decay = momentum ** steps;
  return values.map((v, j) => (v - initial[j]! * decay) / (1 - decay));
}

/** The BatchNormalization momentum of each of the model's weights that is a moving statistic. */
function movingMomenta(model: tf.LayersModel): (number | undefined)[] {
  const out: (number | undefined)[] = [];
  for (const layer of model.layers) {
    const momentum = (layer as unknown as { momentum?: number }).momentum;
    for (const w of layer.weights) {
      const moving = layer.getClassName() === "BatchNormalization" && !w.trainable;
      out.push(moving ? momentum : undefined);
    }
  }
  return out;
}

async function compareTraining(build: Build, batch: number, steps: number): Promise<number> {
  await tf.setBackend("cpu");
  // Seeded initial weights: the comparison is the same on every run. With
  // fresh random ones, a rare draw (a ReLU6 input within float noise of a
  // kink) let the two backends' gradients part, once in many runs.
  const model = withSeededRandom(20261203, build);
  const initial = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const momenta = movingMomenta(model);
  assertEquals(momenta.length, initial.length);
  const inShape = model.inputs[0]!.shape.slice(1) as number[];
  const classes = model.outputs[0]!.shape[1] as number;
  model.dispose();
  const xs = seeded([batch, ...inShape], 1);
  const ys = new Float32Array(batch * classes);
  for (let i = 0; i < batch; i++) ys[i * classes + (i % classes)] = 1;
  const onCpu = await train("cpu", build, initial, xs, ys, steps);
  const onWasm = await train("wasm", build, initial, xs, ys, steps);
  assertEquals(onWasm.length, onCpu.length);
  let worst = 0;
  for (const [i, raw] of onWasm.entries()) {
    // Relative to the weight's scale, with an absolute floor for weights that
    // stay near zero (a BatchNormalization beta followed by another one gets a
    // zero gradient, so both backends hold float noise there).
    const w = comparable(raw, initial[i]!, momenta[i], steps);
    const expected = comparable(onCpu[i]!, initial[i]!, momenta[i], steps);
    const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const err = relativeError(w, expected) * (scale || 1);
    const bound = 1e-3 * scale + 1e-5;
    worst = Math.max(worst, err / bound);
    assert(err <= bound, `weight ${i}: error ${err} at scale ${scale} after ${steps} steps`);
  }
  return worst;
}

Deno.test("a LeNet-style CNN trains on wasm to the same weights as on cpu", async () => {
  await compareTraining(() => lenet5(), 8, 3);
});

Deno.test("a ResNet-style CNN with BatchNormalization trains on wasm to the same weights as on cpu", async () => {
  await compareTraining(() => resnetSmall([16, 16, 3], 5), 8, 3);
});

Deno.test("a MobileNetV2-style inverted-residual CNN trains on wasm to the same weights as on cpu", async () => {
  await compareTraining(() => mobilenetV2Small([16, 16, 3], 5), 8, 3);
});

Deno.test("missingKernels() finds nothing missing on wasm for the kernels a convnet training step records", async () => {
  await tf.setBackend("cpu");
  const model = mobilenetV2Small();
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
  const x = tf.zeros([2, 16, 16, 3]), y = tf.oneHot(tf.tensor1d([0, 1], "int32"), 5);
  const used = await kernelsUsed(() => model.trainOnBatch(x, y));
  tf.dispose([x, y]);
  model.dispose();
  assert(used.includes("DepthwiseConv2dNativeBackpropFilter"), used.join(" "));
  assertEquals(missingKernels("wasm", used), []);
  assertEquals(missingKernels("wasm", CONVNET_TRAINING_KERNELS), []);
  assertEquals(missingKernels("wasm", ["NoSuchKernel", "Add"]), ["NoSuchKernel"]);
});

// ~30 s on a quiet 2-core machine (the cpu backend's MobileNetV2 step), ~100 s on a busy one.
Deno.test({
  name: "one step of the real MobileNetV2 (nsfwjs) on wasm matches cpu",
  ignore: Deno.env.get("ZOO_SLOW_TESTS") !== "1",
}, async () => {
  const { loadNsfwjsModel } = await import("../../../zoo/nsfwjs/source.ts");
  await tf.setBackend("cpu");
  const reference = await loadNsfwjsModel("mobilenet_v2");
  const initial = reference.getWeights().map((w) => w.dataSync() as Float32Array);
  reference.dispose();
  const xs = seeded([2, 224, 224, 3], 9).map((v) => v / 3 + 0.5);
  const ys = new Float32Array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
  const after: Float32Array[][] = [];
  for (const backend of ["cpu", "wasm"]) {
    await tf.setBackend(backend);
    const model = await loadNsfwjsModel("mobilenet_v2");
    // The head's Dropout draws different masks on each backend; switch it off.
    for (const layer of model.layers) {
      if (layer.getClassName() === "Dropout") (layer as unknown as { rate: number }).rate = 0;
    }
    model.compile({ optimizer: tf.train.sgd(0.01), loss: "categoricalCrossentropy" });
    const x = tf.tensor(xs, [2, 224, 224, 3]), y = tf.tensor(ys, [2, 5]);
    await model.trainOnBatch(x, y);
    after.push(model.getWeights().map((w) => w.dataSync() as Float32Array));
    tf.dispose([x, y]);
    model.dispose();
  }
  const [onCpu, onWasm] = after as [Float32Array[], Float32Array[]];
  let changed = 0;
  for (const [i, w] of onWasm.entries()) {
    const expected = onCpu[i]!;
    const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const err = relativeError(w, expected) * (scale || 1);
    assert(err <= 1e-3 * scale + 1e-5, `weight ${i}: error ${err} at scale ${scale}`);
    if (relativeError(expected, initial[i]!) > 0) changed++;
  }
  assert(changed > onCpu.length / 2, `only ${changed} of ${onCpu.length} weights changed`);
});
