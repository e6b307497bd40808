/**
 * selectDevice() on this machine's real backends: an explicit device is used
 * or refused with the kernels it lacks; `auto` checks every candidate's
 * kernels before any work, says in one line what it picked and why, and names
 * the WebGPU adapter. The kernel names below are ones tfjs 4.22 registers on
 * some backends and not others (BitwiseAnd: wasm and cpu; FFT: webgpu and
 * cpu; RaggedRange: cpu only).
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { CONVNET_TRAINING_KERNELS, missingKernels } from "../../../sdk/devices/kernels.ts";
import { type DeviceChoice, selectDevice } from "../../../sdk/devices/select.ts";
import type { DeviceName } from "../../../sdk/devices/types.ts";

if (Deno.env.get("XDG_RUNTIME_DIR") === undefined) {
  Deno.env.set("XDG_RUNTIME_DIR", await Deno.makeTempDir({ prefix: "zoo-xdg-" }));
}
const adapter = await navigator.gpu?.requestAdapter().catch(() => null) ?? null;
const adapterName = adapter === null
  ? null
  : adapter.info.description || adapter.info.device || adapter.info.vendor || "unknown adapter";
const softwareAdapter = adapter !== null &&
  ((adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    (adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    /llvmpipe|lavapipe|swiftshader|software|basic render/i.test(adapterName!));

const WASM_ONE_THREAD = { wasmThreads: 1 } as const;

function oneLine(choice: DeviceChoice): void {
  assert(choice.reason.length > 0 && !choice.reason.includes("\n"), choice.reason);
  assertEquals(tf.getBackend(), choice.backend, "the chosen backend is the active one");
}

/** `selectDevice("auto")` for a training job that runs `kernels`, checked by {@linkcode oneLine}. */
async function autoFor(kernels: string[]): Promise<DeviceChoice> {
  const choice = await selectDevice("auto", { training: true, kernels, ...WASM_ONE_THREAD });
  oneLine(choice);
  return choice;
}

Deno.test("selectDevice() uses an explicit cpu or wasm device and says so", async () => {
  const cpu = await selectDevice("cpu", { training: true });
  assertEquals(cpu.backend, "cpu");
  oneLine(cpu);
  const wasm = await selectDevice("wasm", { training: true, ...WASM_ONE_THREAD });
  assertEquals(wasm.backend, "wasm");
  assertMatch(wasm.reason, /^wasm: as asked \(1 thread, SIMD (on|off)\)$/);
  oneLine(wasm);
});

Deno.test({
  name: "selectDevice('webgpu') trains on the WebGPU adapter and names it",
  ignore: adapter === null,
}, async () => {
  // The README's main job trains on webgpu: it must have every convnet training kernel.
  const choice = await selectDevice("webgpu", { training: true });
  assertEquals(missingKernels("webgpu", CONVNET_TRAINING_KERNELS), []);
  assertEquals(choice.backend, "webgpu");
  assertEquals(choice.adapter, adapterName);
  assert(choice.reason.includes(`"${adapterName}"`), choice.reason);
  if (softwareAdapter) assertMatch(choice.reason, /software adapter: wasm trains faster/);
  oneLine(choice);
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  const y = tf.matMul(x, x);
  assertEquals(Array.from(await y.data()), [7, 10, 15, 22]);
  tf.dispose([x, y]);
});

Deno.test("selectDevice('auto') picks by adapter kind and explains the choice in one line", async () => {
  const choice = await selectDevice("auto", { training: true, ...WASM_ONE_THREAD });
  oneLine(choice);
  if (adapter === null) {
    assertEquals(choice.backend, "wasm");
    assertMatch(choice.reason, /^auto chose wasm \(.*\): no WebGPU adapter$/);
  } else if (softwareAdapter) {
    assertEquals(choice.backend, "wasm");
    assertMatch(choice.reason, /^auto chose wasm \(.*\): the WebGPU adapter ".*" is a software/);
    assert(choice.reason.includes(adapterName!), `the adapter is named: ${choice.reason}`);
  } else {
    assertEquals(choice.backend, "webgpu");
    assertEquals(choice.adapter, adapterName);
  }
});

Deno.test("selectDevice('auto') checks kernels first and falls back down webgpu, wasm, cpu, naming what is missing", async () => {
  const noGpuKernel = await autoFor(["Conv2D", "BitwiseAnd"]);
  assertEquals(noGpuKernel.backend, "wasm");
  if (adapter !== null) assertMatch(noGpuKernel.reason, /webgpu lacks BitwiseAnd/);

  const cpuOnly = await autoFor(["Conv2D", "RaggedRange"]);
  assertEquals(cpuOnly.backend, "cpu");
  assertMatch(cpuOnly.reason, /^auto chose cpu: .*"wasm": it lacks the kernels RaggedRange/);
  if (adapter !== null) assertMatch(cpuOnly.reason, /webgpu lacks RaggedRange/);

  await assertRejects(
    () => autoFor(["NoSuchKernel"]),
    Error,
    "no backend has every kernel this job needs",
  );
});

Deno.test("selectDevice() refuses an explicit device that lacks a kernel, naming it, and an unknown device", async () => {
  await assertRejects(
    () => selectDevice("wasm", { training: true, kernels: ["Conv2D", "FFT"], ...WASM_ONE_THREAD }),
    Error,
    'Cannot use device "wasm": it lacks the kernels FFT this job needs',
  );
  if (adapter !== null) {
    await assertRejects(
      () => selectDevice("webgpu", { training: true, kernels: ["Conv2D", "BitwiseAnd"] }),
      Error,
      'Cannot use device "webgpu": it lacks the kernels BitwiseAnd this job needs',
    );
  }
  await assertRejects(
    () => selectDevice("tpu" as DeviceName, { training: true }),
    RangeError,
    'Unknown device "tpu": use one of auto, webgpu, wasm, cpu',
  );
  await tf.setBackend("cpu");
});
