/**
 * A whole-network fine-tune of the real MobileNetV2 (nsfwjs) on wasm: every
 * one of its 162 weight tensors trainable (the checkpoint ships 66 layers
 * frozen), batch 32 as micro-batches of 8, inside the backend's 4 GiB heap
 * (past 2 GiB, where pointers read as negative int32). Slow (a minute or two
 * a step on a shared 2-core machine): runs with ZOO_SLOW_TESTS=1, on one
 * thread, or on two with ZOO_WASM_THREADS=2.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { assert, assertEquals } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { accumulatedGradients, splitBatch } from "../../../sdk/train/accumulate.ts";
import { relativeError, seeded } from "./_compare.ts";

const slow = Deno.env.get("ZOO_SLOW_TESTS") === "1";

Deno.test({
  name:
    "every weight of MobileNetV2 trains on wasm at batch 32 in micro-batches, inside the 4 GiB heap, with exact accumulation",
  ignore: !slow,
}, async () => {
  await initWasmBackend(Deno.env.get("ZOO_WASM_THREADS") === undefined ? { threads: false } : {});
  const { loadNsfwjsModel } = await import("../../../zoo/nsfwjs/source.ts");
  const model = await loadNsfwjsModel("mobilenet_v2");
  for (const layer of model.layers) layer.trainable = true;
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  assertEquals(vars.length, 162);
  const params = vars.reduce((n, v) => n + v.size, 0);
  assertEquals(params, 2_585_349);
  const before = vars.map((v) => v.dataSync().slice() as Float32Array);
  const x = tf.tensor(seeded([32, 224, 224, 3], 77).map((v) => v / 3 + 0.5), [32, 224, 224, 3]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 5), "int32"), 5);
  const grads = async (micro: number, training: boolean) => {
    const parts = splitBatch({ xs: x, ys: y }, micro);
    const loss = (d: { xs: tf.Tensor; ys: tf.Tensor }) =>
      tf.losses.softmaxCrossEntropy(
        d.ys,
        model.apply(d.xs, { training }) as tf.Tensor,
      ) as tf.Scalar;
    try {
      return await accumulatedGradients(loss, vars, parts);
    } finally {
      tf.dispose(parts.map((p) => p.data));
    }
  };
  // A large rate: a step of 0.01 can leave a weight whose gradient is tiny
  // unchanged in float32, and this checks that every weight moves.
  const optimizer = tf.train.sgd(1);
  const start = tf.memory().numTensors;
  try {
    // Without dropout or batch statistics no layer mixes examples: micro-batches
    // of 4 and of 8 give the same gradient (each the full batch's).
    const a = await grads(4, false), b = await grads(8, false);
    for (const v of vars) {
      const err = relativeError(a.grads[v.name]!.dataSync(), b.grads[v.name]!.dataSync());
      assert(err <= 1e-4, `${v.name}: micro-batches of 4 and 8 differ by ${err}`);
    }
    tf.dispose([a.value, b.value, a.grads, b.grads]);
    // A training step: every weight tensor moves.
    const { value, grads: g } = await grads(8, true);
    assert(Number.isFinite((await value.data())[0]!), "the loss is not finite");
    const zero = vars.filter((v) => g[v.name]!.dataSync().every((e) => e === 0));
    assertEquals(zero.map((v) => v.name), [], "weights with a zero gradient");
    optimizer.applyGradients(g);
    tf.dispose([value, g]);
    const unchanged = vars.filter((v, i) => relativeError(v.dataSync(), before[i]!) === 0);
    assertEquals(unchanged.map((v) => v.name), []);
    assertEquals(tf.memory().numTensors, start, "the steps leaked tensors");
    const heap = ((tf.backend() as BackendWasm).wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
    console.log(`heap ${(heap.length / 2 ** 20).toFixed(0)} MiB`);
    assert(heap.length > 2 ** 31, "the step should have grown the heap past 2 GiB");
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
});
