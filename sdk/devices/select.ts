/**
 * Device choice for a job: `webgpu` (Deno's built-in WebGPU), `wasm`
 * (XNNPACK, with the gradient kernels the shipped build lacks) or `cpu`.
 * `auto` checks that the candidate has every kernel the job needs before
 * any work starts and says in one line why it picked what it picked.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DeviceName } from "./types.ts";
import { join } from "node:path";
import { CONVNET_TRAINING_KERNELS, missingKernels } from "./kernels.ts";

/** The devices {@linkcode selectDevice} can name, in the order `--device` lists them. */
export const DEVICE_NAMES: readonly DeviceName[] = ["auto", "webgpu", "wasm", "cpu"];

/** What a job needs from a device. */
export interface DeviceJob {
  /** Whether the job computes gradients (a forward-only job needs fewer kernels). */
  training: boolean;
  /**
   * The kernels the job runs, e.g. from `kernelsUsed()`.
   * @default {CONVNET_TRAINING_KERNELS when training, else none checked}
   */
  kernels?: readonly string[];
  /**
   * Threads of the wasm backend, as `initWasmBackend`'s `threads`.
   * @default {env ZOO_WASM_THREADS, else one per core}
   */
  wasmThreads?: boolean | number;
  /**
   * A folder for the files setting up a device writes (the wasm backend's
   * pthread script; a private `XDG_RUNTIME_DIR` for WebGPU when none is
   * set), so that a scoped write permission covers them.
   * @default {temporary files}
   */
  workDir?: string;
}

/** The device chosen and why. */
export interface DeviceChoice {
  /** The tfjs backend now active. */
  backend: "webgpu" | "wasm" | "cpu";
  /** The WebGPU adapter's description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  adapter?: string;
  /** One line for a person: what was picked and why. */
  reason: string;
}

/** What the WebGPU adapter of this machine is, if there is one. */
interface AdapterProbe {
  description: string;
  software: boolean;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|basic render/i;

/**
 * Registers the webgpu backend and its kernels. Imported on demand: a static
 * import (of webgpu or wasm) makes it the highest-priority backend of every
 * program that imports this module, so a model built before `selectDevice()`
 * would fail with "backend 'webgpu' has not yet been initialized".
 */
async function loadWebgpuBackend(): Promise<void> {
  await import("@tensorflow/tfjs-backend-webgpu");
}

async function probeAdapter(workDir: string | undefined): Promise<AdapterProbe | null> {
  // Mesa's Vulkan drivers probe for a display and complain on stderr when
  // XDG_RUNTIME_DIR is unset (CI, services); a private empty one quiets them.
  if (Deno.env.get("XDG_RUNTIME_DIR") === undefined) {
    let runtimeDir: string;
    if (workDir === undefined) {
      runtimeDir = await Deno.makeTempDir({ prefix: "zoo-xdg-" });
    } else {
      runtimeDir = join(workDir, "xdg-runtime");
      await Deno.mkdir(runtimeDir, { recursive: true, mode: 0o700 });
    }
    Deno.env.set("XDG_RUNTIME_DIR", runtimeDir);
  }
  await loadWebgpuBackend();
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (gpu === undefined) return null;
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch {
    return null;
  }
  if (adapter === null) return null;
  const info = adapter.info;
  const description = info.description || info.device || info.vendor || "unknown adapter";
  const fallback = (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  return { description, software: fallback || SOFTWARE_ADAPTER.test(description) };
}

function neededKernels(job: DeviceJob): readonly string[] {
  return job.kernels ?? (job.training ? CONVNET_TRAINING_KERNELS : []);
}

async function activate(backend: "webgpu" | "cpu"): Promise<void> {
  if (!(await tf.setBackend(backend))) {
    throw new Error(`Cannot use device "${backend}": the tfjs ${backend} backend did not start`);
  }
}

async function useWasm(job: DeviceJob): Promise<string> {
  // Imported on demand for the same reason as the webgpu backend.
  const { initWasmBackend } = await import("./wasm/backend.ts");
  const info = await initWasmBackend({
    ...(job.wasmThreads === undefined ? {} : { threads: job.wasmThreads }),
    ...(job.workDir === undefined ? {} : { workDir: job.workDir }),
  });
  const missing = missingKernels("wasm", neededKernels(job));
  if (missing.length > 0) {
    throw new Error(
      `Cannot use device "wasm": it lacks the kernels ${missing.join(", ")} this job needs`,
    );
  }
  const xnnpack = info.threads > 1 ? ` (XNNPACK on ${info.xnnpackThreads})` : "";
  return `${info.threads} thread${info.threads === 1 ? "" : "s"}${xnnpack}, SIMD ${
    info.simd ? "on" : "off"
  }${info.threadsFallback ? ` (threads: ${info.threadsFallback})` : ""}`;
}

/**
 * Makes a device the active tfjs backend for a job. An explicit device is
 * used or refused with the reason (no adapter, missing kernels); `auto`
 * prefers a real GPU through WebGPU, and wasm over a software WebGPU adapter
 * (llvmpipe, lavapipe, SwiftShader), where wasm trains LeNet about 20×
 * faster on the same CPU; it falls back down the list webgpu, wasm, cpu
 * when a candidate lacks a kernel the job needs.
 *
 * @param requested `auto`, `webgpu`, `wasm` or `cpu`
 * @param job whether it trains, the kernels it runs, the wasm threads
 * @returns the backend now active, the WebGPU adapter if used, and why
 * @throws {RangeError} for an unknown device name
 * @throws {Error} when an explicit device cannot run the job: no WebGPU
 *   adapter, a backend that does not start, missing kernels (named); or,
 *   for `auto`, when no backend has every kernel the job needs
 *
 * @example Pick a device for a training job
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { selectDevice } from "./select.ts";
 * const device = await selectDevice("cpu", { training: true });
 * assertEquals([device.backend, device.reason], ["cpu", "cpu: as asked"]);
 * ```
 */
export async function selectDevice(
  requested: DeviceName,
  job: DeviceJob,
): Promise<DeviceChoice> {
  switch (requested) {
    case "cpu": {
      await activate("cpu");
      return { backend: "cpu", reason: "cpu: as asked" };
    }
    case "wasm": {
      const setup = await useWasm(job);
      return { backend: "wasm", reason: `wasm: as asked (${setup})` };
    }
    case "webgpu": {
      const probe = await probeAdapter(job.workDir);
      if (probe === null) {
        throw new Error(
          `Cannot use device "webgpu": no WebGPU adapter (navigator.gpu gave none): ` +
            `use --device wasm or auto, or set XDG_RUNTIME_DIR if wgpu complains`,
        );
      }
      const missing = missingKernels("webgpu", neededKernels(job));
      if (missing.length > 0) {
        throw new Error(
          `Cannot use device "webgpu": it lacks the kernels ${
            missing.join(", ")
          } this job needs: use --device wasm or auto`,
        );
      }
      await activate("webgpu");
      return {
        backend: "webgpu",
        adapter: probe.description,
        reason: `webgpu: as asked, on adapter "${probe.description}"${
          probe.software && job.training
            ? " (a software adapter: wasm trains faster on this machine)"
            : ""
        }`,
      };
    }
    case "auto":
      return await autoSelect(job);
    default:
      throw new RangeError(
        `Unknown device "${requested as string}": use one of ${DEVICE_NAMES.join(", ")}`,
      );
  }
}

async function autoSelect(job: DeviceJob): Promise<DeviceChoice> {
  const notes: string[] = [];
  const probe = await probeAdapter(job.workDir);
  const gpuMissing = missingKernels("webgpu", neededKernels(job));
  if (probe === null) {
    notes.push("no WebGPU adapter");
  } else if (gpuMissing.length > 0) {
    notes.push(`webgpu lacks ${gpuMissing.join(", ")}`);
  } else if (probe.software) {
    notes.push(
      `the WebGPU adapter "${probe.description}" is a software rasterizer on the CPU, ` +
        `where wasm ${job.training ? "trains" : "runs"} about 20× faster`,
    );
  } else {
    await activate("webgpu");
    return {
      backend: "webgpu",
      adapter: probe.description,
      reason: `auto chose webgpu: adapter "${probe.description}" is a GPU`,
    };
  }
  try {
    const setup = await useWasm(job);
    return { backend: "wasm", reason: `auto chose wasm (${setup}): ${notes.join("; ")}` };
  } catch (e) {
    notes.push(e instanceof Error ? e.message : String(e));
  }
  const cpuMissing = missingKernels("cpu", neededKernels(job));
  if (cpuMissing.length > 0) {
    throw new Error(
      `Cannot pick a device: no backend has every kernel this job needs: ${
        notes.join("; ")
      }; cpu lacks ${cpuMissing.join(", ")}`,
    );
  }
  await activate("cpu");
  return { backend: "cpu", reason: `auto chose cpu: ${notes.join("; ")}` };
}
