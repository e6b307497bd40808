/**
 * Random calls of every kernel this project adds to or replaces on the wasm
 * backend, against cpu: degenerate and invalid shapes (zero sizes, inputs
 * too small for the window, odd strides and paddings, inner sizes that do
 * not match, very large channel counts). A call cpu rejects must be rejected
 * on wasm with an error of the same kind; a call cpu accepts must give cpu's
 * numbers (or, for a call whose inputs contradict each other, may be
 * rejected). After every rejected call, tensors made just before and after it
 * keep their values and a known computation still gives its answer.
 *
 * Seeded (ZOO_FUZZ_SEED, default 1) and bounded in time (ZOO_FUZZ_SECONDS,
 * default 15). One thread here; wasm_threads_test.ts runs it on two.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { assert, assertEquals } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { convolutionalize } from "../../../sdk/surgery/convolutionalize.ts";
import { loadNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";
import { ADDED_KERNELS, REPLACED_KERNELS } from "../../../sdk/devices/wasm/register.ts";
import {
  BATCH_NORM_KERNELS,
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  CONV_MAX_POOL_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  MAX_POOL_SCATTER_KERNEL,
} from "../../../sdk/devices/kernels.ts";
import { simdDepthwiseConv2DBackpropFilter } from "../../../sdk/devices/wasm/kernels/depthwise.ts";
import { simdPointwiseFilterGrad } from "../../../sdk/devices/wasm/kernels/conv_grad.ts";
import { assertNear, relativeError, seeded, seededTensor } from "./_compare.ts";
import { type KernelCall, runNow, type Values } from "./_kernel_runs.ts";

await initWasmBackend(Deno.env.get("ZOO_WASM_THREADS") === undefined ? { threads: false } : {});

const SEED = Number(Deno.env.get("ZOO_FUZZ_SEED") ?? 1);
const SECONDS = Number(Deno.env.get("ZOO_FUZZ_SECONDS") ?? 15);

/** mulberry32: a small seeded generator. */
function generator(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  return { next, pick, chance: (p: number) => next() < p };
}

type Rng = ReturnType<typeof generator>;

/** A call, and whether its inputs contradict each other (cpu may compute garbage; wasm may refuse). */
interface FuzzCall extends KernelCall {
  invalid: boolean;
}

let seedCounter = 1;
const values = (shape: number[]): Values => (seededTensor(shape, seedCounter++));
const positive = (shape: number[]): Values => {
  const v = values(shape);
  return { values: v.values.map((a) => Math.abs(a) + 0.5), shape };
};

/** An NHWC input and its geometry: sometimes tiny, sometimes with very many channels. */
function nhwc(r: Rng): { B: number; H: number; W: number; C: number } {
  const wide = r.chance(0.1);
  return {
    B: r.pick([0, 1, 1, 2, 3]),
    H: wide ? r.pick([1, 2]) : r.pick([0, 1, 2, 3, 5, 8, 11]),
    W: wide ? r.pick([1, 2, 3]) : r.pick([0, 1, 2, 4, 7, 9]),
    C: wide ? r.pick([513, 1500, 4099]) : r.pick([0, 1, 1, 3, 4, 5, 8, 17]),
  };
}

function convGeometry(r: Rng, dilate: boolean) {
  const strides: [number, number] = [r.pick([1, 1, 2, 3]), r.pick([1, 2, 3])];
  const dilations: [number, number] =
    dilate && strides[0] === 1 && strides[1] === 1 && r.chance(0.3)
      ? [r.pick([1, 2]), r.pick([1, 2, 3])]
      : [1, 1];
  const pad = r.pick(["same", "valid", "valid", 0, 1, 2] as const);
  return {
    k: [r.pick([1, 2, 3, 5]), r.pick([1, 3, 4])] as [number, number],
    attrs: { strides, pad, dilations, dataFormat: "NHWC", dimRoundingMode: undefined },
  };
}

/** The output shape tfjs computes for a convolution (may hold negative sizes). */
function convOut(x: number[], f: number[], attrs: Record<string, unknown>, depthwise: boolean) {
  return tf.backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    f as [number, number, number, number],
    attrs.strides as [number, number],
    attrs.dilations as [number, number],
    attrs.pad as "same",
    undefined,
    depthwise,
  ).outShape;
}

/** dy for a gradient: the output's shape, or (sometimes, or when that has a negative size) a wrong one. */
function gradOf(r: Rng, out: number[]): { dy: Values; invalid: boolean } {
  if (out.every((d) => d >= 0) && !r.chance(0.1)) return { dy: values(out), invalid: false };
  return { dy: values(out.map((d) => Math.max(0, d) + 1)), invalid: true };
}

const ACTIVATIONS = ["linear", "relu", "relu6"];

function convCall(r: Rng, kernel: string): FuzzCall {
  const { B, H, W, C: anyC } = nhwc(r);
  const depthwise = kernel.includes("epthwise");
  // cpu's convolution gradients ignore dilations (tfjs refuses to take those
  // gradients); the adjoint test below checks wasm's.
  const { k, attrs } = convGeometry(
    r,
    !kernel.includes("Backprop") && kernel !== CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  );
  // The pooled convolution's own kernel takes one channel at stride 1: mostly those.
  const pooledOwn =
    (kernel === CONV_MAX_POOL_KERNEL || kernel === CONV_MAX_POOL_POSITIONS_KERNEL) &&
    r.chance(0.7);
  const C = pooledOwn ? 1 : anyC;
  if (pooledOwn) attrs.strides = [1, 1];
  const O = depthwise ? r.pick([1, 2]) : r.pick([0, 1, 4, 9, 16, ...(pooledOwn ? [6, 8] : [])]);
  const mismatch = r.chance(0.05);
  const filter = [k[0], k[1], mismatch ? C + 1 : C, O];
  const x = [B, H, W, C];
  switch (kernel) {
    case "Conv2D":
    case "DepthwiseConv2dNative":
      return {
        kernel,
        inputs: { x: values(x), filter: values(filter) },
        attrs,
        invalid: mismatch,
      };
    case "FusedConv2D":
    case "FusedDepthwiseConv2D":
    case CONV_MAX_POOL_KERNEL:
    case CONV_MAX_POOL_POSITIONS_KERNEL:
      return {
        kernel,
        inputs: { x: values(x), filter: values(filter), bias: values([depthwise ? C * O : O]) },
        attrs: { ...attrs, activation: r.pick(ACTIVATIONS) },
        invalid: mismatch,
      };
    case CONV_MAX_POOL_FILTER_GRAD_KERNEL: {
      // The pooled gradient of the convolution's output, its values and positions (any).
      const out = convOut(x, filter, attrs, depthwise);
      const { dy, invalid } = gradOf(
        r,
        out.map((d, i) => (i === 1 || i === 2 ? Math.floor(d / 2) : d)),
      );
      const indices = positions(r, [...dy.shape.slice(0, 3), Math.ceil(Math.max(0, O) / 16)]);
      return {
        kernel,
        inputs: { x: values(x), dy, y: noWinner(values(dy.shape)), indices },
        attrs: { ...attrs, filterShape: filter },
        invalid: invalid || mismatch || out.some((d) => d < 0),
      };
    }
    case "Conv2DBackpropFilter":
    case "DepthwiseConv2dNativeBackpropFilter": {
      const { dy, invalid } = gradOf(r, convOut(x, filter, attrs, depthwise));
      return {
        kernel,
        inputs: { x: values(x), dy },
        attrs: { ...attrs, filterShape: filter },
        invalid: invalid || mismatch,
      };
    }
    default: {
      const { dy, invalid } = gradOf(r, convOut(x, filter, attrs, depthwise));
      return {
        kernel,
        inputs: { dy, filter: values(filter) },
        attrs: { ...attrs, inputShape: x },
        invalid: invalid || mismatch,
      };
    }
  }
}

function poolCall(r: Rng, kernel: string): FuzzCall {
  const { B, H, W, C } = nhwc(r);
  const size = r.pick([1, 2, 2, 3]), stride = r.pick([1, 2, 2, 3]);
  const attrs = {
    filterSize: size,
    strides: stride,
    pad: r.pick(["valid", "valid", "same"]),
    dimRoundingMode: undefined,
  };
  const x = values([B, H, W, C]);
  if (kernel === "MaxPool" || kernel === "AvgPool") {
    return { kernel, inputs: { x }, attrs, invalid: false };
  }
  const out = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    size,
    stride,
    1,
    attrs.pad as "same",
  ).outShape;
  const { dy, invalid } = gradOf(r, out);
  const inputs = kernel === "MaxPoolGrad" ? { dy, input: x, output: values(dy.shape) } : {
    dy,
    input: x,
  };
  return { kernel, inputs, attrs, invalid };
}

function anyShape(r: Rng): number[] {
  const rank = r.pick([1, 2, 3, 4]);
  return Array.from({ length: rank }, () => r.pick([0, 1, 2, 3, 5, 8]));
}

/** Any packed window positions, int32, of `shape`. */
function positions(r: Rng, shape: number[]): Values {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    values: Float32Array.from({ length: n }, () => Math.floor(r.next() * 2 ** 24) - 2 ** 23),
    shape,
    dtype: "int32",
  };
}

/** Pooled values with some -Infinity: windows where no value won, which pass no gradient. */
function noWinner(v: Values): Values {
  return { ...v, values: v.values.map((a) => (a < -0.8 ? -Infinity : a)) };
}

function otherCall(r: Rng, kernel: string): FuzzCall {
  const shape = anyShape(r);
  const C = shape.at(-1)!;
  switch (kernel) {
    case "BatchMatMul": {
      const [M, K, N] = [r.pick([0, 1, 3, 9, 40]), r.pick([0, 1, 5, 33]), r.pick([0, 1, 7, 20])];
      const tA = r.chance(0.5), tB = r.chance(0.5), bad = r.chance(0.1);
      const batch = r.pick([[], [1], [2]]);
      const a = [...batch, ...(tA ? [K, M] : [M, K])];
      const b = [...batch, ...(tB ? [N, K + (bad ? 1 : 0)] : [K + (bad ? 1 : 0), N])];
      return {
        kernel,
        inputs: { a: values(a), b: values(b) },
        attrs: { transposeA: tA, transposeB: tB },
        invalid: false,
      };
    }
    case "FusedBatchNorm": {
      const p = () => (r.chance(0.1) ? [C + 1] : [C]);
      return {
        kernel,
        inputs: {
          x: values(shape),
          mean: values(p()),
          variance: positive(p()),
          offset: values(p()),
          scale: positive(p()),
        },
        attrs: { varianceEpsilon: 1e-3 },
        invalid: C === 0,
      };
    }
    case "Add":
    case "Sub":
    case "Multiply": {
      const b = r.pick([[C], [1], [C + 1], shape, [1, C]]);
      return { kernel, inputs: { a: values(shape), b: values(b) }, attrs: {}, invalid: false };
    }
    case "Mean":
    case "Sum": {
      const axis = r.pick([[0], [0, 1], [0, 1, 2], [1], [-1], [shape.length]]);
      return {
        kernel,
        inputs: { x: values(shape) },
        attrs: { axis, keepDims: r.chance(0.5) },
        invalid: false,
      };
    }
    case "PadV2": {
      const bad = r.chance(0.1);
      const paddings = shape.map(() => [r.pick([0, 0, 1, 2]), bad ? -9 : r.pick([0, 1, 3])]);
      return {
        kernel,
        inputs: { x: values(shape) },
        attrs: { paddings, constantValue: r.pick([0, 0, 1.5]) },
        invalid: bad,
      };
    }
    case "Slice": {
      const begin = shape.map((d) => r.pick([0, 0, 1, d]));
      const size = shape.map((d, i) => r.pick([-1, d - begin[i]!, 1, d + 1]));
      return { kernel, inputs: { x: values(shape) }, attrs: { begin, size }, invalid: false };
    }
    case "Tile": {
      const reps = shape.map(() => r.pick([0, 1, 2, 3]));
      return { kernel, inputs: { x: values(shape) }, attrs: { reps }, invalid: false };
    }
    case "Transpose": {
      const perm = [...shape.keys()];
      if (perm.length >= 2 && r.chance(0.7)) {
        [perm[perm.length - 1], perm[perm.length - 2]] = [perm.at(-2)!, perm.at(-1)!];
      } else perm.reverse();
      return { kernel, inputs: { x: values(shape) }, attrs: { perm }, invalid: false };
    }
    case "ClipByValue":
      return {
        kernel,
        inputs: { x: values(shape) },
        attrs: { clipValueMin: -0.5, clipValueMax: r.pick([0.5, 6]) },
        invalid: false,
      };
    case "Cast":
      return {
        kernel,
        inputs: { x: values(shape) },
        attrs: { dtype: r.pick(["float32", "int32", "bool"]) },
        invalid: false,
      };
    case BATCH_NORM_KERNELS.variance:
    case BATCH_NORM_KERNELS.gradSums:
    case BATCH_NORM_KERNELS.gradInput: {
      // Sometimes a per-channel vector of the wrong length, or dy of another shape.
      const badMean = r.chance(0.1), badDy = r.chance(0.1);
      const inputs: Record<string, Values> = {
        x: values(shape),
        mean: values([badMean ? C + 1 : C]),
      };
      if (kernel !== BATCH_NORM_KERNELS.variance) {
        inputs.dy = values(badDy ? [...shape, 2] : shape);
      }
      if (kernel === BATCH_NORM_KERNELS.gradInput) inputs.coef = values([3, C]);
      return {
        kernel,
        inputs,
        attrs: {},
        invalid: badMean || (badDy && kernel !== BATCH_NORM_KERNELS.variance),
      };
    }
    case MAX_POOL_SCATTER_KERNEL: {
      // Any window positions; pooled values with some -Infinity (no maximum there); sometimes
      // an input of the wrong shape, or an input shape that is not one.
      const { B, H, W, C: c } = nhwc(r);
      const pooled = [B, Math.floor(H / 2), Math.floor(W / 2), c];
      const bad = r.pick(["", "", "", "", "", "dy", "y", "indices", "inputShape"]);
      const grow = (s: number[]) => s.map((d, i) => (i === 3 ? d + 1 : d));
      const y = noWinner(values(bad === "y" ? grow(pooled) : pooled));
      const indices = positions(r, [
        ...pooled.slice(0, 3),
        Math.ceil(c / 16) + (bad === "indices" ? 1 : 0),
      ]);
      return {
        kernel,
        inputs: { dy: values(bad === "dy" ? grow(pooled) : pooled), y, indices },
        attrs: { inputShape: bad === "inputShape" ? [B, H, W] : [B, H, W, c] },
        invalid: bad !== "",
      };
    }
    case "ZooReluGrad":
    case "ZooClipGrad": {
      const bad = r.chance(0.1);
      return {
        kernel,
        inputs: { x: values(shape), dy: values(bad ? [...shape, 2] : shape) },
        attrs: { clipValueMin: -0.5, clipValueMax: 0.5 },
        invalid: bad,
      };
    }
    default:
      return { kernel, inputs: { x: values(shape) }, attrs: {}, invalid: false };
  }
}

const CONV = [
  "Conv2D",
  "FusedConv2D",
  CONV_MAX_POOL_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  "DepthwiseConv2dNative",
  "FusedDepthwiseConv2D",
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "DepthwiseConv2dNativeBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
];
const POOL = ["MaxPool", "AvgPool", "MaxPoolGrad", "AvgPoolGrad"];

function randomCall(r: Rng, kernel: string): FuzzCall {
  if (CONV.includes(kernel)) return convCall(r, kernel);
  if (POOL.includes(kernel)) return poolCall(r, kernel);
  return otherCall(r, kernel);
}

/** The outcome of a call on one backend. */
type Outcome = { ok: true; out: Values } | { ok: false; error: Error };

async function outcome(backend: string, call: KernelCall): Promise<Outcome> {
  await tf.setBackend(backend);
  try {
    return { ok: true, out: runNow(call) };
  } catch (e) {
    return { ok: false, error: e as Error };
  } finally {
    await tf.setBackend("wasm");
  }
}

/** A small convolution, bias, ReLU and product whose cpu answer is known. */
const known = () =>
  tf.tidy(() => {
    const x = tf.tensor(seeded([2, 6, 5, 3], 91), [2, 6, 5, 3]);
    const f = tf.tensor(seeded([3, 3, 3, 4], 92), [3, 3, 3, 4]);
    const y = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, "same"), 0.1));
    return tf.matMul(y.reshape([12, 20]), tf.tensor(seeded([20, 3], 93), [20, 3]))
      .dataSync() as Float32Array;
  });

Deno.test("random calls of every added or replaced wasm kernel, valid and invalid, match cpu or fail as cpu does, and leave the backend correct", async () => {
  await tf.setBackend("cpu");
  const expected = known();
  await tf.setBackend("wasm");
  const kernels = [...ADDED_KERNELS, ...REPLACED_KERNELS];
  const r = generator(SEED);
  const until = performance.now() + SECONDS * 1000;
  const tally = { calls: 0, matched: 0, rejectedLikeCpu: 0, refusedInvalid: 0 };
  const startTensors = tf.memory().numTensors;
  for (let i = 0; performance.now() < until || i < kernels.length; i++) {
    const kernel = kernels[i % kernels.length]!;
    const call = randomCall(r, kernel);
    const what = `${kernel} ${JSON.stringify(Object.values(call.inputs).map((v) => v.shape))} ${
      JSON.stringify(call.attrs)
    }`;
    const cpu = await outcome("cpu", call);
    const before = tf.tensor(seeded([37], 7000 + i));
    const wasm = await outcome("wasm", call);
    const after = tf.tensor(seeded([41], 8000 + i));
    tally.calls++;
    // cpu makes some outputs without checking their shape (a convolution of
    // a too-small input gives one with a negative size): wasm refuses those.
    const negative = cpu.ok && cpu.out.shape.some((d) => d < 0);
    if (cpu.ok && wasm.ok && !negative) {
      // -0 and 0 are one size (a rounding up of -1/3 gives -0).
      const sizes = (v: Values) => v.shape.map((d) => d + 0);
      assertEquals(sizes(wasm.out), sizes(cpu.out), what);
      assertNear(wasm.out.values, cpu.out.values, 1e-4, what);
      tally.matched++;
    } else if (!cpu.ok) {
      assert(!wasm.ok, `${what}: cpu refused it (${cpu.error.message}) but wasm ran it`);
      assertEquals(
        wasm.error.constructor.name,
        cpu.error.constructor.name,
        `${what}: cpu: ${cpu.error.message}; wasm: ${wasm.error.message}`,
      );
      tally.rejectedLikeCpu++;
    } else {
      assert(
        call.invalid || negative,
        `${what}: cpu ran it but wasm refused: ${(wasm as { error: Error }).error.stack}`,
      );
      tally.refusedInvalid++;
    }
    if (!wasm.ok) {
      assertEquals(
        before.dataSync(),
        seeded([37], 7000 + i),
        `${what}: a tensor made before it changed`,
      );
      assertEquals(
        after.dataSync(),
        seeded([41], 8000 + i),
        `${what}: a tensor made after it changed`,
      );
      const again = known();
      assert(
        relativeError(again, expected) <= 1e-5,
        `${what}: a known computation went wrong after it`,
      );
    }
    tf.dispose([before, after]);
  }
  assertEquals(tf.memory().numTensors, startTensors, "the calls leaked tensors");
  console.log(JSON.stringify(tally));
  assert(tally.rejectedLikeCpu > 0 && tally.matched > tally.calls / 2, JSON.stringify(tally));
});

Deno.test("wasm's dilated convolution gradients are the adjoints of the forward convolution: <dy, conv(x)> = <dx, x> = <dW, w>", async () => {
  await tf.setBackend("wasm");
  const r = generator(SEED + 1);
  for (let i = 0; i < 48; i++) {
    const [fwd, input, filter] = i % 2 === 0
      ? [
        "DepthwiseConv2dNative",
        "DepthwiseConv2dNativeBackpropInput",
        "DepthwiseConv2dNativeBackpropFilter",
      ]
      : ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"];
    const [B, H, W, C, M] = [
      r.pick([1, 2]),
      r.pick([5, 8]),
      r.pick([6, 9]),
      r.pick([1, 3, 8]),
      r.pick([1, 2]),
    ];
    const k = [r.pick([1, 2, 3]), r.pick([2, 3])];
    const attrs = {
      strides: [1, 1],
      pad: r.pick(["same", "valid", 1]),
      dilations: [r.pick([1, 2]), r.pick([2, 3])],
      dataFormat: "NHWC",
    } as unknown as tf.NamedAttrMap;
    const x = tf.tensor(seeded([B, H, W, C], 500 + i), [B, H, W, C]);
    const w = tf.tensor(seeded([k[0]!, k[1]!, C, M], 600 + i), [k[0]!, k[1]!, C, M]);
    const y = tf.engine().runKernel(fwd, { x, filter: w }, attrs) as tf.Tensor;
    const dy = tf.tensor(seeded(y.shape, 700 + i), y.shape);
    const dx = tf.engine().runKernel(input, { dy, filter: w }, {
      ...attrs,
      inputShape: x.shape,
    }) as tf.Tensor;
    const dw = tf.engine().runKernel(filter, { x, dy }, {
      ...attrs,
      filterShape: w.shape,
    }) as tf.Tensor;
    const dot = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.sum(tf.mul(a, b)).dataSync()[0]!);
    const [yy, xx, ww] = [dot(dy, y), dot(dx, x), dot(dw, w)];
    const what = `${fwd} ${JSON.stringify([B, H, W, C, M, k])} ${JSON.stringify(attrs)}`;
    assert(Math.abs(xx - yy) <= 1e-4 * (1 + Math.abs(yy)), `${what}: <dx, x> ${xx} vs ${yy}`);
    assert(Math.abs(ww - yy) <= 1e-4 * (1 + Math.abs(yy)), `${what}: <dW, w> ${ww} vs ${yy}`);
    tf.dispose([x, w, y, dy, dx, dw]);
  }
});

Deno.test("a convolutionalized MobileNetV2 on an input smaller than its window fails on wasm as on cpu, and the backend keeps working", async () => {
  const net = await loadNsfwjsModel("mobilenet_v2");
  const fcn = convolutionalize(net);
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const small = tf.zeros([1, 100, 100, 3]);
    let error: Error | undefined;
    try {
      tf.dispose(fcn.predict(small) as tf.Tensor);
    } catch (e) {
      error = e as Error;
    }
    small.dispose();
    const x = tf.tensor(seeded([2, 224, 224, 3], 4242), [2, 224, 224, 3]);
    const y = net.predict(x) as tf.Tensor;
    const values = y.dataSync() as Float32Array;
    tf.dispose([x, y]);
    return { error, values };
  };
  try {
    const cpu = await run("cpu"), wasm = await run("wasm");
    assert(cpu.error !== undefined && wasm.error !== undefined, "both backends should refuse it");
    assertEquals(wasm.error.constructor.name, cpu.error.constructor.name);
    assertEquals(wasm.error.message, cpu.error.message);
    assert(relativeError(wasm.values, cpu.values) <= 1e-4, "the next prediction went wrong");
  } finally {
    await tf.setBackend("wasm");
    net.dispose();
    fcn.dispose();
  }
});

Deno.test("the compiled depthwise filter gradient matches cpu at MobileNetV2's geometries, split across threads", async () => {
  const cases: [number[], number, "same" | "valid"][] = [
    [[2, 56, 56, 48], 1, "same"],
    [[2, 57, 57, 48], 2, "valid"],
    [[3, 14, 14, 100], 1, "same"],
    [[2, 29, 29, 7], 2, "same"],
  ];
  for (const [i, [x, stride, pad]] of cases.entries()) {
    const C = x[3]!, filterShape = [3, 3, C, 1];
    const out = tf.backend_util.computeConv2DInfo(
      x as [number, number, number, number],
      filterShape as [number, number, number, number],
      stride,
      1,
      pad,
      undefined,
      true,
    ).outShape;
    const call: KernelCall = {
      kernel: "DepthwiseConv2dNativeBackpropFilter",
      inputs: {
        x: seededTensor(x, 900 + i),
        dy: seededTensor(out, 950 + i),
      },
      attrs: { strides: stride, pad, dilations: 1, dataFormat: "NHWC", filterShape },
    };
    const want = await outcome("cpu", call), got = await outcome("wasm", call);
    assert(want.ok && got.ok, "both should run");
    assertNear(
      got.out.values,
      want.out.values,
      1e-4,
      `${JSON.stringify(x)} stride ${stride} ${pad}`,
    );
  }
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const x = tf.zeros([1, 8, 8, 4]), dy = tf.zeros([1, 8, 8, 4]);
  const info = tf.backend_util.computeConv2DInfo(
    [1, 8, 8, 4],
    [3, 3, 4, 1],
    1,
    1,
    "same",
    undefined,
    true,
  );
  const fast = simdDepthwiseConv2DBackpropFilter(backend, x, dy, info);
  assert(fast !== null, "the compiled kernel should run here");
  backend.disposeData(fast.dataId);
  tf.dispose([x, dy]);
});

Deno.test("the compiled 1×1 filter gradient matches cpu at MobileNetV2's geometries and ragged sizes, and refuses other geometries before touching the heap", async () => {
  // [x, output channels, pad]: MobileNetV2's expansions and projections,
  // channel counts that leave partial 4×8 tiles, one row, very wide rows,
  // and a numeric padding of 0 (also pointwise).
  const cases: [number[], number, "same" | "valid" | 0][] = [
    [[2, 28, 28, 24], 144, "same"],
    [[2, 14, 14, 144], 24, "valid"],
    [[3, 7, 7, 5], 9, "same"],
    [[1, 3, 5, 1], 1, 0],
    [[1, 1, 1, 4099], 3, "valid"],
    [[2, 5, 3, 3], 700, "same"],
  ];
  for (const [i, [x, O, pad]] of cases.entries()) {
    const filterShape = [1, 1, x[3]!, O];
    const out = [...x.slice(0, 3), O];
    const call: KernelCall = {
      kernel: "Conv2DBackpropFilter",
      inputs: {
        x: seededTensor(x, 700 + i),
        dy: seededTensor(out, 750 + i),
      },
      attrs: { strides: 1, pad, dilations: 1, dataFormat: "NHWC", filterShape },
    };
    const want = await outcome("cpu", call), got = await outcome("wasm", call);
    assert(want.ok && got.ok, "both should run");
    assertNear(got.out.values, want.out.values, 1e-4, `${JSON.stringify(x)} → ${O} ${pad}`);
  }
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const x = tf.zeros([1, 8, 8, 4]), dy = tf.zeros([1, 8, 8, 6]);
  const info = (f: number, stride: number) =>
    tf.backend_util.computeConv2DInfo([1, 8, 8, 4], [f, f, 4, 6], stride, 1, "same");
  const before = tf.memory().numTensors;
  for (const [f, stride] of [[3, 1], [1, 2]]) {
    let error: unknown;
    try {
      simdPointwiseFilterGrad(backend, x, dy, info(f!, stride!));
    } catch (e) {
      error = e;
    }
    assert(error instanceof RangeError, `a ${f}×${f} filter at stride ${stride} should be refused`);
  }
  let error: unknown;
  try {
    simdPointwiseFilterGrad(backend, x, x, info(1, 1));
  } catch (e) {
    error = e;
  }
  assert(error instanceof RangeError && /dy has shape/.test(error.message), String(error));
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, dy]);
});
