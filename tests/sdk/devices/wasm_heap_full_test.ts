/**
 * When the wasm heap is full, a tensor that does not fit is refused with a
 * RangeError (uploads and every kernel's outputs, shipped kernels included),
 * instead of being placed at address 0, where the shipped backend would
 * write it over the heap's own bookkeeping; and once room is made, the same
 * calls compute what cpu computes.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";

await initWasmBackend(Deno.env.get("ZOO_WASM_THREADS") === undefined ? { threads: false } : {});

/** The backend's own allocator. */
function heapOf(backend: BackendWasm): { _malloc(n: number): number; _free(p: number): void } {
  return backend.wasm as unknown as { _malloc(n: number): number; _free(p: number): void };
}

/** Allocates blocks until not even 1 MiB is left; returns them to free. */
function fillHeap(backend: BackendWasm): number[] {
  const k = heapOf(backend);
  const held: number[] = [];
  for (const size of [256 << 20, 16 << 20, 1 << 20]) {
    for (let p = k._malloc(size) >>> 0; p !== 0; p = k._malloc(size) >>> 0) held.push(p);
  }
  return held;
}

/** Calls that each need an output of tens of MB, on inputs of 8 images already on the heap. */
const calls: Record<string, (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor> = {
  "a shipped depthwise convolution (XNNPACK)": (x, w) => tf.depthwiseConv2d(x, w, 1, "valid"),
  "a shipped ReLU": (x) => tf.relu(x),
  "an added depthwise input gradient": (x, w) =>
    tf.grad((t) => tf.depthwiseConv2d(t as tf.Tensor4D, w, 2, "same"))(x),
};

Deno.test("a full wasm heap refuses tensors with a RangeError, and the same calls then match cpu", async () => {
  await tf.setBackend("cpu");
  const xValues = tf.randomUniform([8, 113, 113, 96], -1, 1, "float32", 5);
  const wValues = tf.randomUniform([3, 3, 96, 1], -1, 1, "float32", 6);
  const want: Record<string, Float32Array> = {};
  for (const [name, call] of Object.entries(calls)) {
    want[name] = tf.tidy(() => call(xValues as tf.Tensor4D, wValues as tf.Tensor4D))
      .dataSync() as Float32Array;
  }
  const xs = await xValues.data(), ws = await wValues.data();
  tf.dispose([xValues, wValues]);

  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const x = tf.tensor4d(xs, [8, 113, 113, 96]), w = tf.tensor4d(ws, [3, 3, 96, 1]);
  const before = tf.memory().numTensors;
  const held = fillHeap(backend);
  try {
    assert(held.length > 0);
    for (const [name, call] of Object.entries(calls)) {
      const e = assertThrows(() => tf.tidy(() => call(x, w)), RangeError);
      assert(
        /the wasm heap is full; use a smaller batch/.test((e as Error).message),
        `${name}: ${(e as Error).message}`,
      );
    }
    // An upload is refused before any byte is copied.
    assertThrows(
      () => tf.tensor1d(new Float32Array(4 << 20).fill(7)),
      RangeError,
      "the wasm heap is full",
    );
    assertEquals(tf.memory().numTensors, before);
  } finally {
    for (const p of held) heapOf(backend)._free(p);
  }
  // The inputs were not overwritten, and every call now computes what cpu computes.
  assertEquals(await x.data(), xs);
  assertEquals(await w.data(), ws);
  for (const [name, call] of Object.entries(calls)) {
    const y = tf.tidy(() => call(x, w));
    const got = y.dataSync();
    y.dispose();
    assertEquals(got.length, want[name]!.length, name);
    let worst = 0;
    for (let i = 0; i < got.length; i++) {
      worst = Math.max(worst, Math.abs(got[i]! - want[name]![i]!));
    }
    assert(worst < 1e-4, `${name}: differs from cpu by ${worst}`);
  }
  tf.dispose([x, w]);
  assertEquals(tf.memory().numTensors, before - 2);
});

Deno.test("a tensor of 4 GiB or more is refused before the allocator sees its size", () => {
  assertThrows(
    () => tf.buffer([1 << 30, 4], "float32").toTensor(),
    RangeError,
    "the wasm heap holds at most 4 GiB",
  );
});
