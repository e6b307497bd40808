/**
 * Starts the threaded wasm build (`tfjs-backend-wasm-threaded-simd.wasm`) in
 * Deno. Out of the box it cannot start, for three reasons, each worked around
 * here for the duration of the backend's initialization only:
 *
 * 1. tfjs sees `IS_NODE` and reports `WASM_HAS_MULTITHREAD_SUPPORT` false; we
 *    set the flag.
 * 2. Emscripten's node path starts each pthread with
 *    `new (require("worker_threads").Worker)(blobUrl)`, and Deno's
 *    `node:worker_threads` refuses a `blob:` URL (`ERR_WORKER_PATH: The worker
 *    script or module filename must be an absolute path or a relative path
 *    starting with './' or '../'`). We write the worker script to a `.cjs`
 *    file (named by its content, in the caller's work folder, else a
 *    temporary file) and start workers from its absolute path, and hand them the
 *    factory script by absolute path instead of as a `Blob`.
 * 3. The worker script assigns `self`, `location`, … on the global object,
 *    which are getter-only in Deno's worker scope (`Cannot set property
 *    location of #<DedicatedWorkerGlobalScope> which has only a getter`); a
 *    prologue redefines them as plain properties.
 *
 * And the backend caps threads at `os.cpus().length / 2` (it assumes two
 * hyperthreads per core), so on a 2-core machine it would use one; we report
 * twice the cores wanted while the module initializes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as wasm from "@tensorflow/tfjs-backend-wasm";
import os from "node:os";
import workerThreads from "node:worker_threads";
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { join } from "node:path";

const GLOBALS = [
  "self",
  "location",
  "performance",
  "postMessage",
  "importScripts",
  "Worker",
  "onmessage",
  "onunhandledrejection",
  "alert",
];

const PROLOGUE = `for (const k of ${JSON.stringify(GLOBALS)}) {
  try {
    Object.defineProperty(globalThis, k, { value: globalThis[k], writable: true, configurable: true, enumerable: true });
  } catch { /* keep the original */ }
}
`;

let workerFile: string | undefined;

/**
 * Writes the script once per content into `workDir`, so a scoped write
 * permission on that folder covers it and later runs reuse it; a write goes
 * to a unique name first and is renamed, so concurrent runs never read half
 * a script.
 */
function writeScript(script: string, workDir: string | undefined): string {
  if (workDir === undefined) {
    const file = Deno.makeTempFileSync({ prefix: "tfjs-wasm-pthread-", suffix: ".cjs" });
    Deno.writeTextFileSync(file, script);
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(file);
      } catch { /* already gone */ }
    });
    return file;
  }
  const digest = createHash("sha256").update(script).digest("hex").slice(0, 16);
  const file = join(workDir, `tfjs-wasm-pthread-${digest}.cjs`);
  try {
    if (Deno.readTextFileSync(file) === script) return file;
  } catch { /* not written yet */ }
  Deno.mkdirSync(workDir, { recursive: true });
  const partial = `${file}.${crypto.randomUUID()}.partial`;
  Deno.writeTextFileSync(partial, script);
  Deno.renameSync(partial, file);
  return file;
}

function writeWorkerFile(
  distDir: string,
  workDir: string | undefined,
): { workerFile: string; factory: string } {
  const pkg = new URL("../", `file://${distDir}`).pathname;
  const factory = `${pkg}wasm-out/tfjs-backend-wasm-threaded-simd.js`;
  if (workerFile === undefined) {
    const require = createRequire(`${pkg}package.json`);
    const { wasmWorkerContents } = require(
      `${pkg}wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`,
    ) as {
      wasmWorkerContents: string;
    };
    // The template literal turned the script's "\n" escapes into newlines inside string literals.
    const script = PROLOGUE + wasmWorkerContents.replace(/\n/g, "\\n");
    workerFile = writeScript(script, workDir);
  }
  return { workerFile, factory };
}

/**
 * Initializes the wasm backend with the threaded build, with the workarounds
 * above in place while it starts.
 *
 * @param threads how many threads XNNPACK should run on
 * @param distDir the absolute folder holding the `.wasm` binaries, ending in "/"
 * @param workDir where to write the pthread workers' script; a temporary file when absent
 * @returns `undefined` when all threads started, else why not
 * @throws {Error} when the threaded build fails to initialize (the wasm backend is then unusable in this process)
 */
export async function startWasmThreads(
  threads: number,
  distDir: string,
  workDir?: string,
): Promise<string | undefined> {
  if (typeof SharedArrayBuffer === "undefined") {
    return "SharedArrayBuffer is not available";
  }
  let paths: { workerFile: string; factory: string };
  try {
    paths = writeWorkerFile(distDir, workDir);
  } catch (e) {
    return `Cannot write the pthread worker script: ${e instanceof Error ? e.message : e}`;
  }
  const NodeWorker = workerThreads.Worker;
  // XNNPACK's pool threads live as long as the process and wait between jobs;
  // Emscripten refs each running pthread's worker, which would keep the
  // process alive after its work is done. While the backend starts, the main
  // thread awaits the workers' "loaded" messages, so they stay ref'd until
  // then; afterwards every worker is unref'd for good (the main thread never
  // awaits a pthread: XNNPACK calls block until their threads finish).
  const workers: workerThreads.Worker[] = [];
  let initialized = false;
  class PthreadWorker extends NodeWorker {
    constructor(_blobUrl: string | URL, options?: workerThreads.WorkerOptions) {
      super(paths.workerFile, options);
      workers.push(this);
      if (initialized) this.unref();
    }
    override ref(): void {
      if (!initialized) super.ref();
    }
    override postMessage(message: unknown, transfer?: readonly workerThreads.Transferable[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown } | null;
      if (m?.cmd === "load" && typeof m.urlOrBlob !== "string") {
        message = { ...m, urlOrBlob: paths.factory };
      }
      super.postMessage(message, transfer);
    }
  }
  const cpus = os.cpus;
  const mutableWorkerThreads = workerThreads as { Worker: typeof NodeWorker };
  const mutableOs = os as { cpus: typeof os.cpus };
  mutableWorkerThreads.Worker = PthreadWorker;
  mutableOs.cpus = () => {
    const one = cpus()[0]!;
    return Array.from({ length: 2 * threads }, () => one);
  };
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  wasm.setThreadsCount(threads);
  try {
    // Initialize now, while the patches are in place.
    if (!(await tf.setBackend("wasm"))) return "The threaded wasm build failed to initialize";
  } finally {
    mutableWorkerThreads.Worker = NodeWorker;
    mutableOs.cpus = cpus;
    initialized = true;
    for (const w of workers) w.unref();
  }
  const started = wasm.getThreadsCount();
  return started >= threads
    ? undefined
    : `The threaded build started ${started} of ${threads} threads`;
}
