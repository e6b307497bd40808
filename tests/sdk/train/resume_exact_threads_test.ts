/**
 * On wasm with two threads, where the compiled kernels split each call into
 * jobs that the threads claim as they come, a fine-tune resumed after an
 * epoch still ends bit-identical to an uninterrupted run.
 */
import { assertEquals } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { checkResumeExact } from "./_resume_exact.ts";

const info = await initWasmBackend({ threads: 2 });

Deno.test("fineTuneNetwork() resumed after an epoch on wasm with two threads ends bit-identical to an uninterrupted run", async () => {
  assertEquals(info.threads, 2, `the kernels run on one thread: ${info.threadsFallback}`);
  await checkResumeExact("wasm");
});
