/**
 * Devices: {@linkcode selectDevice} makes `webgpu`, `wasm` or `cpu` the active
 * TensorFlow.js backend for a job (or picks one with `auto`), after checking
 * that it has every kernel the job needs; {@linkcode initWasmBackend} sets up
 * the wasm backend with its added kernels and threads.
 *
 * Importing this module registers no backend: tfjs registers a backend when
 * its package is imported, and a registered backend that has not started
 * makes the first op fail ("The highest priority backend 'wasm' has not yet
 * been initialized"). The backends are imported when a device is chosen, and
 * until then tfjs runs on its cpu backend, which is always ready.
 *
 * @example Run on the cpu backend
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { selectDevice } from "./mod.ts";
 * const device = await selectDevice("cpu", { training: false });
 * assertEquals([device.backend, tf.getBackend()], ["cpu", "cpu"]);
 * ```
 *
 * @module
 */
import type { WasmBackendInfo, WasmBackendOptions } from "./wasm/backend.ts";

export { DEVICE_NAMES, type DeviceChoice, type DeviceJob, selectDevice } from "./select.ts";
export type { DeviceName } from "./types.ts";
export { CONVNET_TRAINING_KERNELS, kernelsUsed, missingKernels } from "./kernels.ts";
export type { WasmBackendInfo, WasmBackendOptions };

/**
 * Initializes the wasm backend for training and makes it the active backend:
 * XNNPACK with the gradient kernels it lacks, the compiled SIMD kernels, and
 * threads. The backend's package is imported by this call, not before (see
 * the module doc). The first call decides the build (threaded or not); later
 * calls only re-register kernels and reselect the backend.
 *
 * @param options threads, kernel replacements, where the binaries are
 * @returns what was set up: threads, SIMD, the kernels registered
 * @throws {RangeError} for a thread count that is not a positive integer, or a non-file `wasmDir`
 * @throws {Error} when the wasm binaries cannot be loaded
 *
 * @example Train on wasm
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "./mod.ts";
 * const info = await initWasmBackend({ threads: false });
 * assertEquals([info.backend, tf.getBackend()], ["wasm", "wasm"]);
 * ```
 */
export async function initWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackendInfo> {
  const wasm = await import("./wasm/backend.ts");
  return await wasm.initWasmBackend(options);
}
