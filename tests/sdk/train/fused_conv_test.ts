/**
 * The training loop runs a Conv2D layer's bias and ReLU inside one
 * `FusedConv2D` (tfjs, under a gradient tape, runs `Conv2D`, `Add` and
 * `Relu`), with the gradients tfjs's fused convolution has, and skips the
 * gradient of the image under the first layer.
 */
import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import { splitForward, trainableForward } from "../../../sdk/train/_loop.ts";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import {
  assertGradientRefuses,
  assertSameStep,
  assertStepLeavesNothing,
  spreadBiases,
  twoLosses,
} from "./_parity.ts";

/**
 * Convolutions with a bias and a ReLU ('same', stride 1; one input
 * channel), without a bias (stride 2, 'valid'), with a linear activation
 * (1×1), then a dense softmax.
 */
function convNet(): tf.LayersModel {
  const input = tf.input({ name: "image", shape: [9, 9, 1] });
  let x = tf.layers.conv2d({
    name: "c1",
    filters: 6,
    kernelSize: 5,
    padding: "same",
    activation: "relu",
    seed: 1,
  } as never).apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({
    name: "c2",
    filters: 5,
    kernelSize: 3,
    strides: 2,
    useBias: false,
    activation: "relu",
    seed: 2,
  } as never).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: "c3", filters: 4, kernelSize: 1, seed: 3 } as never)
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: "flat" }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "logits", units: 3, activation: "softmax", seed: 4 } as never)
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** The names of the kernels `f` runs, in order, one per call. */
async function kernelsOf(f: () => tf.Tensor): Promise<string[]> {
  return (await tf.profile(f)).kernels.map((k) => k.name);
}

const count = (names: string[], name: string) => names.filter((n) => n === name).length;

for (const backend of ["cpu", "wasm"]) {
  Deno.test(`a Conv2D layer's bias and ReLU train inside one FusedConv2D, with tfjs's loss and gradients (${backend})`, async () => {
    if (backend === "wasm") await initWasmBackend({ threads: false });
    else await tf.setBackend("cpu");
    const model = convNet();
    spreadBiases(model, ["c1", "c3"]);
    const x = tf.randomUniform([4, 9, 9, 1], -1, 1, "float32", 7);
    const { layers: layersLoss, ours: oursLoss, vars, weights } = twoLosses(model, x);
    const step = (loss: () => tf.Scalar) => () => {
      const run = tf.variableGrads(loss, vars);
      tf.dispose(Object.values(run.grads));
      return run.value;
    };
    const theirKernels = await kernelsOf(step(layersLoss));
    const ourKernels = await kernelsOf(step(oursLoss));
    await assertSameStep(
      tf.variableGrads(oursLoss, vars),
      tf.variableGrads(layersLoss, vars),
      vars,
    );
    // tfjs runs the two ReLU convolutions as Conv2D, then Add (c1's bias) and Relu, and the linear
    // one (c3) as FusedConv2D; here, all three are one FusedConv2D each. Neither computes the
    // image's gradient under c1: two input gradients (c2's and c3's), as tfjs has.
    assertEquals(count(theirKernels, "Conv2D"), 2, theirKernels.join(" "));
    assertEquals(count(theirKernels, "Relu"), 2, theirKernels.join(" "));
    assertEquals(count(ourKernels, "FusedConv2D"), 3, ourKernels.join(" "));
    assertEquals(count(ourKernels, "Conv2D") + count(ourKernels, "Relu"), 0, ourKernels.join(" "));
    assertEquals(count(ourKernels, "Add"), count(theirKernels, "Add") - 1, "c1's bias Add");
    assertEquals(count(ourKernels, "Conv2DBackpropInput"), 2, ourKernels.join(" "));
    assertEquals(count(theirKernels, "Conv2DBackpropInput"), 2, theirKernels.join(" "));
    assertEquals(count(ourKernels, "Conv2DBackpropFilter"), 3, ourKernels.join(" "));
    assertStepLeavesNothing(oursLoss, vars);
    tf.dispose([x, weights]);
    model.dispose();
  });
}

Deno.test("FusedConv2D's registered gradient refuses activations and dilations it does not fuse", async () => {
  await tf.setBackend("cpu");
  const model = convNet();
  const split = splitForward(model, null);
  const x = tf.zeros([1, 9, 9, 1]);
  // Registers the gradient, through a training forward.
  tf.dispose(trainableForward(split, x));
  assertGradientRefuses("FusedConv2D", x, "linear", "elu");
  x.dispose();
  model.dispose();
});
