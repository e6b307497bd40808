/**
 * Sets up TensorFlow.js's wasm backend (XNNPACK, SIMD) for training in Deno:
 * points it at the `.wasm` binaries in `node_modules` by absolute path,
 * registers this project's kernels (`register.ts`: the gradients it lacks,
 * and faster or corrected replacements of kernels it ships), and optionally
 * runs it on several threads (`_threads.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as wasm from "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "./register.ts";
import { setSimdThreads, simdKernels } from "./simd/module.ts";
import { simdKernelsAvailable } from "./_compiled.ts";
import { startWasmThreads } from "./_threads.ts";
import { guardAllocations } from "./_heap.ts";

/**
 * The installed package's `dist/` folder, which holds the wasm binaries next
 * to its entry module: resolved rather than built from this file's place, so
 * that a project using this package through a link or from a registry finds
 * its own copy.
 */
const WASM_DIR = new URL("./", import.meta.resolve("@tensorflow/tfjs-backend-wasm"));

/** Options for {@linkcode initWasmBackend}. */
export interface WasmBackendOptions {
  /**
   * Run on several threads: `true` for one per core, a number for that
   * many, `false` or `1` for one. The compiled SIMD kernels (convolutions and
   * their gradients) split each call over this many threads; XNNPACK's pool
   * takes {@linkcode WasmBackendOptions.xnnpackThreads}. Threads need the threaded build and Deno's
   * `node:worker_threads`; when they cannot start, the backend falls back to
   * one thread and says why in {@linkcode WasmBackendInfo.threadsFallback}.
   * @default {env ZOO_WASM_THREADS (a whole number, 1 turns threads off), else one per core}
   */
  threads?: boolean | number;
  /**
   * Threads of XNNPACK's own pool when `threads` asks for more than one (the
   * compiled SIMD kernels run on `threads` either way). XNNPACK hands every
   * op, however small, to its pool; on machines where waking a thread is
   * slow (virtual machines) that costs small nets more than it gains, while
   * large convolutions (MobileNetV2) still gain from it.
   * @default {env ZOO_XNNPACK_THREADS, else 1}
   */
  xnnpackThreads?: number;
  /**
   * Replace shipped wasm kernels (`Slice`, `BatchMatMul`, `Conv2D`, …: the
   * `REPLACED_KERNELS` of `register.ts`) with faster ones; off, only the
   * kernels the backend lacks are added.
   * @default {true}
   */
  fastKernels?: boolean;
  /**
   * Run convolutions and their gradients on the compiled SIMD kernels where
   * they are faster (`simd/kernels.c`, called from `kernels/`).
   * @default {true}
   */
  simdKernels?: boolean;
  /**
   * The folder holding `tfjs-backend-wasm*.wasm`.
   * @default {"the dist/ folder of the installed @tensorflow/tfjs-backend-wasm"}
   */
  wasmDir?: string | URL;
  /**
   * A folder for the files the threaded build needs on disk (the pthread
   * workers' script, named by its content and reused), so that a scoped
   * write permission covers them.
   * @default {a temporary file}
   */
  workDir?: string;
}

/** What {@linkcode initWasmBackend} set up. */
export interface WasmBackendInfo {
  /** Always `"wasm"`. */
  backend: "wasm";
  /** Threads the compiled SIMD kernels spread a call over. */
  threads: number;
  /** Threads XNNPACK runs on. */
  xnnpackThreads: number;
  /** Whether the SIMD build runs. */
  simd: boolean;
  /** The kernels registered by this call. */
  kernelsRegistered: string[];
  /** Why threads were asked for but not started; absent when they started or were not asked for. */
  threadsFallback?: string;
}

function wasmDirPath(dir: string | URL): string {
  const url = dir instanceof URL ? dir : new URL(dir, `file://${Deno.cwd()}/`);
  if (url.protocol !== "file:") {
    throw new RangeError(`Cannot load the wasm backend from "${url.href}": use a local folder`);
  }
  const path = decodeURIComponent(url.pathname);
  return path.endsWith("/") ? path : `${path}/`;
}

/**
 * The wasm thread count `ZOO_WASM_THREADS` asks for, or `true` (one per core)
 * when it is unset.
 *
 * @returns a whole number of threads, or `true`
 * @throws {RangeError} when the variable is set to anything but a whole number >= 1
 */
export function wasmThreadsFromEnv(): number | true {
  const raw = Deno.env.get("ZOO_WASM_THREADS")?.trim();
  if (raw === undefined || raw === "") return true;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Invalid ZOO_WASM_THREADS "${raw}": use a whole number >= 1 (1 runs the wasm backend on one thread)`,
    );
  }
  return n;
}

function threadCount(threads: boolean | number | undefined): number {
  if (threads === undefined) threads = wasmThreadsFromEnv();
  if (threads === false) return 1;
  if (threads === true) return navigator.hardwareConcurrency;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(
      `Cannot run the wasm backend on "${threads}" threads: use a positive integer`,
    );
  }
  return threads;
}

function xnnpackThreadCount(threads: number | undefined): number {
  const raw = Deno.env.get("ZOO_XNNPACK_THREADS")?.trim();
  const asked: unknown = threads ?? (raw === undefined || raw === "" ? 1 : raw);
  const n = typeof asked === "string" ? Number(asked) : asked;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Cannot run XNNPACK on "${asked}" threads: use a whole number >= 1 (option xnnpackThreads or env ZOO_XNNPACK_THREADS)`,
    );
  }
  return n;
}

/**
 * Initializes the wasm backend for training and makes it the active backend.
 * The first call decides the build (threaded or not); later calls only
 * re-register kernels and reselect the backend.
 *
 * @param options threads, kernel replacements, where the binaries are
 * @returns what was set up: threads, SIMD, the kernels registered
 * @throws {RangeError} for a thread count that is not a positive integer, or a non-file `wasmDir`
 * @throws {Error} when the wasm binaries cannot be loaded (run `deno install`)
 *
 * @example Train on wasm
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initWasmBackend } from "./backend.ts";
 * const info = await initWasmBackend({ threads: false });
 * assertEquals([info.threads, tf.getBackend()], [1, "wasm"]);
 * ```
 */
export async function initWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackendInfo> {
  const wanted = threadCount(options.threads);
  const xnnpack = Math.min(wanted, xnnpackThreadCount(options.xnnpackThreads));
  const dir = wasmDirPath(options.wasmDir ?? WASM_DIR);
  const kernelsRegistered = registerWasmKernels({
    fastKernels: options.fastKernels ?? true,
    simdKernels: options.simdKernels ?? true,
  });
  let threadsFallback: string | undefined;
  const alreadyUp = tf.engine().registry["wasm"] !== undefined;
  if (!alreadyUp) {
    wasm.setWasmPaths(dir);
    if (wanted > 1) {
      setSimdThreads(wanted);
      threadsFallback = await startWasmThreads(xnnpack, dir, options.workDir);
    } else {
      tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    }
  }
  if (!(await tf.setBackend("wasm"))) {
    throw new Error(`Cannot initialize the wasm backend from "${dir}": run \`deno install\``);
  }
  guardAllocations(tf.backend() as wasm.BackendWasm);
  const info: WasmBackendInfo = {
    backend: "wasm",
    threads: simdKernelsAvailable(tf.backend() as wasm.BackendWasm)
      ? simdKernels(tf.backend() as wasm.BackendWasm)!.threads
      : wasm.getThreadsCount(),
    xnnpackThreads: wasm.getThreadsCount(),
    simd: (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) as boolean,
    kernelsRegistered,
  };
  if (threadsFallback !== undefined) info.threadsFallback = threadsFallback;
  return info;
}
