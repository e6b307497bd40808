/** cutAt(): the cut model computes what the checkpoint computes at the cut, and refuses other layers. */
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { cutAt } from "../../../sdk/surgery/cut.ts";

/** A small residual convnet: the add layer is a cut point, the layers inside the block are not. */
function residualNet(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 2], name: "image" });
  const stem = tf.layers.conv2d({
    name: "stem",
    filters: 4,
    kernelSize: 3,
    padding: "same",
    activation: "relu",
    kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
  }).apply(input) as tf.SymbolicTensor;
  const inner = tf.layers.conv2d({
    name: "inner",
    filters: 4,
    kernelSize: 3,
    padding: "same",
    kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
  }).apply(stem) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "sum" }).apply([stem, inner]) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: "pool" }).apply(sum) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "logits", units: 3, activation: "softmax" })
    .apply(pooled) as tf.SymbolicTensor;
  return tf.model({ name: "resnetlet", inputs: input, outputs: out });
}

Deno.test("cutAt() gives the checkpoint's own activations at the cut, on fresh layers", () => {
  const net = residualNet();
  const cut = cutAt(net, "sum");
  assertEquals(cut.keptLayers, ["stem", "inner", "sum"]);
  assertEquals(cut.model.outputs[0]!.shape, [null, 8, 8, 4]);
  assertEquals(cut.nonNegative, false);
  assert(cut.model.getLayer("stem") !== net.getLayer("stem"), "the cut has its own layers");
  const x = tf.randomUniform([2, 8, 8, 2], -1, 1, "float32", 7);
  const reference = tf.model({ inputs: net.inputs, outputs: net.getLayer("sum").output });
  const want = (reference.predict(x) as tf.Tensor).dataSync();
  const got = (cut.model.predict(x) as tf.Tensor).dataSync();
  assertEquals(got.length, 2 * 8 * 8 * 4);
  got.forEach((v, i) => assertAlmostEquals(v, want[i]!, 1e-5));
  // The copies are independent: disposing the cut leaves the checkpoint usable.
  cut.model.dispose();
  assertEquals((net.predict(x) as tf.Tensor).shape, [2, 3]);
  net.dispose();
});

Deno.test("cutAt() says a ReLU'd cut is non-negative and refuses a layer a branch bypasses", () => {
  const net = residualNet();
  assertEquals(cutAt(net, "stem").nonNegative, true);
  assertThrows(
    () => cutAt(net, "inner"),
    RangeError,
    `Cannot cut "resnetlet" at "inner": it is not a cut point`,
  );
  assertThrows(() => cutAt(net, "nope"), RangeError, `there is no such layer; cut points:`);
  net.dispose();
});
