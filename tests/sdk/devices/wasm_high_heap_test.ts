/**
 * Past 2 GiB the wasm heap's pointers read as negative int32: every added or
 * replaced kernel must treat them as unsigned. The heap is filled up to 2 GiB
 * and then to 3 GiB, so that every tensor and scratch buffer that follows
 * lies above, and each kernel is compared with cpu there. One thread here;
 * wasm_threads_test.ts runs this file again on two.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { assert, assertEquals } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { assertNear } from "./_compare.ts";
import { everyKernel, runOn } from "./_kernel_runs.ts";

await initWasmBackend(Deno.env.get("ZOO_WASM_THREADS") === undefined ? { threads: false } : {});

const GiB = 2 ** 30;

/** The backend's own allocator. */
function heapOf(backend: BackendWasm): { _malloc(n: number): number; _free(p: number): void } {
  return backend.wasm as unknown as { _malloc(n: number): number; _free(p: number): void };
}

/**
 * Allocates blocks of falling sizes until each size comes from above
 * `limit`, so that later allocations of at least the smallest size are
 * placed above it; returns the blocks to free.
 */
function fillBelow(backend: BackendWasm, limit: number): number[] {
  const k = heapOf(backend);
  const held: number[] = [];
  for (const size of [64 << 20, 1 << 20, 64 << 10, 4 << 10, 256, 64, 16, 1]) {
    for (;;) {
      const p = k._malloc(size) >>> 0;
      assert(p !== 0, `the heap ran out filling to ${limit} bytes`);
      if (p >= limit) {
        k._free(p);
        break;
      }
      held.push(p);
    }
  }
  return held;
}

/** The heap offset of a tensor's data (unsigned). */
function offsetOf(backend: BackendWasm, dataId: object): number {
  const map = (backend as unknown as {
    dataIdMap: { get(id: object): { memoryOffset: number | null } };
  }).dataIdMap;
  return (map.get(dataId)?.memoryOffset ?? 0) >>> 0;
}

Deno.test("every added or replaced wasm kernel matches cpu on tensors above 2 GiB and above 3 GiB", async () => {
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const held: number[] = [];
  try {
    for (const limit of [2 * GiB + (1 << 20), 3 * GiB]) {
      for (const big of [false, true]) {
        for (const call of everyKernel(limit / GiB * 100 + (big ? 1 : 0), big)) {
          const want = await runOn("cpu", call);
          // Fill again the holes that earlier calls' tensors left below.
          held.push(...fillBelow(backend, limit));
          // Every tensor the call makes on wasm lies above the limit.
          const seen: number[] = [];
          const { makeOutput, write } = backend;
          backend.makeOutput = (...args) => {
            const out = makeOutput.apply(backend, args);
            seen.push(offsetOf(backend, out.dataId));
            return out;
          };
          backend.write = (...args) => {
            const id = write.apply(backend, args);
            seen.push(offsetOf(backend, id));
            return id;
          };
          let got = want;
          try {
            got = await runOn("wasm", call);
          } finally {
            Object.assign(backend, { makeOutput, write });
          }
          const heapBytes = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.length;
          assert(heapBytes > limit, `the heap did not grow past ${limit}`);
          assertEquals(got.shape, want.shape, call.kernel);
          assertNear(got.values, want.values, 1e-4, `${call.kernel} above ${limit}`);
          assert(
            seen.length > 0 && seen.every((o) => o >= limit),
            `${call.kernel}: a tensor was made below ${limit} (${seen})`,
          );
        }
      }
    }
  } finally {
    const k = heapOf(backend);
    for (const p of held) k._free(p);
  }
});
