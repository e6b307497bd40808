/**
 * The training loop runs a Conv2D layer and the 2×2 max pooling that alone
 * reads it as one `ZooConv2DMaxPoolPositions` on wasm, whose gradient takes
 * the filter's from the pooled gradient (`ZooConv2DMaxPoolFilterGrad`) and
 * puts it back at the maxima for the input's (`ZooMaxPoolScatter`), with
 * the loss and gradients of the two ops; other backends, and a convolution
 * that other layers also read, run the two ops.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { splitForward, trainableForward } from "../../../sdk/train/_loop.ts";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import {
  assertGradientRefuses,
  assertSameStep,
  assertStepLeavesNothing,
  gap,
  spreadBiases,
  twoLosses,
} from "./_parity.ts";
import {
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  MAX_POOL_SCATTER_KERNEL,
} from "../../../sdk/devices/kernels.ts";

type T = tf.SymbolicTensor;
const on = (layer: tf.layers.Layer, x: T | T[]) => layer.apply(x) as T;

/**
 * c1 (one channel, 'same', ReLU) → p1; c2 (18 channels: two words of
 * positions, ReLU) → p2; c3 (1×1, linear, no bias) → p3 over an odd 3×3;
 * c4 (ReLU), read by p4 and by a global average: not fused; a dense softmax
 * over the three.
 */
function pooledNet(): tf.LayersModel {
  const input = tf.input({ name: "image", shape: [12, 12, 1] });
  const conv = (name: string, filters: number, kernelSize: number, more = {}) =>
    tf.layers.conv2d({
      name,
      filters,
      kernelSize,
      padding: "same",
      activation: "relu",
      seed: name.length + filters,
      ...more,
    } as never);
  const pool = (name: string) => tf.layers.maxPooling2d({ name, poolSize: 2 });
  const p1 = on(pool("p1"), on(conv("c1", 6, 5), input));
  const p2 = on(pool("p2"), on(conv("c2", 18, 3), p1));
  const p3 = on(pool("p3"), on(conv("c3", 4, 1, { activation: "linear", useBias: false }), p2));
  const c4 = on(conv("c4", 3, 3), p1);
  const joined = on(tf.layers.concatenate({ name: "joined" }), [
    on(tf.layers.flatten({ name: "f3" }), p3),
    on(tf.layers.flatten({ name: "f4" }), on(pool("p4"), c4)),
    on(tf.layers.globalAveragePooling2d({ name: "gap" }), c4),
  ]);
  const out = on(
    tf.layers.dense({ name: "logits", units: 3, activation: "softmax", seed: 9 } as never),
    joined,
  );
  return tf.model({ inputs: input, outputs: out });
}

const count = (names: string[], name: string) => names.filter((n) => n === name).length;

for (const backend of ["wasm", "cpu"]) {
  Deno.test(`a Conv2D and the max pooling that alone reads it train as one op on wasm, as two elsewhere, with the same loss and gradients (${backend})`, async () => {
    if (backend === "wasm") await initWasmBackend({ threads: false });
    else await tf.setBackend("cpu");
    const model = pooledNet();
    spreadBiases(model, ["c1", "c2", "c4"]);
    const x = tf.randomUniform([4, 12, 12, 1], -1, 1, "float32", 7);
    const { layers: layersLoss, ours: oursLoss, vars, weights } = twoLosses(model, x);
    const step = () => {
      const run = tf.variableGrads(oursLoss, vars);
      tf.dispose(Object.values(run.grads));
      return run.value;
    };
    const ours = (await tf.profile(step)).kernels.map((k) => k.name);
    const fused = backend === "wasm" ? 3 : 0;
    assertEquals(count(ours, CONV_MAX_POOL_POSITIONS_KERNEL), fused, ours.join(" "));
    // c1's filter gradient (one channel) comes from the pooled one, and its output's gradient
    // is never made (the image needs none); c2 and c3 make theirs once, for both gradients.
    assertEquals(count(ours, CONV_MAX_POOL_FILTER_GRAD_KERNEL), fused && 1, ours.join(" "));
    assertEquals(count(ours, MAX_POOL_SCATTER_KERNEL), fused && 2, ours.join(" "));
    assertEquals(count(ours, "Conv2DBackpropFilter"), 4 - (fused && 1), ours.join(" "));
    // p4 pools a convolution that the global average also reads: it stays a MaxPool.
    assertEquals(count(ours, "MaxPool"), 4 - fused, ours.join(" "));
    assertEquals(count(ours, "MaxPoolGrad"), 4 - fused, ours.join(" "));
    await assertSameStep(
      tf.variableGrads(oursLoss, vars),
      tf.variableGrads(layersLoss, vars),
      vars,
    );
    // The positions included.
    assertStepLeavesNothing(oursLoss, vars);
    tf.dispose([x, weights]);
    model.dispose();
  });
}

Deno.test("on wasm the pooled convolution's gradient equals the two ops' bit for bit, except the bias's order of summing", async () => {
  await initWasmBackend({ threads: false });
  const model = pooledNet();
  // Whole-number images and weights in eighths: every convolution sums exactly, in any order
  // (XNNPACK's, on one thread, for the two ops' FusedConv2D; the compiled kernel's here).
  for (const layer of model.layers) {
    const w = layer.getWeights();
    if (w.length > 0) {
      layer.setWeights(w.map((t) => tf.tidy(() => tf.div(tf.round(tf.mul(t, 8)), 8))));
    }
  }
  const x = tf.round(tf.randomUniform([3, 12, 12, 1], -3, 3, "float32", 11));
  const split = splitForward(model, null);
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const loss = () => tf.sum(tf.square(trainableForward(split, x))) as tf.Scalar;
  const pooled = tf.variableGrads(loss, vars);
  // The same walk with the kernel gone: FusedConv2D, then MaxPool and its gradient.
  const config = tf.getKernel(CONV_MAX_POOL_POSITIONS_KERNEL, "wasm")!;
  tf.unregisterKernel(CONV_MAX_POOL_POSITIONS_KERNEL, "wasm");
  let twoOps: ReturnType<typeof tf.variableGrads>;
  try {
    twoOps = tf.variableGrads(loss, vars);
  } finally {
    tf.registerKernel(config);
  }
  for (const v of vars) {
    const [got, want] = [await pooled.grads[v.name]!.data(), await twoOps.grads[v.name]!.data()];
    if (v.name.includes("bias")) {
      const [d, scale] = await gap(pooled.grads[v.name]!, twoOps.grads[v.name]!);
      assert(d <= 1e-6 * scale, `${v.name}: ${d} (largest ${scale})`);
    } else {
      assertEquals(got, want, v.name);
    }
  }
  tf.dispose([
    pooled.value,
    twoOps.value,
    Object.values(pooled.grads),
    Object.values(twoOps.grads),
  ]);
  tf.dispose(x);
  model.dispose();
});

Deno.test("the pooled convolution's registered gradient refuses activations and dilations it does not fuse", async () => {
  await initWasmBackend({ threads: false });
  const model = pooledNet();
  const split = splitForward(model, null);
  const x = tf.zeros([1, 12, 12, 1]);
  // Registers the gradient, through a training forward.
  tf.dispose(trainableForward(split, x));
  assertGradientRefuses(CONV_MAX_POOL_POSITIONS_KERNEL, x, "relu", "relu6");
  x.dispose();
  model.dispose();
});
