import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { assertNear, onBoth, relativeError, seeded } from "./_compare.ts";

await initWasmBackend({ threads: false });

const TOL = 1e-4;
type Pad = "same" | "valid";
type Case = { x: number[]; f: number[]; s: number; pad: Pad; d?: number };

function t(values: Float32Array, shape: number[]): tf.Tensor4D {
  return tf.tensor4d(values, shape as [number, number, number, number]);
}

const convCases: Case[] = [
  { x: [2, 9, 9, 3], f: [3, 3, 3, 5], s: 1, pad: "same" },
  { x: [2, 9, 9, 3], f: [3, 3, 3, 5], s: 2, pad: "same" },
  { x: [2, 9, 8, 4], f: [3, 3, 4, 6], s: 2, pad: "valid" },
  { x: [3, 7, 7, 8], f: [1, 1, 8, 4], s: 1, pad: "same" },
  { x: [2, 8, 8, 3], f: [1, 1, 3, 4], s: 2, pad: "valid" },
  { x: [1, 10, 11, 2], f: [5, 3, 2, 3], s: 2, pad: "same" },
  { x: [4, 12, 12, 16], f: [3, 3, 16, 32], s: 1, pad: "valid" },
  { x: [3, 12, 12, 1], f: [5, 5, 1, 6], s: 1, pad: "same" },
];

Deno.test("Conv2DBackpropFilter on wasm matches cpu for strides 1 and 2, same and valid padding", async () => {
  for (const [i, c] of convCases.entries()) {
    const x = seeded(c.x, 10 + i), f = seeded(c.f, 20 + i);
    const { cpu, wasm } = await onBoth(() => {
      const loss = (w: tf.Tensor) =>
        tf.conv2d(t(x, c.x), w as tf.Tensor4D, c.s, c.pad).square().sum();
      return tf.grad(loss)(t(f, c.f));
    });
    assertNear(wasm, cpu, TOL, `case ${JSON.stringify(c)}`);
  }
});

/** The filter with `d − 1` zeros between taps: a dilated conv is a plain conv with it. */
function dilateFilter(
  f: Float32Array,
  shape: number[],
  d: number,
): { v: Float32Array; shape: number[] } {
  const [kh, kw, c, m] = shape as [number, number, number, number];
  const dh = (kh - 1) * d + 1, dw = (kw - 1) * d + 1;
  const v = new Float32Array(dh * dw * c * m);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      v.set(
        f.subarray((i * kw + j) * c * m, (i * kw + j + 1) * c * m),
        (i * d * dw + j * d) * c * m,
      );
    }
  }
  return { v, shape: [dh, dw, c, m] };
}

const depthwiseCases: Case[] = [
  { x: [2, 9, 9, 3], f: [3, 3, 3, 1], s: 1, pad: "same" },
  { x: [2, 9, 9, 3], f: [3, 3, 3, 2], s: 2, pad: "same" },
  { x: [2, 9, 8, 4], f: [3, 3, 4, 1], s: 2, pad: "valid" },
  { x: [1, 10, 11, 2], f: [5, 3, 2, 3], s: 2, pad: "same" },
  { x: [3, 14, 14, 32], f: [3, 3, 32, 1], s: 1, pad: "same" },
  { x: [2, 9, 9, 4], f: [3, 3, 4, 2], s: 1, pad: "same", d: 2 },
  { x: [2, 8, 8, 3], f: [3, 3, 3, 1], s: 1, pad: "valid", d: 2 },
  { x: [1, 12, 11, 2], f: [2, 3, 2, 1], s: 1, pad: "same", d: 3 },
];

Deno.test("Depthwise conv filter and input gradients on wasm match cpu, with strides, padding and dilation", async () => {
  for (const [i, c] of depthwiseCases.entries()) {
    const d = c.d ?? 1;
    const x = seeded(c.x, 30 + i), f = seeded(c.f, 40 + i);
    // tfjs's gradient refuses dilation and the cpu backprop kernels ignore it, so the
    // reference differentiates the equivalent undilated conv with a zero-inserted filter.
    const fd = dilateFilter(f, c.f, d);
    const outShape = tf.tidy(() =>
      tf.depthwiseConv2d(t(x, c.x), t(fd.v, fd.shape), c.s, c.pad).shape
    );
    const dyv = seeded(outShape, 50 + i);
    await tf.setBackend("cpu");
    const [gx, gfd] = tf.tidy(() =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad)
      )([t(x, c.x), t(fd.v, fd.shape)], tf.tensor(dyv, outShape))
    );
    const gf = tf.tidy(() => tf.stridedSlice(gfd!, [0, 0, 0, 0], gfd!.shape, [d, d, 1, 1]));
    const expectedDx = gx!.dataSync(), expectedDw = gf.dataSync();
    tf.dispose([gx!, gfd!, gf]);
    await tf.setBackend("wasm");
    const attrs = { strides: c.s, pad: c.pad, dilations: d };
    const [dw, dx] = tf.tidy(() => [
      tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", {
        x: t(x, c.x),
        dy: tf.tensor(dyv, outShape),
      }, { ...attrs, filterShape: c.f }) as tf.Tensor,
      tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", {
        dy: tf.tensor(dyv, outShape),
        filter: t(f, c.f),
      }, { ...attrs, inputShape: c.x }) as tf.Tensor,
    ]);
    const errW = relativeError(dw!.dataSync(), expectedDw);
    const errX = relativeError(dx!.dataSync(), expectedDx);
    tf.dispose([dw!, dx!]);
    assert(errW <= TOL, `case ${JSON.stringify(c)}: filter gradient relative error ${errW}`);
    assert(errX <= TOL, `case ${JSON.stringify(c)}: input gradient relative error ${errX}`);
  }
});

Deno.test("The replaced Slice and BatchMatMul kernels on wasm match cpu", async () => {
  const a = seeded([3, 5, 7], 1), m = seeded([2, 6, 4], 2), n = seeded([2, 6, 5], 3);
  const cases: Array<() => tf.Tensor> = [
    () => tf.slice(tf.tensor(a, [3, 5, 7]), [1, 2, 3], [2, 2, 3]),
    () => tf.slice(tf.tensor(a, [3, 5, 7]), [0, 1, 0], [3, 3, 7]),
    () => tf.slice(tf.tensor(a, [3, 5, 7]), [1, 0, 0], [2, 5, 7]),
    () => tf.slice(tf.tensor(a, [105]), [4], [50]),
    () => tf.matMul(tf.tensor(m, [2, 6, 4]), tf.tensor(n, [2, 6, 5]), true, false),
    () => tf.matMul(tf.tensor(m, [12, 4]), tf.tensor(n, [12, 5]), true, false),
    () => tf.matMul(tf.tensor(m, [12, 4]), tf.tensor(n, [5, 12]), true, true),
    () => tf.matMul(tf.tensor(m, [6, 8]), tf.tensor(n.subarray(0, 40), [5, 8]), false, true),
    () => tf.matMul(tf.tensor(m, [2, 4, 6]), tf.tensor(n, [2, 5, 6]), false, true),
    () => tf.transpose(tf.tensor(a, [15, 7])),
    () => tf.transpose(tf.tensor(a, [3, 5, 7]), [0, 2, 1]),
    () => tf.transpose(tf.tensor(a, [3, 5, 7]), [2, 0, 1]),
    () => tf.transpose(tf.tensor(a.subarray(0, 100), [50, 2]).toInt(), [1, 0]),
  ];
  for (const [i, f] of cases.entries()) {
    const { cpu, wasm } = await onBoth(f);
    assert(relativeError(wasm, cpu) <= 1e-6, `case ${i}`);
  }
});

Deno.test("The wasm gradient kernels leak no tensors or heap buffers", async () => {
  await tf.setBackend("wasm");
  const x = tf.tensor(seeded([2, 8, 8, 4], 5), [2, 8, 8, 4]) as tf.Tensor4D;
  const f = tf.tensor(seeded([3, 3, 4, 1], 6), [3, 3, 4, 1]) as tf.Tensor4D;
  const g = tf.tensor(seeded([3, 3, 4, 3], 7), [3, 3, 4, 3]) as tf.Tensor4D;
  const step = () =>
    tf.tidy(() => {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.conv2d(
          tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"),
          c as tf.Tensor4D,
          1,
          "same",
        ).sum()
      )([x, f, g]);
      return tf.addN(grads.map((t) => t.sum()));
    }).dispose();
  step();
  const before = tf.memory().numTensors;
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  for (let i = 0; i < 3; i++) step();
  assertEquals(tf.memory().numTensors, before);
  assertEquals(backend.numDataIds(), ids);
  tf.dispose([x, f, g]);
});

Deno.test("The replaced Conv2DBackpropInput, Identity, Mean, Sum and Tile kernels on wasm match cpu", async () => {
  for (const [i, c] of convCases.entries()) {
    const x = seeded(c.x, 60 + i), f = seeded(c.f, 70 + i);
    const { cpu, wasm } = await onBoth(() => {
      const loss = (v: tf.Tensor) =>
        tf.conv2d(v as tf.Tensor4D, t(f, c.f), c.s, c.pad).square().sum();
      return tf.grad(loss)(t(x, c.x));
    });
    assertNear(wasm, cpu, TOL, `Conv2DBackpropInput case ${JSON.stringify(c)}`);
  }
  const a = seeded([4, 5, 6, 7], 80);
  const x = () => tf.tensor(a, [4, 5, 6, 7]);
  const cases: Array<() => tf.Tensor> = [
    () => tf.mean(x(), [0, 1, 2]),
    () => tf.mean(x(), [0, 1, 2], true),
    () => tf.sum(x(), [1, 0]),
    () => tf.sum(x(), [2, 3]),
    () => tf.mean(x(), 0),
    () => tf.tile(x(), [2, 1, 3, 1]),
    () => tf.tile(tf.tensor(a.subarray(0, 7), [1, 1, 1, 7]), [4, 5, 6, 1]),
    () => tf.tile(tf.tensor(a.subarray(0, 6), [2, 3]), [3, 2]),
    () => (tf.engine().runKernel("Identity", { x: x() }) as tf.Tensor).add(1),
    // Add: a bias on either side, a [1, 1, C] bias, and broadcasts it leaves to the shipped kernel.
    () => tf.add(x(), tf.tensor(a.subarray(0, 7), [7])),
    () => tf.add(tf.tensor(a.subarray(0, 7), [1, 1, 7]), x()),
    () => tf.add(x(), tf.tensor(a.subarray(0, 6), [6, 1])),
    () => tf.add(x(), x()),
    () => tf.add(x().toInt(), tf.tensor(a.subarray(0, 7), [7]).toInt()),
  ];
  for (const [i, f] of cases.entries()) {
    const { cpu, wasm } = await onBoth(f);
    assert(
      relativeError(wasm, cpu) <= 1e-5,
      `case ${i}: relative error ${relativeError(wasm, cpu)}`,
    );
  }
});

type PoolCase = { x: number[]; k: number; s: number; pad: Pad; ties?: boolean; odd?: boolean };

/**
 * Asserts that the gradient of `pool` on `x` matches cpu's, through a loss
 * that gives every output a random weight (seeded by `seed`), so every routed
 * gradient differs.
 */
async function assertPoolGradNear(
  pool: (x: tf.Tensor4D, k: number, s: number, pad: Pad) => tf.Tensor4D,
  x: Float32Array,
  c: PoolCase,
  seed: number,
): Promise<void> {
  const { cpu, wasm } = await onBoth(() => {
    const loss = (v: tf.Tensor) => {
      const y = pool(v as tf.Tensor4D, c.k, c.s, c.pad);
      return y.mul(tf.tensor(seeded(y.shape, seed), y.shape)).sum();
    };
    return tf.grad(loss)(t(x, c.x));
  });
  assertNear(wasm, cpu, 1e-6, `case ${JSON.stringify(c)}`);
}

Deno.test("The replaced MaxPoolGrad on wasm matches cpu, overlapping windows, padding and ties included", async () => {
  const cases: PoolCase[] = [
    { x: [3, 28, 28, 6], k: 2, s: 2, pad: "valid" },
    { x: [2, 9, 9, 5], k: 3, s: 2, pad: "same" },
    { x: [2, 7, 8, 3], k: 3, s: 1, pad: "same" },
    { x: [2, 9, 9, 4], k: 3, s: 2, pad: "valid" },
    // Quantized values: many windows hold several equal maxima.
    { x: [2, 8, 8, 3], k: 2, s: 2, pad: "valid", ties: true },
    { x: [2, 8, 8, 3], k: 3, s: 1, pad: "same", ties: true },
    // Odd sizes leave a row and a column out of every window.
    { x: [2, 7, 9, 5], k: 2, s: 2, pad: "valid" },
    // NaN and -Infinity: never a window's maximum; a window of only those passes no gradient.
    { x: [2, 8, 8, 3], k: 2, s: 2, pad: "valid", odd: true },
    { x: [2, 8, 8, 3], k: 3, s: 2, pad: "same", odd: true },
  ];
  for (const [i, c] of cases.entries()) {
    const raw = seeded(c.x, 90 + i);
    const x = c.ties ? raw.map((v) => Math.round(v)) : raw;
    if (c.odd) {
      for (let j = 0; j < x.length; j += 5) x[j] = NaN;
      for (let j = 2; j < x.length; j += 7) x[j] = -Infinity;
      x.fill(-Infinity, 0, 2 * 8 * 3); // the first two rows of the first image
      for (let j = 0; j < 8 * 3; j += 3) x[j] = NaN;
    }
    await assertPoolGradNear(tf.maxPool, x, c, 7);
  }
});

Deno.test("The replaced AvgPoolGrad on wasm matches cpu, with and without padding", async () => {
  const cases: PoolCase[] = [
    { x: [3, 10, 10, 16], k: 2, s: 2, pad: "valid" },
    { x: [2, 9, 9, 5], k: 3, s: 2, pad: "valid" },
    { x: [2, 7, 8, 3], k: 3, s: 1, pad: "valid" },
    { x: [2, 9, 9, 4], k: 3, s: 2, pad: "same" },
  ];
  for (const [i, c] of cases.entries()) {
    await assertPoolGradNear(tf.avgPool, seeded(c.x, 110 + i), c, 8);
  }
});
