import * as tf from "@tensorflow/tfjs";
import { assertEmbeddedWasmFresh, HAS_CLANG } from "../../_helpers/embedded_wasm.ts";
import { type BackendWasm, getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { assert, assertEquals } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import {
  setSimdKernelsEnabled,
  simdKernelsAvailable,
  simdThreadsBeyondXnnpack,
} from "../../../sdk/devices/wasm/_compiled.ts";
import {
  contiguousRows,
  oneChannelStride1,
  padded,
  simdConv2D,
} from "../../../sdk/devices/wasm/kernels/conv.ts";
import {
  simdConv2DBackpropFilter,
  simdConv2DBackpropInput,
} from "../../../sdk/devices/wasm/kernels/conv_grad.ts";
import {
  simdAvgPoolGradTiled,
  simdAvgPoolTiled,
  simdMaxPool2x2,
  simdMaxPoolGrad2x2,
} from "../../../sdk/devices/wasm/kernels/pool.ts";
import {
  simdBiasAdd,
  simdRelu,
  simdReluGrad,
} from "../../../sdk/devices/wasm/kernels/elementwise.ts";
import { simdMatMul } from "../../../sdk/devices/wasm/kernels/matmul.ts";
import { simdSumLeading } from "../../../sdk/devices/wasm/kernels/reduction.ts";
import { CLIP_GRAD_KERNEL, RELU_GRAD_KERNEL } from "../../../sdk/devices/wasm/register.ts";
import { simdKernels } from "../../../sdk/devices/wasm/simd/module.ts";
import {
  BATCH_NORM_KERNELS,
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  MAX_POOL_SCATTER_KERNEL,
} from "../../../sdk/devices/kernels.ts";
import { type KernelCall, runNow, runOn } from "./_kernel_runs.ts";
import { assertNear, relativeError, seeded, seededTensor } from "./_compare.ts";

// One thread unless ZOO_WASM_THREADS says otherwise (wasm_threads_test.ts runs
// this file again on two threads, where the kernels split their work).
const setup = await initWasmBackend(
  Deno.env.get("ZOO_WASM_THREADS") === undefined ? { threads: false } : {},
);

const TOL = 1e-4;
type Shape4 = [number, number, number, number];
type Case = {
  x: Shape4;
  f: Shape4;
  s: [number, number];
  pad: "same" | "valid";
  d: [number, number];
};

/** Random convolutions: odd channel counts (tails of the 8-wide tiles), 1×1 to 5×5, strides, dilations. */
function cases(n: number, seed: number, dilate: boolean): Case[] {
  let s = seed;
  const pick = <T>(xs: readonly T[]): T => {
    // mulberry32: every bit of the state is mixed, so picks do not correlate.
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return xs[((t ^ (t >>> 14)) >>> 0) % xs.length]!;
  };
  const out: Case[] = [];
  while (out.length < n) {
    const k: [number, number] = [pick([1, 2, 3, 5]), pick([1, 3, 4, 5])];
    const st: [number, number] = [pick([1, 1, 2, 3]), pick([1, 2])];
    const d: [number, number] = dilate && st[0] === 1 && st[1] === 1
      ? [pick([1, 2]), pick([1, 3])]
      : [1, 1];
    const c: Case = {
      x: [pick([1, 2, 3]), pick([1, 4, 7, 12]), pick([2, 5, 9, 13]), pick([1, 2, 3, 5, 7, 16])],
      f: [k[0], k[1], 0, pick([1, 3, 6, 8, 9, 16, 17])],
      s: st,
      pad: pick(["same", "valid"] as const),
      d,
    };
    c.f[2] = c.x[3];
    const eh = (k[0] - 1) * d[0] + 1, ew = (k[1] - 1) * d[1] + 1;
    if (c.pad === "valid" && (c.x[1] < eh || c.x[2] < ew)) continue;
    out.push(c);
  }
  // Big enough that every kernel splits its work across threads.
  out.push(
    { x: [4, 20, 20, 3], f: [3, 3, 3, 8], s: [1, 1], pad: "same", d: [1, 1] },
    { x: [5, 17, 15, 6], f: [5, 5, 6, 13], s: [2, 1], pad: "valid", d: [1, 1] },
    // Padding, window starts and the input gradient's crop split by images too (64 Ki elements).
    { x: [23, 57, 53, 1], f: [5, 3, 1, 6], s: [1, 1], pad: "same", d: [1, 1] },
    // One input channel, stride 1 (the column tiles): every channel count up
    // to 8, widths with and without a remainder of 4.
    ...[1, 2, 3, 4, 5, 6, 7, 8].map((o): Case => ({
      x: [2, 9, 4 + o, 1],
      f: [1 + (o % 5), 1 + ((o * 3) % 5), 1, o],
      s: [1, 1],
      pad: o % 2 === 0 ? "same" : "valid",
      d: [1, 1],
    })),
  );
  return out;
}

function info(c: Case): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(c.x, c.f, c.s, c.d, c.pad);
}

/** The output shape of case `c`'s convolution. */
function outShape(c: Case): number[] {
  const ci = info(c);
  return [c.x[0], ci.outHeight, ci.outWidth, c.f[3]];
}

/** Asserts that a compiled kernel's output has `shape` and, within TOL, cpu's values for `c`. */
function assertLikeCpu(
  got: { values: Float32Array; shape: number[] },
  shape: number[],
  cpu: Float32Array,
  c: Case,
): void {
  assertEquals(got.shape, shape);
  assertNear(got.values, cpu, TOL, `case ${JSON.stringify(c)}`);
}

const attrs = (c: Case) => ({
  strides: c.s,
  pad: c.pad,
  dataFormat: "NHWC",
  dilations: c.d,
  dimRoundingMode: undefined,
});

/** Runs a kernel on the cpu backend and returns its values. */
async function onCpu(
  kernel: string,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  kernelAttrs: Record<string, unknown>,
): Promise<Float32Array> {
  await tf.setBackend("cpu");
  const ts: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.values, v.shape);
  const out = tf.engine().runKernel(kernel, ts, kernelAttrs as tf.NamedAttrMap) as tf.Tensor;
  const values = (await out.data()) as Float32Array;
  tf.dispose([out, ...Object.values(ts)]);
  await tf.setBackend("wasm");
  return values;
}

/**
 * Element by element the same value (`Object.is`, so 0 and -0 differ), any
 * NaN matching any NaN: NaN bit patterns differ between JavaScript's
 * `Math.max` and wasm's `f32x4.max`, and nothing reads them.
 */
function assertSameValues(got: Float32Array, want: Float32Array, what: string): void {
  assertEquals(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!, w = want[i]!;
    assert(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)), `${what}: [${i}] ${g} vs ${w}`);
  }
}

/** Runs one compiled kernel on wasm tensors and returns its values and shape. */
async function onSimd(
  f: (backend: BackendWasm, a: tf.TensorInfo, b: tf.TensorInfo) => tf.TensorInfo | null,
  a: { values: Float32Array; shape: number[] },
  b: { values: Float32Array; shape: number[] },
): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const ta = tf.tensor(a.values, a.shape), tb = tf.tensor(b.values, b.shape);
  const info = f(backend, ta, tb);
  assert(info !== null, "the compiled kernels should run here");
  const out = tf.engine().makeTensorFromTensorInfo(info);
  const values = (await out.data()) as Float32Array;
  const shape = out.shape;
  tf.dispose([out, ta, tb]);
  return { values, shape };
}

Deno.test("the compiled SIMD kernels load on this runtime and share the backend's heap", async () => {
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  assert(simdKernelsAvailable(backend));
  // As many threads as the backend was asked for: a worker pool on the threaded build.
  assertEquals(simdKernels(backend)!.threads, setup.threads);
  assert(setup.threads >= getThreadsCount());
});

Deno.test("compiled forward convolution matches cpu on random shapes, strides and dilations", async () => {
  for (const [i, c] of cases(40, 7, true).entries()) {
    const x = seededTensor(c.x, 100 + i), f = seededTensor(c.f, 200 + i);
    const cpu = await onCpu("Conv2D", { x, filter: f }, attrs(c));
    const got = await onSimd((be, a, b) => simdConv2D(be, a, b, info(c)), x, f);
    assertLikeCpu(got, outShape(c), cpu, c);
  }
});

Deno.test("compiled fused convolution (bias, then linear, relu or relu6) matches cpu's FusedConv2D, directly and as the registered kernel", async () => {
  const activations = ["linear", "relu", "relu6"] as const;
  for (const [i, c] of [...cases(24, 17, true), ...oneChannelCases].entries()) {
    const activation = activations[i % 3]!, withBias = i % 4 !== 3;
    const x = { values: seeded(c.x, 2800 + i).map((v) => 4 * v), shape: c.x };
    x.values[0] = NaN;
    const f = seededTensor(c.f, 2900 + i);
    const b = seededTensor([c.f[3]], 3000 + i);
    const inputs = withBias ? { x, filter: f, bias: b } : { x, filter: f };
    const fusedAttrs = { ...attrs(c), activation, leakyreluAlpha: 0.2 };
    const want = await onEngine("cpu", "FusedConv2D", inputs, fusedAttrs);
    await tf.setBackend("wasm");
    const backend = tf.backend() as BackendWasm;
    const tx = tf.tensor(x.values, x.shape), tf_ = tf.tensor(f.values, f.shape);
    const tb = tf.tensor(b.values, b.shape);
    const out = simdConv2D(
      backend,
      tx,
      tf_,
      info(c),
      withBias ? { bias: tb, activation } : { activation },
    );
    assert(out !== null, "the compiled kernels should run here");
    const t = tf.engine().makeTensorFromTensorInfo(out);
    const got = (await t.data()) as Float32Array;
    tf.dispose([t, tx, tf_, tb]);
    const what = `case ${JSON.stringify(c)}, ${activation}, bias ${withBias}`;
    const nan = (v: Float32Array) => Array.from(v).flatMap((a, j) => Number.isNaN(a) ? [j] : []);
    assertEquals(nan(got), nan(want.values), `${what}: NaN positions`);
    const clean = (v: Float32Array) => v.map((a) => Number.isNaN(a) ? 0 : a);
    assertNear(clean(got), clean(want.values), TOL, what);
    // The registered kernel: on the SIMD pool when it has more threads than XNNPACK.
    let engine = want;
    const calls = await compiledCalls(async () => {
      engine = await onEngine("wasm", "FusedConv2D", inputs, fusedAttrs);
    });
    const pooled = simdThreadsBeyondXnnpack(backend);
    // One input channel: columns × every output channel (up to 8); a 1×1 convolution over an
    // unpadded input: a matrix product of its rows.
    const ci = info(c);
    const kernel = oneChannelStride1(ci) && ci.outChannels <= 8 && ci.outWidth >= 4
      ? "conv1_taps"
      : contiguousRows(ci)
      ? "pw_gemm"
      : "conv_taps";
    assertEquals(calls.includes(kernel), pooled, `${what}: ${kernel} ran`);
    assertNear(clean(engine.values), clean(want.values), TOL, `${what} (registered kernel)`);
  }
});

Deno.test("the one-channel convolution pooled as it is computed equals FusedConv2D then MaxPool bit for bit, and the registered kernel runs it", async () => {
  const activations = ["linear", "relu", "relu6"] as const;
  // Every output channel count up to 8; conv outputs with odd and even heights and widths,
  // widths whose pooled columns are not a multiple of 2 (the last group overlaps); images
  // enough to split the pooled rows across threads.
  const geometries: [Shape4, number, number, "same" | "valid"][] = [];
  for (let o = 1; o <= 8; o++) {
    geometries.push([[1 + (o % 3), 8 + o, 9 + 2 * o, 1], 1 + (o % 5), 1 + ((o * 3) % 5), "same"]);
    geometries.push([[2, 11 + o, 7 + o, 1], 3, 3, o % 2 === 0 ? "valid" : "same"]);
  }
  // LeNet's first layer on 40 images; outputs too narrow (3 columns) and too short (1 row) to
  // pool as they are computed: FusedConv2D and MaxPool run, or nothing (no window).
  geometries.push(
    [[40, 28, 28, 1], 5, 5, "same"],
    [[2, 6, 5, 1], 3, 3, "valid"],
    [[3, 5, 8, 1], 5, 5, "valid"],
  );
  for (const [i, [xs, kh, kw, pad]] of geometries.entries()) {
    const o = i < 16 ? 1 + (i >> 1) : 6;
    const c: Case = { x: xs, f: [kh, kw, 1, o], s: [1, 1], pad, d: [1, 1] };
    const activation = activations[i % 3]!, withBias = i % 4 !== 3;
    const x = { values: seeded(c.x, 5100 + i).map((v) => 4 * v), shape: c.x };
    // NaN never wins a window; ties between 0 and -0 keep the first value.
    x.values[0] = NaN;
    x.values[3] = -0;
    const f = seededTensor(c.f, 5200 + i), b = seededTensor([o], 5300 + i);
    const inputs = withBias ? { x, filter: f, bias: b } : { x, filter: f };
    const fusedAttrs = { ...attrs(c), activation };
    const what = `case ${JSON.stringify(c)}, ${activation}, bias ${withBias}`;
    let want: { values: Float32Array; shape: number[] } = {
      values: new Float32Array(0),
      shape: [],
    };
    const twoCalls = await compiledCalls(async () => {
      const conv = await onEngine("wasm", "FusedConv2D", inputs, fusedAttrs);
      want = await onEngine("wasm", "MaxPool", { x: conv }, {
        filterSize: 2,
        strides: 2,
        pad: "valid",
      });
    });
    let got = want;
    const calls = await compiledCalls(async () => {
      got = await onEngine("wasm", "ZooConv2DMaxPool", inputs, fusedAttrs);
    });
    assertEquals(got.shape, want.shape, what);
    const ci = info(c), reach = padded(ci);
    const copied = reach.XH !== c.x[1] || reach.XW !== c.x[2];
    if (ci.outHeight < 2) assertEquals(calls, [], what);
    else if (ci.outWidth < 4) assertEquals(calls, twoCalls, what);
    else assertEquals(calls, copied ? ["pad_copy", "conv1_taps_pool"] : ["conv1_taps_pool"], what);
    /** The values that are not finite (a window of NaNs pools to -Infinity), by position. */
    const special = (v: Float32Array) =>
      Array.from(v).flatMap((a, j) => Number.isFinite(a) ? [] : [`${j}:${a}`]);
    const finite = (v: Float32Array) => v.map((a) => Number.isFinite(a) ? a : 0);
    // FusedConv2D runs conv1_taps where the SIMD pool has more threads than XNNPACK (the same
    // sums, so the same values); XNNPACK's sums round otherwise, and its ReLU makes NaN 0.
    if (twoCalls.includes("conv1_taps") || ci.outWidth < 4) {
      assertSameValues(got.values, want.values, what);
    } else if (activation === "linear") {
      assertEquals(special(got.values), special(want.values), `${what}: NaN and infinities`);
      assertNear(finite(got.values), finite(want.values), TOL, what);
    }
    assertEquals(
      twoCalls.includes("conv1_taps"),
      ci.outWidth >= 4 && simdThreadsBeyondXnnpack(tf.backend() as BackendWasm),
      `${what}: conv1_taps ran for the reference`,
    );
    // And cpu's two ops, to within rounding.
    const cpu = await onEngine("cpu", "FusedConv2D", inputs, fusedAttrs);
    const cpuPooled = await onEngine("cpu", "MaxPool", { x: cpu }, {
      filterSize: 2,
      strides: 2,
      pad: "valid",
    });
    assertEquals(special(got.values), special(cpuPooled.values), `${what}: cpu's NaN, infinities`);
    assertNear(finite(got.values), finite(cpuPooled.values), TOL, `${what} against cpu`);
  }
});

/**
 * One input channel at stride 1 (the column-vector filter gradient): filters
 * wider than the 5 taps a pass holds, channel counts with a lone last
 * channel, widths with every remainder of 4, and enough rows for several
 * 8-row blocks and a partial one.
 */
const oneChannelCases: Case[] = ([
  [1, 1, 1],
  [3, 5, 6],
  [2, 7, 9],
  [5, 11, 16],
  [4, 6, 17],
  [1, 4, 3],
  [5, 5, 6],
] as const).map(([kh, kw, o], i): Case => ({
  x: [1 + (i % 3), 11 + i, 12 + kw + i, 1],
  f: [kh, kw, 1, o],
  s: [1, 1],
  pad: i % 2 === 0 ? "same" : "valid",
  d: [1, 1],
}));

Deno.test("compiled filter gradient matches cpu on random shapes and strides", async () => {
  for (const [i, c] of [...cases(40, 11, false), ...oneChannelCases].entries()) {
    const x = seededTensor(c.x, 300 + i), dy = seededTensor(outShape(c), 400 + i);
    const cpu = await onCpu("Conv2DBackpropFilter", { x, dy }, { ...attrs(c), filterShape: c.f });
    const got = await onSimd((be, a, b) => simdConv2DBackpropFilter(be, a, b, info(c)), x, dy);
    assertLikeCpu(got, c.f, cpu, c);
  }
});

Deno.test("compiled input gradient matches cpu on random shapes and strides", async () => {
  for (const [i, c] of cases(40, 13, false).entries()) {
    const f = seededTensor(c.f, 500 + i), dy = seededTensor(outShape(c), 600 + i);
    const cpu = await onCpu("Conv2DBackpropInput", { dy, filter: f }, {
      ...attrs(c),
      inputShape: c.x,
    });
    const got = await onSimd((be, a, b) => simdConv2DBackpropInput(be, a, b, info(c)), dy, f);
    assertLikeCpu(got, c.x, cpu, c);
  }
});

Deno.test("compiled bias add and leading-axis sums match cpu for every channel count's vector tail", async () => {
  for (
    const [i, [rows, cols]]
      of ([[1, 1], [5, 3], [7, 6], [130, 6], [9, 16], [33, 5], [4099, 7]] as [number, number][])
        .entries()
  ) {
    const x = seededTensor([rows, cols], 900 + i);
    const bias = seededTensor([cols], 950 + i);
    const added = await onSimd((be, a, b) => simdBiasAdd(be, a, b), x, bias);
    const want = await onCpu("Add", { a: x, b: bias }, {});
    assertEquals(added.values, want);
    const summed = await onSimd(
      (be, a) => simdSumLeading(be, a, rows, [cols], 1 / rows),
      x,
      bias,
    );
    const mean = await onCpu("Mean", { x }, { axis: [0], keepDims: false });
    assertNear(summed.values, mean, 1e-6, `[${rows}, ${cols}]`);
  }
});

Deno.test("compiled 2×2 max-pool gradient matches cpu: odd sizes, ties, NaN and -Infinity windows", async () => {
  for (
    const [i, shape] of ([[2, 6, 6, 4], [1, 5, 7, 6], [3, 4, 3, 1], [1, 9, 9, 9]] as Shape4[])
      .entries()
  ) {
    const values = seeded(shape, 1000 + i);
    // Ties (equal pairs), a NaN and a -Infinity window.
    for (let j = 0; j < values.length; j += 7) values[j] = values[j + 1] ?? 0;
    values[0] = NaN;
    const c = shape[3], w = shape[2];
    for (const at of [0, c, w * c, (w + 1) * c]) values[at + c - 1] = -Infinity;
    const x = { values, shape };
    const out: Shape4 = [shape[0], Math.floor(shape[1] / 2), Math.floor(shape[2] / 2), c];
    const dy = seededTensor(out, 1100 + i);
    const attrs = { filterSize: [2, 2], strides: [2, 2], pad: "valid", dimRoundingMode: undefined };
    await tf.setBackend("cpu");
    const pooled = tf.maxPool(tf.tensor4d(values, shape), 2, 2, "valid");
    const output = { values: (await pooled.data()) as Float32Array, shape: out };
    pooled.dispose();
    const want = await onCpu("MaxPoolGrad", { dy, input: x, output }, attrs);
    const got = await onSimd((be, a, b) => simdMaxPoolGrad2x2(be, a, b), dy, x);
    assertEquals(got.values, want, `shape ${shape}`);
  }
});

Deno.test("compiled ReLU gradient matches cpu's dy · step(x): zeros, NaN, infinities, every vector tail, split sizes", async () => {
  for (const [i, n] of [1, 3, 8, 13, 65536 + 7].entries()) {
    const xv = seeded([n], 1400 + i), dv = seeded([n], 1450 + i);
    const special = [0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30];
    for (let j = 0; j < special.length && j < n; j++) xv[(j * 5) % n] = special[j]!;
    if (n > 3) {
      dv[1] = Infinity; // times step(x) = 0 or 1
      dv[2] = NaN;
    }
    const x = { values: xv, shape: [n] }, dy = { values: dv, shape: [n] };
    await tf.setBackend("cpu");
    const ref = tf.tidy(() => tf.mul(tf.tensor(dv), tf.cast(tf.step(tf.tensor(xv)), "float32")));
    const want = (await ref.data()) as Float32Array;
    ref.dispose();
    const got = await onSimd((be, a, b) => simdReluGrad(be, a, b), x, dy);
    assertEquals(got.values, want, `n = ${n}`);
  }
});

Deno.test("compiled ReLU and 2×2 max pooling match cpu: NaN, -0, infinities, odd sizes, every channel tail", async () => {
  for (const [i, n] of [1, 5, 8, 65536 + 3].entries()) {
    const xv = seeded([n], 1700 + i);
    [NaN, -0, 0, Infinity, -Infinity].forEach((v, j) => {
      if (j < n) xv[(j * 3) % n] = v;
    });
    const x = { values: xv, shape: [n] };
    const got = await onSimd((be, a) => simdRelu(be, a), x, x);
    assertSameValues(got.values, await onCpu("Relu", { x }, {}), `relu, n = ${n}`);
  }
  const shapes: Shape4[] = [[2, 6, 6, 4], [1, 5, 7, 6], [3, 4, 3, 1], [1, 9, 9, 9], [1, 4, 4, 3]];
  for (const [i, shape] of shapes.entries()) {
    const values = seeded(shape, 1800 + i);
    const c = shape[3], w = shape[2];
    // A window of NaN and -Infinity only, and a NaN beside finite values.
    for (const at of [0, c, w * c, (w + 1) * c]) {
      values[at + c - 1] = at === 0 ? NaN : -Infinity;
    }
    values[2 * c] = NaN;
    const x = { values, shape };
    const attrs = { filterSize: [2, 2], strides: [2, 2], pad: "valid", dimRoundingMode: undefined };
    const got = await onSimd((be, a) => simdMaxPool2x2(be, a), x, x);
    assertSameValues(got.values, await onCpu("MaxPool", { x }, attrs), `max pool ${shape}`);
  }
});

/** The compiled kernels `run` calls on the wasm backend's heap, in order. */
async function compiledCalls(run: () => Promise<unknown>): Promise<string[]> {
  await tf.setBackend("wasm");
  const k = simdKernels(tf.backend() as BackendWasm)!;
  const names: string[] = [], parallel = k.parallel;
  (k as { parallel: typeof parallel }).parallel = (fn, jobs) => {
    names.push(fn);
    parallel(fn, jobs);
  };
  try {
    await run();
  } finally {
    (k as { parallel: typeof parallel }).parallel = parallel;
  }
  return names;
}

/** A kernel, its inputs and its attributes, for {@linkcode onEngine}. */
type KernelRun = [
  string,
  Record<string, { values: Float32Array; shape: number[] }>,
  Record<string, unknown>,
];

/** A convolution kernel's attributes: 'same' padding, NHWC, no dilation. */
function sameConv(strides: [number, number]): Record<string, unknown> {
  return {
    strides,
    pad: "same",
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: undefined,
  };
}

/** Runs a kernel through the engine on `backend` (so the registered replacement runs on wasm). */
async function onEngine(
  backend: string,
  kernel: string,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  kernelAttrs: Record<string, unknown>,
): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend(backend);
  const ts: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.values, v.shape);
  const out = tf.engine().runKernel(kernel, ts, kernelAttrs as tf.NamedAttrMap) as tf.Tensor;
  const values = (await out.data()) as Float32Array, shape = out.shape;
  tf.dispose([out, ...Object.values(ts)]);
  await tf.setBackend("wasm");
  return { values, shape };
}

Deno.test("non-square filters with 'same' padding at strides above 1 match cpu on every wasm convolution (the shipped kernels pad those wrongly)", async () => {
  // Geometries where the shipped XNNPACK kernels gave other values than cpu.
  const geometries: [Shape4, [number, number], [number, number]][] = [
    [[1, 4, 2, 6], [3, 1], [2, 2]],
    [[2, 7, 2, 6], [2, 1], [2, 2]],
    [[1, 4, 5, 5], [1, 3], [2, 2]],
    [[1, 5, 2, 7], [3, 1], [3, 2]],
    [[2, 9, 8, 6], [1, 3], [2, 1]],
  ];
  for (const [i, [shape, [kh, kw], strides]] of geometries.entries()) {
    const C = shape[3], O = 4;
    const x = seededTensor(shape, 3100 + i);
    const filter = seededTensor([kh, kw, C, O], 3200 + i);
    const dwFilter = seededTensor([kh, kw, C, 2], 3300 + i);
    const bias = seededTensor([O], 3400 + i);
    const dwBias = seededTensor([2 * C], 3500 + i);
    const common = sameConv(strides);
    const runs: KernelRun[] = [
      ["Conv2D", { x, filter }, common],
      ["FusedConv2D", { x, filter, bias }, { ...common, activation: "relu", leakyreluAlpha: 0.2 }],
      ["DepthwiseConv2dNative", { x, filter: dwFilter }, common],
      ["FusedDepthwiseConv2D", { x, filter: dwFilter, bias: dwBias }, {
        ...common,
        activation: "linear",
        leakyreluAlpha: 0.2,
      }],
    ];
    for (const [kernel, inputs, kernelAttrs] of runs) {
      const want = await onEngine("cpu", kernel, inputs, kernelAttrs);
      // With the compiled kernels off too, so Conv2D takes the shipped path on any thread count.
      for (const compiled of [true, false]) {
        setSimdKernelsEnabled(compiled);
        try {
          const got = await onEngine("wasm", kernel, inputs, kernelAttrs);
          assertEquals(got.shape, want.shape);
          const err = relativeError(got.values, want.values);
          assert(
            err <= TOL,
            `${kernel} ${shape} filter ${kh}×${kw} strides ${strides}, compiled ${compiled}: relative error ${err}`,
          );
        } finally {
          setSimdKernelsEnabled(true);
        }
      }
    }
  }
});

Deno.test("compiled kernels never use a heap view taken before an allocation (one that grows the heap detaches it, and writes through it are lost)", async () => {
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const k = simdKernels(backend)!;
  // Every view k.f32() and k.i32() hand out throws once an allocation (which
  // may grow the heap) has happened after it was taken.
  let generation = 0;
  const guard = <T extends Float32Array | Int32Array>(view: T): T => {
    const born = generation;
    const check = (p: string | symbol, what: string) => {
      if (generation !== born && typeof p === "string" && /^\d+$/.test(p)) {
        throw new Error(`a heap view taken before an allocation was ${what}`);
      }
    };
    return new Proxy(view, {
      get(t, p) {
        check(p, "read");
        const v = Reflect.get(t, p, t);
        return typeof v === "function" ? v.bind(t) : v;
      },
      set(t, p, v) {
        check(p, "written");
        return Reflect.set(t, p, v, t);
      },
    });
  };
  const saved = { f32: k.f32, i32: k.i32, malloc: k.malloc, makeOutput: backend.makeOutput };
  const patch = k as { f32: typeof k.f32; i32: typeof k.i32; malloc: typeof k.malloc };
  const shape: Shape4 = [3, 9, 7, 5];
  const x = seededTensor(shape, 4000);
  const vec = seededTensor([5], 4001);
  const positive = { values: seeded([5], 4002).map((v) => Math.abs(v) + 0.5), shape: [5] };
  const f = seededTensor([3, 3, 5, 4], 4003);
  const dy = seededTensor([3, 9, 7, 4], 4004);
  const a = seededTensor([40, 30], 4005);
  const b = seededTensor([40, 20], 4006);
  const conv = sameConv([1, 1]);
  const runs: KernelRun[] = [
    ["FusedBatchNorm", { x, mean: vec, variance: positive, offset: vec, scale: positive }, {
      varianceEpsilon: 1e-3,
    }],
    ["Add", { a: x, b: vec }, {}],
    ["Sub", { a: x, b: vec }, {}],
    ["Multiply", { a: x, b: vec }, {}],
    ["Mean", { x }, { axis: [0, 1, 2], keepDims: false }],
    ["Conv2D", { x, filter: f }, conv],
    ["Conv2DBackpropFilter", { x, dy }, { ...conv, filterShape: [3, 3, 5, 4] }],
    ["Conv2DBackpropInput", { dy, filter: f }, { ...conv, inputShape: shape }],
    ["BatchMatMul", { a, b }, { transposeA: true, transposeB: false }],
    ["BatchMatMul", { a, b: a }, { transposeA: false, transposeB: true }],
    ["PadV2", { x }, { paddings: [[0, 0], [1, 2], [0, 1], [0, 0]], constantValue: 0 }],
  ];
  for (const [kernel, inputs, kernelAttrs] of runs) {
    const want = await onEngine("cpu", kernel, inputs, kernelAttrs);
    let got = want;
    await tf.setBackend("wasm");
    patch.f32 = () => guard(saved.f32());
    patch.i32 = () => guard(saved.i32());
    patch.malloc = (bytes) => (generation++, saved.malloc(bytes));
    backend.makeOutput = (...args) => (generation++, saved.makeOutput.apply(backend, args));
    try {
      got = await onEngine("wasm", kernel, inputs, kernelAttrs);
    } finally {
      Object.assign(patch, { f32: saved.f32, i32: saved.i32, malloc: saved.malloc });
      backend.makeOutput = saved.makeOutput;
    }
    assertNear(got.values, want.values, TOL, kernel);
  }
});

Deno.test("wasm batch normalization matches cpu: every channel tail, optional offset and scale, [C] and [1, 1, 1, C] parameters, split sizes", async () => {
  const shapes: Shape4[] = [[2, 3, 5, 1], [1, 4, 3, 3], [3, 5, 5, 6], [2, 7, 3, 5], [
    16,
    64,
    64,
    8,
  ]];
  for (const [i, shape] of shapes.entries()) {
    const C = shape[3];
    const param = (seed: number, positive = false) => {
      const v = seeded([C], seed);
      return {
        values: positive ? v.map((a) => Math.abs(a) + 0.1) : v,
        shape: i % 2 ? [1, 1, 1, C] : [C],
      };
    };
    const x = seededTensor(shape, 2000 + i);
    x.values[0] = NaN;
    const full = {
      x,
      mean: param(2100 + i),
      variance: param(2200 + i, true),
      offset: param(2300 + i),
      scale: param(2400 + i),
    };
    for (const drop of [[], ["offset"], ["scale"], ["offset", "scale"]]) {
      const inputs = Object.fromEntries(Object.entries(full).filter(([k]) => !drop.includes(k)));
      const attrs = { varianceEpsilon: 1e-3 };
      const want = await onEngine("cpu", "FusedBatchNorm", inputs, attrs);
      let got = want;
      const calls = await compiledCalls(async () => {
        got = await onEngine("wasm", "FusedBatchNorm", inputs, attrs);
      });
      assertEquals(calls, ["batch_norm"]);
      assertEquals(got.shape, shape);
      assert(Number.isNaN(got.values[0]), "NaN in, NaN out");
      got.values[0] = want.values[0] = 0;
      assertNear(got.values, want.values, 1e-5, `${shape} without [${drop}]`);
    }
  }
});

Deno.test("wasm Sub of a vector along the last axis, Multiply by one, by a single value or of one shape, Square and same-dtype Cast match cpu exactly, on the compiled kernels", async () => {
  for (
    const [i, shape] of ([[2, 3, 5, 1], [1, 4, 3, 3], [3, 5, 5, 6], [16, 64, 64, 8]] as Shape4[])
      .entries()
  ) {
    const C = shape[3];
    const x = seededTensor(shape, 3600 + i);
    [NaN, -0, Infinity, -Infinity].forEach((v, j) => (x.values[j * 3] = v));
    for (const vshape of [[C], [1, 1, 1, C]]) {
      const v = { values: seeded([C], 3700 + i), shape: vshape };
      v.values[0] = -0;
      const want = await onEngine("cpu", "Sub", { a: x, b: v }, {});
      let got = want;
      const calls = await compiledCalls(async () => {
        got = await onEngine("wasm", "Sub", { a: x, b: v }, {});
      });
      assertEquals(calls, ["bias_add"]);
      assertEquals(got.shape, want.shape);
      assertSameValues(got.values, want.values, `${shape} − ${vshape}`);
    }
    for (const vshape of [[C], [1, 1, 1, C], [], [1, 1, 1, 1]]) {
      const v = { values: seeded([vshape.reduce((p, d) => p * d, 1)], 3900 + i), shape: vshape };
      for (const [a, b] of [[x, v], [v, x]]) {
        const want = await onEngine("cpu", "Multiply", { a: a!, b: b! }, {});
        let got = want;
        const calls = await compiledCalls(async () => {
          got = await onEngine("wasm", "Multiply", { a: a!, b: b! }, {});
        });
        assertEquals(calls, ["bias_add"], `${a!.shape} · ${b!.shape}`);
        assertEquals(got.shape, want.shape);
        assertSameValues(got.values, want.values, `${a!.shape} · ${b!.shape}`);
      }
    }
    // Two tensors of one shape: the compiled product (Sub keeps the shipped kernel).
    const same = seededTensor(shape, 3800 + i);
    const product = await onEngine("cpu", "Multiply", { a: x, b: same }, {});
    let products = product;
    assertEquals(
      await compiledCalls(
        async () => (products = await onEngine("wasm", "Multiply", { a: x, b: same }, {})),
      ),
      ["mul"],
    );
    assertSameValues(products.values, product.values, `${shape} · ${shape}`);
    const want = await onEngine("cpu", "Sub", { a: x, b: same }, {});
    assertSameValues(
      (await onEngine("wasm", "Sub", { a: x, b: same }, {})).values,
      want.values,
      `${shape} − ${shape}`,
    );
    const squares = await onEngine("cpu", "Square", { x }, {});
    let got = squares;
    assertEquals(
      await compiledCalls(async () => (got = await onEngine("wasm", "Square", { x }, {}))),
      ["square"],
    );
    assertSameValues(got.values, squares.values, `square ${shape}`);
  }
  // A cast to the tensor's own dtype shares its buffer; other casts convert.
  await tf.setBackend("wasm");
  const f = tf.tensor([1.5, -2.5, 0, 3, NaN, -0]);
  const same = tf.cast(f, "float32");
  f.dispose();
  assertSameValues(
    (await same.data()) as Float32Array,
    new Float32Array([1.5, -2.5, 0, 3, NaN, -0]),
    "the shared buffer outlives the input",
  );
  const ints = tf.cast(same, "int32"), bools = tf.cast(same, "bool"), back = tf.cast(ints, "int32");
  const intBools = tf.cast(ints, "bool");
  assertEquals(Array.from(await ints.data()), [1, -2, 0, 3, 0, 0]);
  // cpu's x ≠ 0 (NaN is true); the shipped wasm kernel gave 254 for -2.5.
  assertEquals(Array.from(await bools.data()), [1, 1, 0, 1, 1, 0]);
  assertEquals(Array.from(await intBools.data()), [1, 1, 0, 1, 0, 0]);
  assertEquals(Array.from(await back.data()), [1, -2, 0, 3, 0, 0]);
  tf.dispose([same, ints, bools, back, intBools]);
  await tf.setBackend("cpu");
  const cpuBools = tf.tidy(() => tf.cast(tf.tensor([1.5, -2.5, 0, 3, NaN, -0]), "bool"));
  assertEquals(Array.from(await cpuBools.data()), [1, 1, 0, 1, 1, 0], "cpu's casts to bool");
  tf.dispose(cpuBools);
  await tf.setBackend("wasm");
});

Deno.test("wasm ClipByValue matches cpu exactly: NaN, -0, infinities, bounds, every vector tail, split sizes", async () => {
  for (const [i, n] of [1, 3, 8, 13, 65536 + 7].entries()) {
    const xv = seeded([n], 2500 + i).map((v) => 8 * v);
    [NaN, -0, 0, Infinity, -Infinity, 6, -1].forEach((v, j) => {
      if (j < n) xv[(j * 5) % n] = v;
    });
    for (const [lo, hi] of [[0, 6], [-1, 1], [-0.5, -0.5]]) {
      const attrs = { clipValueMin: lo, clipValueMax: hi };
      const x = { values: xv, shape: [n] };
      const want = await onEngine("cpu", "ClipByValue", { x }, attrs);
      let got = want;
      const calls = await compiledCalls(async () => {
        got = await onEngine("wasm", "ClipByValue", { x }, attrs);
      });
      assertEquals(calls, ["clip"]);
      assertSameValues(got.values, want.values, `n = ${n}, [${lo}, ${hi}]`);
    }
  }
});

Deno.test("wasm PadV2 matches cpu: zero padding of height and width on the compiled kernel, anything else on the shipped one", async () => {
  const cases: [Shape4, number[][], number][] = [
    [[2, 5, 4, 3], [[0, 0], [0, 1], [0, 1], [0, 0]], 0],
    [[1, 7, 6, 1], [[0, 0], [2, 3], [1, 0], [0, 0]], 0],
    [[3, 4, 4, 16], [[0, 0], [1, 1], [1, 1], [0, 0]], 0],
    [[16, 32, 32, 8], [[0, 0], [0, 1], [0, 1], [0, 0]], 0],
    // The shipped kernel: a constant other than 0, padding batch or channels.
    [[1, 3, 3, 2], [[0, 0], [1, 1], [1, 1], [0, 0]], 2.5],
    [[1, 3, 3, 2], [[1, 0], [0, 1], [0, 0], [0, 2]], 0],
  ];
  for (const [i, [shape, paddings, constantValue]] of cases.entries()) {
    const x = seededTensor(shape, 2600 + i);
    x.values[1] = NaN;
    const attrs = { paddings, constantValue };
    const want = await onEngine("cpu", "PadV2", { x }, attrs);
    let got = want;
    const calls = await compiledCalls(async () => {
      got = await onEngine("wasm", "PadV2", { x }, attrs);
    });
    assertEquals(calls, i < 4 ? ["pad_copy"] : [], `compiled kernels run for case ${i}`);
    assertEquals(got.shape, want.shape);
    assertSameValues(got.values, want.values, `${shape} padded ${JSON.stringify(paddings)}`);
  }
});

Deno.test("training a ReLU on wasm runs one fused gradient kernel, with cpu's numbers", async () => {
  const xv = seeded([4, 5, 6], 1500), wv = seeded([6, 3], 1501);
  xv[0] = 0;
  const grads = (backend: string) =>
    tf.setBackend(backend).then(async () => {
      const x = tf.tensor(xv, [4, 5, 6]), w = tf.tensor(wv, [6, 3]);
      const f = (a: tf.Tensor) => tf.relu(a).reshape([20, 6]).matMul(w).square().sum();
      let g: tf.Tensor | undefined;
      const profile = await tf.profile(() => {
        g = tf.grad(f)(x);
        return g;
      });
      const values = (await g!.data()) as Float32Array;
      tf.dispose([x, w, g!]);
      return { values, kernels: profile.kernels.map((k) => k.name) };
    });
  const cpu = await grads("cpu"), wasm = await grads("wasm");
  const err = relativeError(wasm.values, cpu.values);
  assert(err <= TOL, `relative error ${err}`);
  assert(wasm.kernels.includes(RELU_GRAD_KERNEL), wasm.kernels.join(" "));
  assert(!wasm.kernels.includes("Step"), wasm.kernels.join(" "));
  // Other backends keep tfjs's own gradient.
  assert(cpu.kernels.includes("Step") && !cpu.kernels.includes(RELU_GRAD_KERNEL));
});

Deno.test("ClipByValue's gradient on wasm is one fused kernel with cpu's numbers: NaN, -0, infinities, the bounds themselves, every vector tail, split sizes", async () => {
  for (const [i, n] of [1, 3, 8, 13, 65536 + 7].entries()) {
    const xv = seeded([n], 2700 + i).map((v) => 8 * v), dv = seeded([n], 2750 + i);
    [NaN, -0, 0, Infinity, -Infinity, 6, 6.000001, -1e-30].forEach((v, j) => {
      if (j < n) xv[(j * 5) % n] = v;
    });
    if (n > 3) {
      dv[1] = NaN; // kept where x is inside, 0 outside
      dv[2] = -0;
    }
    const grads = (backend: string) =>
      tf.setBackend(backend).then(async () => {
        const x = tf.tensor(xv), dy = tf.tensor(dv);
        let g: tf.Tensor | undefined;
        const profile = await tf.profile(() => {
          g = tf.grad((a: tf.Tensor) => tf.clipByValue(a, 0, 6))(x, dy);
          return g;
        });
        const values = (await g!.data()) as Float32Array;
        tf.dispose([x, dy, g!]);
        return { values, kernels: profile.kernels.map((k) => k.name) };
      });
    const cpu = await grads("cpu"), wasm = await grads("wasm");
    assertSameValues(wasm.values, cpu.values, `n = ${n}`);
    assert(wasm.kernels.includes(CLIP_GRAD_KERNEL), wasm.kernels.join(" "));
    assert(!wasm.kernels.includes("Select"), wasm.kernels.join(" "));
    // Other backends keep tfjs's own gradient.
    assert(cpu.kernels.includes("Select") && !cpu.kernels.includes(CLIP_GRAD_KERNEL));
  }
});

Deno.test("compiled average pooling and its gradient match cpu where windows tile the input: odd sizes, every channel tail", async () => {
  const cases: [Shape4, [number, number]][] = [
    [[2, 4, 4, 4], [2, 2]],
    [[1, 5, 7, 6], [2, 2]],
    [[3, 6, 6, 1], [3, 3]],
    [[1, 7, 8, 9], [2, 3]],
    [[128, 10, 10, 16], [2, 2]],
  ];
  for (const [i, [shape, [kh, kw]]] of cases.entries()) {
    const out: Shape4 = [shape[0], Math.floor(shape[1] / kh), Math.floor(shape[2] / kw), shape[3]];
    const dy = seededTensor(out, 1600 + i);
    const input = seededTensor(shape, 1650 + i);
    const attrs = { filterSize: [kh, kw], strides: [kh, kw], pad: "valid" };
    const want = await onCpu("AvgPoolGrad", { dy, input }, attrs);
    const got = await onSimd((be, a) => simdAvgPoolGradTiled(be, a, shape, kh, kw), dy, input);
    assertEquals(got.shape, shape);
    assertNear(got.values, want, 1e-6, `shape ${shape}, window ${kh}×${kw}`);
    // The forward pooling (cpu sums in float64, these kernels in float32).
    const pooled = await onSimd((be, a) => simdAvgPoolTiled(be, a, kh, kw), input, input);
    assertEquals(pooled.shape, out);
    assertNear(
      pooled.values,
      await onCpu("AvgPool", { x: input }, attrs),
      1e-6,
      `pool ${shape}, window ${kh}×${kw}`,
    );
  }
});

Deno.test("compiled matrix products match cpu: a·b, a·bᵀ, aᵀ·b, odd sizes, rank 2 and batch-1 rank 3", async () => {
  // [400, 128, 84] and [405, 100, 37]: aᵀ·b with more output rows than
  // summed rows (a dense layer's weight gradient) splits by output rows.
  const sizes: [number, number, number][] = [
    [1, 1, 1],
    [5, 3, 7],
    [13, 9, 6],
    [128, 400, 84],
    [300, 17, 33],
    [400, 128, 84],
    [405, 100, 37],
  ];
  for (const [i, [M, K, N]] of sizes.entries()) {
    for (const [tA, tB] of [[false, false], [false, true], [true, false]] as const) {
      for (const batch of [[], [1]]) {
        const as = [...batch, ...(tA ? [K, M] : [M, K])],
          bs = [...batch, ...(tB ? [N, K] : [K, N])];
        const a = seededTensor(as, 1200 + i);
        const b = seededTensor(bs, 1300 + i);
        await tf.setBackend("cpu");
        const ref = tf.tidy(() =>
          tf.matMul(tf.tensor(a.values, a.shape), tf.tensor(b.values, b.shape), tA, tB)
        );
        const want = (await ref.data()) as Float32Array;
        ref.dispose();
        const got = await onSimd((be, x, y) => simdMatMul(be, x, y, tA, tB), a, b);
        assertEquals(got.shape, [...batch, M, N]);
        const err = relativeError(got.values, want);
        assert(
          err <= TOL,
          `${M}×${K}×${N} tA=${tA} tB=${tB} batch ${batch}: relative error ${err}`,
        );
      }
    }
  }
});

Deno.test("compiled kernels write only their output: tensors around it keep their values", async () => {
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const c: Case = { x: [3, 9, 7, 3], f: [5, 3, 3, 6], s: [1, 1], pad: "same", d: [1, 1] };
  const ci = info(c);
  const before = tf.tensor(seeded([4099], 1));
  const x = tf.tensor(seeded(c.x, 2), c.x), f = tf.tensor(seeded(c.f, 3), c.f);
  const dy = tf.tensor(seeded([3, 9, 7, 6], 4), [3, 9, 7, 6]);
  const outs = [
    simdConv2D(backend, x, f, ci)!,
    simdConv2DBackpropFilter(backend, x, dy, ci)!,
    simdConv2DBackpropInput(backend, dy, f, ci)!,
  ];
  const after = tf.tensor(seeded([4099], 5));
  for (
    const [t, seed, shape] of [[before, 1, [4099]], [after, 5, [4099]], [x, 2, c.x], [
      f,
      3,
      c.f,
    ]] as const
  ) {
    assertEquals(await t.data(), seeded(shape as number[], seed));
  }
  for (const o of outs) backend.disposeData(o.dataId);
  tf.dispose([before, after, x, f, dy]);
});

Deno.test("with the compiled kernels off, the JavaScript and XNNPACK paths (convolutions, bias add, ReLU, 2×2 max and average pools, bias sums) still match cpu", async () => {
  const c: Case[] = [
    { x: [2, 9, 9, 3], f: [3, 3, 3, 5], s: [2, 2], pad: "same", d: [1, 1] },
    { x: [3, 12, 12, 1], f: [5, 5, 1, 6], s: [1, 1], pad: "same", d: [1, 1] },
    { x: [2, 8, 8, 6], f: [5, 5, 6, 16], s: [1, 1], pad: "valid", d: [1, 1] },
  ];
  setSimdKernelsEnabled(false);
  try {
    await tf.setBackend("wasm");
    assert(!simdKernelsAvailable(tf.backend() as BackendWasm));
    for (const [i, k] of c.entries()) {
      const x = seededTensor(k.x, 700 + i);
      const f = seededTensor(k.f, 800 + i);
      const bias = seeded([k.f[3]], 900 + i);
      const grads = (backend: string) =>
        tf.setBackend(backend).then(() =>
          tf.tidy(() => {
            const [gx, gf, gb] = tf.grads((a: tf.Tensor, b: tf.Tensor, v: tf.Tensor) => {
              const y = tf.relu(
                tf.add(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, k.s, k.pad), v),
              );
              return tf.maxPool(y as tf.Tensor4D, 2, 2, "valid").square().sum().add(
                tf.avgPool(y as tf.Tensor4D, 2, 2, "valid").square().sum(),
              );
            })([tf.tensor(x.values, x.shape), tf.tensor(f.values, f.shape), tf.tensor(bias)]);
            return tf.concat([gx!.flatten(), gf!.flatten(), gb!.flatten()]);
          })
        );
      const cpuT = await grads("cpu");
      const cpu = (await cpuT.data()) as Float32Array;
      cpuT.dispose();
      const wasmT = await grads("wasm");
      const wasm = (await wasmT.data()) as Float32Array;
      wasmT.dispose();
      assertNear(wasm, cpu, TOL, `case ${JSON.stringify(k)}`);
    }
  } finally {
    setSimdKernelsEnabled(true);
    await tf.setBackend("wasm");
  }
});

Deno.test({
  name: "the embedded SIMD kernels are what build.sh makes of kernels.c",
  ignore: !HAS_CLANG,
  fn: () =>
    assertEmbeddedWasmFresh({
      dir: new URL("../../../sdk/devices/wasm/simd/", import.meta.url),
      source: "kernels.c",
      generated: "kernels_wasm.ts",
      task: "build:simd",
    }),
});

Deno.test("BatchNormalization's training kernels match cpu's ops, compiled and not: every channel tail, rows left over, split sizes", async () => {
  await tf.setBackend("wasm");
  let seed = 500;
  for (const C of [1, 2, 3, 4, 5, 8, 13, 96]) {
    for (const shape of [[1, 1, 3, C], [2, 5, 7, C], [4, 40, 36, C]]) {
      const x = seededTensor(shape, seed++), dy = seededTensor(shape, seed++);
      const mean = seededTensor([C], seed++), coef = seededTensor([3, C], seed++);
      const calls: KernelCall[] = [
        { kernel: BATCH_NORM_KERNELS.variance, inputs: { x, mean }, attrs: {} },
        { kernel: BATCH_NORM_KERNELS.gradSums, inputs: { x, dy, mean }, attrs: {} },
        { kernel: BATCH_NORM_KERNELS.gradInput, inputs: { x, dy, mean, coef }, attrs: {} },
      ];
      for (const call of calls) {
        const want = await runOn("cpu", call);
        for (const compiled of [true, false]) {
          setSimdKernelsEnabled(compiled);
          try {
            const got = runNow(call);
            assertEquals(got.shape, want.shape);
            const err = relativeError(got.values, want.values);
            assert(
              err <= 1e-5,
              `${call.kernel} [${shape}], compiled ${compiled}: relative error ${err}`,
            );
          } finally {
            setSimdKernelsEnabled(true);
          }
        }
      }
    }
  }
});

Deno.test("large 1×1 input gradients match cpu (on two threads, the compiled product on every thread)", async () => {
  await tf.setBackend("wasm");
  let seed = 900;
  const cases: [number, number, number, number, number][] = [
    [2, 56, 56, 144, 24],
    [8, 28, 28, 96, 16],
    [1, 57, 55, 36, 100],
    [3, 7, 9, 384, 64],
    [2, 9, 11, 40, 17],
  ];
  for (const [B, H, W, O, C] of cases) {
    const call: KernelCall = {
      kernel: "Conv2DBackpropInput",
      inputs: {
        dy: seededTensor([B, H, W, O], seed++),
        filter: seededTensor([1, 1, C, O], seed++),
      },
      attrs: {
        strides: 1,
        pad: "same",
        dataFormat: "NHWC",
        dilations: 1,
        inputShape: [B, H, W, C],
      },
    };
    const want = await runOn("cpu", call);
    const before = tf.memory().numTensors;
    const got = runNow(call);
    assertEquals(tf.memory().numTensors, before);
    assertEquals(got.shape, want.shape);
    const err = relativeError(got.values, want.values);
    assert(err <= 1e-5, `[${B},${H},${W},${O}] → ${C}: relative error ${err}`);
  }
});

Deno.test("3×3 depthwise convolutions (bias and activation fused) and their input gradients match cpu at strides 1 and 2, every padding, every channel tail, on the compiled kernels where the threads outnumber XNNPACK's", async () => {
  await tf.setBackend("wasm");
  const pooled = simdThreadsBeyondXnnpack(tf.backend() as BackendWasm);
  const activations = ["linear", "relu", "relu6"] as const;
  const pads: unknown[] = ["same", "valid", 1, [[0, 0], [0, 2], [1, 0], [0, 0]]];
  let seed = 5000, i = 0;
  for (const C of [1, 3, 4, 5, 8, 13, 16, 17]) {
    for (const [H, W] of [[1, 1], [2, 3], [5, 4], [9, 12]] as const) {
      for (const s of [[1, 1], [2, 2], [1, 2], [2, 1]] as [number, number][]) {
        const pad = pads[i % pads.length]!, activation = activations[i % 3]!;
        i++;
        const xShape: Shape4 = [1 + (i % 3), H, W, C];
        let ci: tf.backend_util.Conv2DInfo;
        try {
          ci = tf.backend_util.computeConv2DInfo(
            xShape,
            [3, 3, C, 1],
            s,
            1,
            pad as "same",
            undefined,
            true,
          );
        } catch {
          continue;
        }
        if (ci.outHeight <= 0 || ci.outWidth <= 0) continue;
        const what = `x ${xShape}, strides ${s}, pad ${JSON.stringify(pad)}, ${activation}`;
        const x = { values: seeded(xShape, seed++).map((v) => 4 * v), shape: xShape };
        const f = seededTensor([3, 3, C, 1], seed++), b = seededTensor([C], seed++);
        const conv = {
          strides: s,
          pad,
          dataFormat: "NHWC",
          dilations: 1,
          dimRoundingMode: undefined,
        };
        const fused = { ...conv, activation };
        const runs: KernelRun[] = [
          ["DepthwiseConv2dNative", { x, filter: f }, conv],
          ["FusedDepthwiseConv2D", { x, filter: f, bias: b }, fused],
          [
            "DepthwiseConv2dNativeBackpropInput",
            { dy: seededTensor([xShape[0], ci.outHeight, ci.outWidth, C], seed++), filter: f },
            { ...conv, inputShape: xShape },
          ],
        ];
        for (const [kernel, inputs, kernelAttrs] of runs) {
          const want = await onEngine("cpu", kernel, inputs, kernelAttrs);
          let got = want;
          const before = tf.memory().numTensors;
          const calls = await compiledCalls(async () => {
            got = await onEngine("wasm", kernel, inputs, kernelAttrs);
          });
          assertEquals(tf.memory().numTensors, before, `${kernel}, ${what}: tensors left`);
          const compiled = kernel.endsWith("Input") ? "dw3x3_grad_input" : "dw3x3";
          assertEquals(calls.includes(compiled), pooled, `${kernel}, ${what}: ${compiled} ran`);
          assertEquals(got.shape, want.shape, `${kernel}, ${what}: shape`);
          assertNear(got.values, want.values, TOL, `${kernel}, ${what}`);
        }
      }
    }
  }
});

/**
 * The first maximum above -Infinity of each 2×2 window of `r` ([B, H, W, C],
 * stride 2, unpadded) in row-major window order, as `MaxPoolGrad` picks it:
 * the pooled values, each window's position (0 when none won), and the
 * gradient `dz` a pooled gradient `dp` gives `r` through the pooling.
 */
function firstMaxima(r: Float32Array, [B, H, W, C]: Shape4, dp: Float32Array) {
  const OH = Math.floor(H / 2), OW = Math.floor(W / 2);
  const pooled = new Float32Array(B * OH * OW * C), at = new Int32Array(pooled.length);
  const dz = new Float32Array(r.length);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const i00 = ((b * H + 2 * oh) * W + 2 * ow) * C;
        const taps = [i00, i00 + C, i00 + W * C, i00 + W * C + C];
        for (let c = 0; c < C; c++) {
          const o = ((b * OH + oh) * OW + ow) * C + c;
          let best = -Infinity, where = -1;
          taps.forEach((t, q) => {
            if (r[t + c]! > best) [best, where] = [r[t + c]!, q];
          });
          pooled[o] = best;
          at[o] = Math.max(where, 0);
          if (where >= 0) dz[taps[where]! + c] = dp[o]!;
        }
      }
    }
  }
  return { pooled, at, dz };
}

/** Each channel's window position from packed words (2 bits a channel, 16 a word). */
function unpackPositions(words: Int32Array, C: number): Int32Array {
  const NW = Math.ceil(C / 16), n = words.length / NW;
  const out = new Int32Array(n * C);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) out[i * C + c] = (words[i * NW + (c >> 4)]! >>> (2 * (c & 15))) & 3;
  }
  return out;
}

Deno.test("the convolution pooled with its maxima's positions and the gradient scattered back to them are MaxPool's and MaxPoolGrad's values, exactly, and the filter's gradient from the pooled one is Conv2DBackpropFilter's", async () => {
  await tf.setBackend("wasm");
  // Small whole numbers: every convolution sums exactly on cpu and on wasm, whatever
  // the order, and ties are common. One input channel at stride 1 (the pooled-as-computed
  // kernel): every output channel count up to 8, odd and even sizes, 'same' and 'valid';
  // more channels in or out (the convolution, then the pooling with positions): 16
  // channels fill a word, 18 and 33 take two and three, one group of four straddling two.
  const geometries: [Shape4, number, number, number, "same" | "valid", number][] = [];
  for (let o = 1; o <= 8; o++) {
    geometries.push([
      [1 + (o % 3), 7 + o, 9 + o, 1],
      3 + (o % 3),
      3,
      1,
      o % 2 ? "same" : "valid",
      o,
    ]);
  }
  geometries.push(
    [[40, 28, 28, 1], 5, 5, 1, "same", 6],
    [[2, 9, 8, 2], 3, 3, 1, "same", 16],
    [[2, 7, 9, 3], 3, 3, 1, "same", 18],
    [[1, 10, 11, 2], 3, 2, 2, "valid", 33],
    [[2, 6, 5, 1], 3, 3, 1, "valid", 3],
  );
  const activations = ["linear", "relu", "relu6"] as const;
  for (const [i, [xs, kh, kw, stride, pad, o]] of geometries.entries()) {
    const whole = (shape: number[], seed: number, scale: number) => ({
      values: seeded(shape, seed).map((v) => Math.round(v * scale)),
      shape,
    });
    const x = whole(xs, 6100 + i, 3), f = whole([kh, kw, xs[3], o], 6200 + i, 2);
    const b = whole([o], 6300 + i, 4);
    // A NaN and a -Infinity: windows they reach have NaN (never a maximum) or -Infinity.
    x.values[1] = NaN;
    x.values[x.values.length - 1] = -Infinity;
    const activation = activations[i % 3]!;
    const what = `case ${JSON.stringify([xs, kh, kw, stride, pad, o])}, ${activation}`;
    const fusedAttrs = { ...sameConv([stride, stride]), pad, activation };
    // The pooled-as-computed kernel sums as cpu does; other calls pool the registered
    // FusedConv2D's output (on one thread XNNPACK's, whose activations turn NaN to 0).
    const r = await onEngine("cpu", "FusedConv2D", { x, filter: f, bias: b }, fusedAttrs);
    const rShape = r.shape as Shape4;
    const oneChannel = xs[3] === 1 && stride === 1 && rShape[2] >= 4;
    if (!oneChannel) {
      r.values =
        (await onEngine("wasm", "FusedConv2D", { x, filter: f, bias: b }, fusedAttrs)).values;
    }
    const dp = seeded([rShape[0], rShape[1] >> 1, rShape[2] >> 1, o], 6400 + i);
    const want = firstMaxima(r.values, rShape, dp);
    /** The kernel's pooled values and positions, and the scatter of dp to them, checked against want. */
    const check = async (want: ReturnType<typeof firstMaxima>, label: string) => {
      const ts = [x, f, b].map((v) => tf.tensor(v.values, v.shape));
      const [y, positions] = tf.engine().runKernel(
        CONV_MAX_POOL_POSITIONS_KERNEL,
        { x: ts[0]!, filter: ts[1]!, bias: ts[2]! },
        fusedAttrs as tf.NamedAttrMap,
      ) as tf.Tensor[];
      assertEquals(positions!.dtype, "int32", what);
      assertEquals(positions!.shape, [...y!.shape.slice(0, 3), Math.ceil(o / 16)], what);
      const dy = tf.tensor(dp, y!.shape);
      const dz = tf.engine().runKernel(MAX_POOL_SCATTER_KERNEL, {
        dy,
        y: y!,
        indices: positions!,
      }, { inputShape: rShape }) as tf.Tensor;
      const pooled = (await y!.data()) as Float32Array;
      assertSameValues(pooled, want.pooled, `${what}: pooled${label}`);
      const words = (await positions!.data()) as Int32Array;
      assertEquals(unpackPositions(words, o), want.at, `${what}: positions${label}`);
      assertSameValues((await dz.data()) as Float32Array, want.dz, `${what}: gradient${label}`);
      // The filter's gradient from the pooled one: Conv2DBackpropFilter's of dz, bit for bit.
      const filterAttrs = { ...sameConv([stride, stride]), pad, filterShape: f.shape };
      const [fromPooled, fromDz] = [
        tf.engine().runKernel(CONV_MAX_POOL_FILTER_GRAD_KERNEL, {
          x: ts[0]!,
          dy,
          y: y!,
          indices: positions!,
        }, filterAttrs as tf.NamedAttrMap),
        tf.engine().runKernel(
          "Conv2DBackpropFilter",
          { x: ts[0]!, dy: dz },
          filterAttrs as tf.NamedAttrMap,
        ),
      ] as tf.Tensor[];
      assertSameValues(
        (await fromPooled!.data()) as Float32Array,
        (await fromDz!.data()) as Float32Array,
        `${what}: filter gradient${label}`,
      );
      tf.dispose([...ts, y!, positions!, dy, dz, fromPooled!, fromDz!]);
    };
    const calls = await compiledCalls(() => check(want, ""));
    assert(
      calls.includes(oneChannel ? "conv1_taps_pool_idx" : "max_pool_2x2_idx"),
      `${what}: ${calls}`,
    );
    assert(calls.includes("max_pool_scatter_2x2"), `${what}: ${calls}`);
    // The filter gradient from the pooled one takes any one-channel, stride-1 convolution.
    const oneChannelGrad = xs[3] === 1 && stride === 1 && o <= 16;
    assertEquals(calls.includes("conv1_filter_grad_pooled"), oneChannelGrad, `${what}: ${calls}`);
    // Without the compiled kernels, the JavaScript paths give the values of the
    // convolution that then runs (XNNPACK's activations turn NaN to 0 where cpu's keep it).
    setSimdKernelsEnabled(false);
    try {
      const rJs = await onEngine("wasm", "FusedConv2D", { x, filter: f, bias: b }, fusedAttrs);
      await check(firstMaxima(rJs.values, rShape, dp), " (JS)");
    } finally {
      setSimdKernelsEnabled(true);
    }
  }
});

Deno.test("the scattered max-pool gradient refuses what does not fit, says what, and leaves the backend correct", async () => {
  await tf.setBackend("wasm");
  const shape = [2, 5, 6, 3];
  const dy = tf.ones([2, 2, 3, 3]),
    y = tf.ones([2, 2, 3, 3]),
    positions = tf.zeros([2, 2, 3, 1], "int32");
  const scatter = (inputs: Record<string, tf.Tensor>, inputShape: unknown = shape) => () =>
    tf.engine().runKernel(MAX_POOL_SCATTER_KERNEL, { dy, y, indices: positions, ...inputs }, {
      inputShape,
    } as unknown as tf.NamedAttrMap);
  const before = tf.memory().numTensors;
  const cases: [() => unknown, ErrorConstructor | TypeErrorConstructor, string][] = [
    [
      scatter({ dy: tf.ones([2, 3, 3, 3]) }),
      Error,
      "dy has shape [2,3,3,3] where the geometry needs [2,2,3,3]",
    ],
    [scatter({ y: tf.ones([2, 2, 3, 4]) }), Error, "y has shape"],
    [scatter({ indices: tf.zeros([2, 2, 3, 2], "int32") }), Error, "indices has shape"],
    [scatter({ indices: tf.zeros([2, 2, 3, 1]) }), TypeError, "int32 indices"],
    [scatter({}, [2, 5, 6]), Error, "inputShape of 4 whole sizes"],
    [scatter({}, [2, 5, -6, 3]), Error, "inputShape of 4 whole sizes"],
  ];
  for (const [run, kind, message] of cases) {
    let thrown: unknown;
    try {
      run();
    } catch (e) {
      thrown = e;
    }
    assert(thrown instanceof kind, `${message}: threw ${thrown}`);
    assert((thrown as Error).message.includes(message), (thrown as Error).message);
  }
  // What a valid call gives: each window's first position takes dy; the uncovered row and none else.
  const dz = tf.engine().runKernel(MAX_POOL_SCATTER_KERNEL, { dy, y, indices: positions }, {
    inputShape: shape,
  }) as tf.Tensor;
  const v = await dz.data();
  assertEquals(Array.from(v).reduce((a, b) => a + b, 0), 2 * 2 * 3 * 3);
  assertEquals(v[0], 1);
  tf.dispose(dz);
  const made = tf.memory().numTensors - before;
  // The inputs the cases made (one each), not any output.
  assertEquals(made, 6 - 2);
  tf.dispose([dy, y, positions]);
});
