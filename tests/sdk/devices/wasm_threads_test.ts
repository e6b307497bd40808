import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { relativeError } from "./_compare.ts";
import { runDeno } from "../../_helpers/cli.ts";

const CHILD = new URL("./_threads_child.ts", import.meta.url).pathname;

/** Runs the child with ZOO_WASM_THREADS=`threads`; fails if it has not ended on its own within `limitS`. */
async function child(threads: string, limitS = 120, env: Record<string, string> = {}) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD],
    env: { ZOO_WASM_THREADS: threads, ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    proc.kill("SIGKILL");
  }, limitS * 1000);
  const out = await proc.output();
  clearTimeout(timer);
  assert(!killed, `the child with ZOO_WASM_THREADS=${threads} had not exited after ${limitS} s`);
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

function parse(
  stdout: string,
): { threads: number; xnnpackThreads: number; fallback?: string; weights: number[][] } {
  const line = stdout.trim().split("\n").at(-1)!;
  return JSON.parse(line);
}

Deno.test("the wasm backend trains on two threads, to the one-thread weights, and the process ends by itself", async () => {
  const one = await child("1");
  assertEquals(one.code, 0, one.stderr);
  const two = await child("2");
  assertEquals(two.code, 0, two.stderr);
  const a = parse(one.stdout), b = parse(two.stdout);
  assertEquals(a.threads, 1);
  assertEquals(b.fallback, undefined, `threads fell back: ${b.fallback}`);
  assertEquals(b.threads, 2);
  // XNNPACK keeps one thread unless asked: its pool slows small ops down.
  assertEquals(b.xnnpackThreads, 1);
  const c = await child("2", 120, { ZOO_XNNPACK_THREADS: "2" });
  assertEquals(c.code, 0, c.stderr);
  const both = parse(c.stdout);
  assertEquals([both.threads, both.xnnpackThreads], [2, 2]);
  assertEquals(b.weights.length, a.weights.length);
  for (const [i, w] of [...b.weights, ...both.weights].entries()) {
    const err = relativeError(w, a.weights[i % a.weights.length]!);
    assert(err <= 1e-5, `weight ${i}: relative error ${err} between 2 threads and 1`);
  }
});

Deno.test("an invalid ZOO_WASM_THREADS is refused with what to set instead", async () => {
  for (const bad of ["0", "two", "1.5"]) {
    const r = await child(bad);
    assert(r.code !== 0, `ZOO_WASM_THREADS=${bad} was accepted`);
    assertStringIncludes(r.stderr, `Invalid ZOO_WASM_THREADS "${bad}"`);
    assertStringIncludes(r.stderr, "whole number >= 1");
  }
});

Deno.test("an invalid ZOO_XNNPACK_THREADS is refused with what to set instead", async () => {
  for (const bad of ["0", "two"]) {
    const r = await child("2", 120, { ZOO_XNNPACK_THREADS: bad });
    assert(r.code !== 0, `ZOO_XNNPACK_THREADS=${bad} was accepted`);
    assertStringIncludes(r.stderr, `Cannot run XNNPACK on "${bad}" threads`);
    assertStringIncludes(r.stderr, "whole number >= 1");
  }
});

/** Runs a test file of this folder again with ZOO_WASM_THREADS=2; fails if any of its tests fails. */
async function onTwoThreads(name: string): Promise<void> {
  const file = new URL(name, import.meta.url).pathname;
  const out = await runDeno(["test", "-A", file], { env: { ZOO_WASM_THREADS: "2" } });
  const text = out.stdout + out.stderr;
  assertEquals(out.code, 0, text);
  assertStringIncludes(text, "0 failed");
}

Deno.test("the compiled SIMD kernels match cpu when they split their work across two threads", async () => {
  await onTwoThreads("./wasm_simd_ops_test.ts");
});

Deno.test("LeNet-, ResNet- and MobileNetV2-style nets train on two threads to cpu's weights (every convolution on the SIMD pool)", async () => {
  await onTwoThreads("./wasm_training_test.ts");
});

Deno.test("every added or replaced kernel matches cpu above 2 GiB and 3 GiB of heap on two threads", async () => {
  await onTwoThreads("./wasm_high_heap_test.ts");
});

Deno.test("random valid and invalid calls of every added or replaced kernel match cpu or fail as cpu does on two threads, and leave the backend correct", async () => {
  await onTwoThreads("./wasm_kernel_fuzz_test.ts");
});

Deno.test({
  name:
    "every weight of MobileNetV2 trains on wasm on two threads at batch 32 inside the 4 GiB heap",
  ignore: Deno.env.get("ZOO_SLOW_TESTS") !== "1",
}, async () => {
  await onTwoThreads("./wasm_mobilenet_full_test.ts");
});
