/**
 * Checks shared by the training loop's fused-op tests: the same loss and
 * gradients as tfjs's own layers, and a step that leaves no tensor behind.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { splitForward, trainableForward } from "../../../sdk/train/_loop.ts";

/** Gives the named layers biases in [-0.3, 0.3]: some pre-activations below 0, some above. */
export function spreadBiases(model: tf.LayersModel, names: string[]): void {
  for (const name of names) {
    const layer = model.getLayer(name);
    const [w, b] = layer.getWeights();
    layer.setWeights([w!, tf.randomUniform(b!.shape, -0.3, 0.3, "float32", 5)]);
  }
}

/** The largest difference between two tensors, and the largest magnitude of the second. */
export async function gap(a: tf.Tensor, b: tf.Tensor): Promise<[number, number]> {
  const [d, s] = tf.tidy(() => [tf.max(tf.abs(tf.sub(a, b))), tf.max(tf.abs(b))]);
  const out: [number, number] = [(await d!.data())[0]!, (await s!.data())[0]!];
  tf.dispose([d!, s!]);
  return out;
}

/**
 * Asserts that `ours` and `theirs` (one step's loss and the gradients of
 * `vars`) agree to float rounding, every gradient non-zero; disposes both.
 */
export async function assertSameStep(
  ours: ReturnType<typeof tf.variableGrads>,
  theirs: ReturnType<typeof tf.variableGrads>,
  vars: tf.Variable[],
): Promise<void> {
  const [a, b] = [(await ours.value.data())[0]!, (await theirs.value.data())[0]!];
  assert(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `loss ${a} vs ${b}`);
  for (const v of vars) {
    const [d, scale] = await gap(ours.grads[v.name]!, theirs.grads[v.name]!);
    assert(scale > 0, `${v.name}: a gradient of zeros tests nothing`);
    assert(d <= 1e-5 * scale, `${v.name}: gradients differ by ${d} (largest ${scale})`);
  }
  tf.dispose([ours.value, theirs.value, Object.values(ours.grads), Object.values(theirs.grads)]);
}

/** Asserts that a step of `loss` leaves nothing behind but its loss and gradients. */
export function assertStepLeavesNothing(loss: () => tf.Scalar, vars: tf.Variable[]): void {
  const before = tf.memory().numTensors;
  const again = tf.variableGrads(loss, vars);
  tf.dispose([again.value, Object.values(again.grads)]);
  assertEquals(tf.memory().numTensors, before, "the step left tensors behind");
}

/**
 * Asserts that the gradient registered for `kernel` (a fused convolution
 * with `FusedConv2D`'s inputs and attributes, its first output the one
 * differentiated) runs for `activation` and refuses `refused` and dilations.
 */
export function assertGradientRefuses(
  kernel: string,
  x: tf.Tensor,
  activation: string,
  refused: string,
): void {
  const filter = tf.ones([3, 3, 1, 2]) as tf.Tensor4D;
  const run = (attrs: Record<string, unknown>) => () =>
    tf.grad((t: tf.Tensor) => {
      const out = tf.engine().runKernel(kernel, { x: t, filter }, {
        strides: [1, 1],
        pad: "same",
        dataFormat: "NHWC",
        dilations: [1, 1],
        dimRoundingMode: undefined,
        activation,
        ...attrs,
      } as unknown as tf.NamedAttrMap);
      return Array.isArray(out) ? out[0]! : out;
    })(x);
  tf.dispose(run({})());
  assertThrows(run({ activation: refused }), Error, `activation "${refused}"`);
  assertThrows(run({ dilations: [2, 2] }), Error, "without dilation");
  filter.dispose();
}

/**
 * A weighted sum of a three-class `model`'s outputs on `x`, through tfjs's
 * layers (`layers`) and through the training walk (`ours`), with the
 * model's trainable variables; `weights` to dispose after.
 */
export function twoLosses(model: tf.LayersModel, x: tf.Tensor) {
  const weights = tf.tensor([1, -2, 0.5]);
  const split = splitForward(model, null);
  return {
    layers: () =>
      tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, weights)) as tf.Scalar,
    ours: () => tf.sum(tf.mul(trainableForward(split, x), weights)) as tf.Scalar,
    vars: model.trainableWeights.map((v) => v.read() as tf.Variable),
    weights,
  };
}
