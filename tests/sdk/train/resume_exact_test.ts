/**
 * A fine-tune interrupted after an epoch and resumed from its checkpoint
 * ends with the weights of an uninterrupted run, bit for bit, on cpu and on
 * wasm with one thread (two threads: `resume_exact_threads_test.ts`, as a
 * wasm build is chosen once per process).
 */
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { checkResumeExact } from "./_resume_exact.ts";

await initWasmBackend({ threads: false });

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`fineTuneNetwork() resumed after an epoch on ${backend} ends bit-identical to an uninterrupted run, Dropout and BatchNormalization included`, async () => {
    await checkResumeExact(backend);
  });
}
