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

Deno.test("a micro-batch that fails leaves no tensors behind, and the next call computes as before", async () => {
  await tf.setBackend("wasm");
  const w = tf.variable(tf.tensor1d([1, 2, 3]), true, "acc_fail_w");
  const loss = (x: tf.Tensor) => tf.sum(tf.exp(tf.mul(w, x))) as tf.Scalar;
  const parts = [1, 2, 3].map((v) => ({ data: tf.fill([3], v * 0.1), size: 1 }));
  const first = await accumulatedGradients(loss, [w], parts);
  const want = [...await first.grads[w.name]!.data()];
  tf.dispose([first.value, first.grads]);
  const before = tf.memory().numTensors;
  // The third micro-batch fails in its backward pass, after two were summed.
  let calls = 0;
  const failing = (x: tf.Tensor) => {
    const y = loss(x);
    if (++calls < 3) return y;
    return tf.customGrad((...a: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.clone(a[0] as tf.Tensor),
      gradFunc: () => {
        throw new RangeError("out of heap");
      },
    }))(y) as tf.Scalar;
  };
  await assertRejects(() => accumulatedGradients(failing, [w], parts), RangeError, "out of heap");
  assertEquals(tf.memory().numTensors, before);
  const again = await accumulatedGradients(loss, [w], parts);
  assertEquals([...await again.grads[w.name]!.data()], want);
  tf.dispose([again.value, again.grads, parts.map((p) => p.data), w]);
});
