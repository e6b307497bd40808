import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { accumulatedGradients, splitBatch } from "../../../sdk/train/accumulate.ts";
import { lenet5 } from "../../../zoo/_recipes.ts";
import { relativeError, seeded } from "../devices/_compare.ts";

await initWasmBackend({ threads: false });

Deno.test("accumulatedGradients() over micro-batches equals the full batch's gradient on wasm", async () => {
  await tf.setBackend("wasm");
  const model = lenet5();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const batch = 8;
  const xs = tf.tensor(seeded([batch, 28, 28, 1], 3), [batch, 28, 28, 1]);
  const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], "int32"), 10);
  const loss = (d: { xs: tf.Tensor; ys: tf.Tensor }) =>
    tf.losses.softmaxCrossEntropy(
      d.ys,
      model.apply(d.xs, { training: true }) as tf.Tensor,
    ) as tf.Scalar;
  const full = tf.variableGrads(() => loss({ xs, ys }), vars);
  const parts = splitBatch({ xs, ys }, 3);
  assertEquals(parts.map((p) => p.size), [3, 3, 2]);
  const before = tf.memory().numTensors;
  const acc = await accumulatedGradients(loss, vars, parts);
  // The result holds one tensor per variable plus the loss.
  assertEquals(tf.memory().numTensors, before + vars.length + 1);
  assert(Math.abs(acc.value.dataSync()[0]! - full.value.dataSync()[0]!) < 1e-5);
  for (const v of vars) {
    const err = relativeError(acc.grads[v.name]!.dataSync(), full.grads[v.name]!.dataSync());
    assert(err <= 1e-4, `${v.name}: relative error ${err}`);
  }
  tf.dispose([full.value, full.grads, acc.value, acc.grads, xs, ys, parts.map((p) => p.data)]);
  model.dispose();
});

Deno.test("accumulatedGradients() and splitBatch() reject empty input and bad sizes", async () => {
  const w = tf.variable(tf.scalar(1), true, "acc_test_w");
  await assertRejects(
    () => accumulatedGradients(() => w.square() as tf.Scalar, [w], []),
    RangeError,
    "no micro-batches",
  );
  await assertRejects(
    () => accumulatedGradients(() => w.square() as tf.Scalar, [w], [{ data: null, size: 0 }]),
    RangeError,
    'size "0"',
  );
  assertThrows(() => splitBatch({ a: tf.zeros([2]) }, 0), RangeError, 'size "0"');
  assertThrows(
    () => splitBatch({ a: tf.zeros([2]), b: tf.zeros([3]) }, 1),
    RangeError,
    "batch sizes differ",
  );
  w.dispose();
});
