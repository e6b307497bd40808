import { assert, assertEquals, assertThrows } from "@std/assert";
import { assertEmbeddedWasmFresh, HAS_CLANG } from "../../_helpers/embedded_wasm.ts";
import { LinearKernels } from "../../../sdk/features/_linear_kernels.ts";
import { csArrays } from "../../../sdk/features/_linear_svm.ts";
import { evalScratch, evaluateRows } from "../../../sdk/features/_linear_problem.ts";
import {
  SecondShare,
  softmaxArrays,
  softmaxSolve,
  SPLIT_ROWS,
} from "../../../sdk/features/_linear_softmax.ts";

/**
 * A seeded generator of uniform values in [-1, 1). The first steps are
 * skipped: from a small seed, the first values of this generator sit close
 * to -1 (seed + 1 times 16807 is small next to 2³¹ - 1), so every shape
 * drawn first would be the smallest.
 */
function random(seed: number): () => number {
  let s = seed + 1;
  const next = () => (s = (s * 16807) % 2147483647);
  for (let i = 0; i < 4; i++) next();
  return () => (next() / 2147483647) * 2 - 1;
}

/**
 * One code's score as the kernel sums it: four lanes (two float64 pairs)
 * over the first `d & ~3` values, added pairwise, then the bias, then the
 * rest in order. Bit for bit what `simd/linear.c` computes.
 */
function refScore(x: Float32Array, xAt: number, d: number, w: Float64Array, wAt: number): number {
  const d4 = d & ~3;
  let a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  for (let j = 0; j < d4; j += 4) {
    a0 = x[xAt + j]! * w[wAt + j]! + a0;
    a1 = x[xAt + j + 1]! * w[wAt + j + 1]! + a1;
    b0 = x[xAt + j + 2]! * w[wAt + j + 2]! + b0;
    b1 = x[xAt + j + 3]! * w[wAt + j + 3]! + b1;
  }
  let s = (a0 + b0) + (a1 + b1) + w[wAt + d]!;
  for (let j = d4; j < d; j++) s += x[xAt + j]! * w[wAt + j]!;
  return s;
}

/**
 * One code's score in float32 as the sweep sums it: two accumulators of four
 * lanes (the even and the odd groups of four values), added, their lanes
 * added pairwise, then the bias, then the rest in order, every operation
 * rounded to float32. Bit for bit what `simd/linear.c`'s `score32` computes.
 */
function refScore32(x: Float32Array, xAt: number, d: number, w: Float32Array, wAt: number): number {
  const f = Math.fround;
  const d4 = d & ~3;
  const acc = [[0, 0, 0, 0], [0, 0, 0, 0]];
  for (let j = 0; j < d4; j += 4) {
    const a = acc[(j / 4) % 2]!;
    for (let l = 0; l < 4; l++) a[l] = f(f(x[xAt + j + l]! * w[wAt + j + l]!) + a[l]!);
  }
  const v = acc[0]!.map((a, l) => f(a + acc[1]![l]!));
  let s = f(f(f(v[0]! + v[1]!) + f(v[2]! + v[3]!)) + w[wAt + d]!);
  for (let j = d4; j < d; j++) s = f(s + f(x[xAt + j]! * w[wAt + j]!));
  return s;
}

/** A problem of random shape: sizes chosen to hit every tail of the kernels' blocking. */
function problem(seed: number) {
  const rand = random(seed);
  const n = 1 + Math.floor((rand() + 1) * 20);
  const d = 1 + Math.floor((rand() + 1) * 30);
  const k = 2 + Math.floor((rand() + 1) * 6);
  const kern = new LinearKernels();
  const x = kern.alloc(Float32Array, n * d);
  x.view.forEach((_, i) => (x.view[i] = rand()));
  const w = kern.alloc(Float64Array, k * (d + 1));
  w.view.forEach((_, i) => (w.view[i] = rand()));
  return { rand, n, d, k, kern, x, w };
}

/** n (1 to 41) random codes of d (65 to 300) values. */
function wideCodes(seed: number) {
  const rand = random(seed);
  const n = 1 + Math.floor((rand() + 1) * 20);
  const d = 65 + Math.floor((rand() + 1) * 118);
  const kern = new LinearKernels();
  const x = kern.alloc(Float32Array, n * d);
  x.view.forEach((_, i) => (x.view[i] = rand()));
  return { rand, n, d, kern, x };
}

Deno.test("the kernels' scores, gradient products and row updates match a float64 reference on random shapes", () => {
  for (let seed = 0; seed < 200; seed++) {
    const { rand, n, d, k, kern, x, w } = problem(seed);
    const out = kern.alloc(Float64Array, n * k);
    kern.scores(x, 0, n, d, w, k, out);
    const want = new Float64Array(n * k);
    for (let i = 0; i < n; i++) {
      for (let m = 0; m < k; m++) want[i * k + m] = refScore(x.view, i * d, d, w.view, m * (d + 1));
    }
    assertEquals(out.view, want, `scores, seed ${seed} (n ${n}, d ${d}, k ${k})`);

    const delta = kern.alloc(Float64Array, n * k);
    delta.view.forEach((_, i) => (delta.view[i] = rand()));
    const g = kern.alloc(Float64Array, k * (d + 1));
    g.view.forEach((_, i) => (g.view[i] = rand()));
    const g0 = g.view.slice();
    kern.gradAdd(x, 0, n, d, delta, k, g);
    for (let m = 0; m < k; m++) {
      for (let j = 0; j <= d; j++) {
        let s = g0[m * (d + 1) + j]!;
        for (let i = 0; i < n; i++) {
          s += delta.view[i * k + m]! * (j < d ? x.view[i * d + j]! : 1);
        }
        const got = g.view[m * (d + 1) + j]!;
        assert(Math.abs(got - s) <= 1e-12 * (1 + n), `gradient, seed ${seed}: ${got} vs ${s}`);
      }
    }

    const cls = kern.alloc(Int32Array, 2);
    const val = kern.alloc(Float64Array, 2);
    cls.view.set([k - 1, 0]);
    val.view.set([rand(), rand()]);
    const row = n - 1;
    const before = w.view.slice();
    kern.rowUpdate(x, row, d, w, k, cls, val, 2);
    const after = before.slice();
    for (let t = 0; t < 2; t++) {
      const at = cls.view[t]! * (d + 1);
      for (let j = 0; j < d; j++) {
        after[at + j] = val.view[t]! * x.view[row * d + j]! + after[at + j]!;
      }
      after[at + d]! += val.view[t]!;
    }
    assertEquals(w.view, after, `row update, seed ${seed}`);
  }
});

Deno.test("the kernels refuse sizes and offsets that do not fit their arrays, before touching memory", () => {
  const { n, d, k, kern, x, w } = problem(1);
  const out = kern.alloc(Float64Array, n * k);
  const before = out.view.slice();
  assertThrows(() => kern.scores(x, 1, n, d, w, k, out), RangeError, "Invalid codes");
  assertThrows(() => kern.scores(x, 0, n, d + 1, w, k, out), RangeError, "Invalid codes");
  assertThrows(() => kern.scores(x, 0, n, d, w, k + 1, out), RangeError, "Invalid weights");
  assertThrows(() => kern.scores(x, 0, n, d, w, k, out, 1), RangeError, "Invalid scores");
  assertThrows(() => kern.scores(x, -1, 1, d, w, k, out), RangeError, `"-1"`);
  assertThrows(() => kern.scores(x, 0.5, 1, d, w, k, out), RangeError, `"0.5"`);
  assertThrows(() => kern.gradAdd(x, 0, n, d, out, k + 1, w), RangeError);
  const cls = kern.alloc(Int32Array, 1);
  const val = kern.alloc(Float64Array, 1);
  cls.view[0] = k;
  assertThrows(() => kern.rowUpdate(x, 0, d, w, k, cls, val, 1), RangeError, `class "${k}"`);
  assertThrows(() => kern.rowUpdate(x, 0, d, w, k, cls, val, 2), RangeError, "Invalid classes");
  assertThrows(() => kern.rowUpdate(x, n, d, w, k, cls, val, 0), RangeError, "Invalid codes");
  const y = new Int32Array(n);
  const a = softmaxArrays({ kern, x, y, n, d, k });
  const grad = a.grad.view.slice();
  assertThrows(() => kern.softmaxEval(a, 1, n, d, k, 1), RangeError, "Invalid codes");
  assertThrows(() => kern.softmaxEval(a, 0, n, d, k + 1, 1), RangeError, "Invalid weights");
  assertThrows(() => kern.softmaxEval(a, 0, 0, d, k, 1), RangeError, "Invalid softmax");
  assertThrows(() => kern.softmaxEval(a, -1, n, d, k, 1), RangeError, `"-1"`);
  assertThrows(() => kern.softmaxEval(a, 0, n, d, k, NaN), RangeError, "scale NaN");
  assertThrows(
    () => kern.softmaxEval({ ...a, sf: kern.alloc(Float32Array, 4 * k - 1) }, 0, n, d, k, 1),
    RangeError,
    "score scratch",
  );
  assertThrows(
    () => kern.softmaxEval({ ...a, gf: a.sf }, 0, n, d, k, 1),
    RangeError,
    "float32 gradient",
  );
  // A label out of range is refused by the kernel before it writes anything.
  a.y.view[n - 1] = k;
  assertThrows(() => kern.softmaxEval(a, 0, n, d, k, 1), RangeError, "Invalid labels");
  assertEquals(a.grad.view, grad);
  assertEquals(out.view, before);
  assertThrows(() => kern.alloc(Float64Array, 2 ** 29), RangeError, "4 GiB");
});

/** The softmax loss, correct count and gradient of the summed loss, in float64. */
function refSoftmax(
  x: Float32Array,
  y: Int32Array,
  n: number,
  d: number,
  w: Float64Array,
  k: number,
) {
  const ld = d + 1;
  const grad = new Float64Array(k * ld);
  const s = new Float64Array(k);
  let loss = 0, correct = 0, ties = 0;
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < k; m++) {
      s[m] = w[m * ld + d]!;
      for (let j = 0; j < d; j++) s[m]! += x[i * d + j]! * w[m * ld + j]!;
    }
    let best = 0;
    for (let m = 1; m < k; m++) if (s[m]! > s[best]!) best = m;
    if (best === y[i]) correct++;
    // A near tie may go either way in float32.
    if (s.some((v, m) => m !== best && s[best]! - v < 1e-4)) ties++;
    const max = s[best]!;
    let sum = 0;
    for (let m = 0; m < k; m++) sum += Math.exp(s[m]! - max);
    loss += Math.log(sum) + max - s[y[i]!]!;
    for (let m = 0; m < k; m++) {
      const e = Math.exp(s[m]! - max) / sum - (m === y[i] ? 1 : 0);
      for (let j = 0; j < d; j++) grad[m * ld + j]! += e * x[i * d + j]!;
      grad[m * ld + d]! += e;
    }
  }
  return { loss, correct, ties, grad };
}

Deno.test("the float32 softmax kernel matches a float64 reference to float32 rounding on random shapes", () => {
  for (let seed = 0; seed < 200; seed++) {
    const { rand, n, d, k, kern, x, w } = problem(seed);
    const y = Int32Array.from({ length: n }, () => Math.floor((rand() + 1) / 2 * k));
    const a = softmaxArrays({ kern, x, y, n, d, k });
    a.w.view.set(w.view);
    a.grad.view.fill(1);
    const got = kern.softmaxEval(a, 0, n, d, k, 0.5);
    const want = refSoftmax(x.view, y, n, d, w.view, k);
    const where = `seed ${seed} (n ${n}, d ${d}, k ${k})`;
    // Scores reach 30: float32 rounding; the largest errors seen were 1.3e-7 · n · (1 + √d) and 2.7e-7 · n.
    assert(Math.abs(got.loss - want.loss) <= 1e-6 * n * (1 + Math.sqrt(d)), `loss, ${where}`);
    assert(Math.abs(got.correct - want.correct) <= want.ties, `correct, ${where}`);
    for (let t = 0; t < want.grad.length; t++) {
      const g = (a.grad.view[t]! - 1) / 0.5;
      assert(
        Math.abs(g - want.grad[t]!) <= 1e-6 * n,
        `gradient ${t}, ${where}: ${g} vs ${want.grad[t]}`,
      );
    }
  }
});

Deno.test("the kernels' evaluations match the hinge and cross-entropy of float64 scores on random shapes", () => {
  for (let seed = 0; seed < 200; seed++) {
    const { rand, n, d, k, kern, x, w } = problem(seed);
    const y = kern.alloc(Int32Array, n);
    y.view.forEach((_, i) => (y.view[i] = Math.floor((rand() + 1) / 2 * k)));
    const scratch = evalScratch(kern, d, k);
    const where = `seed ${seed} (n ${n}, d ${d}, k ${k})`;
    for (const softmax of [false, true]) {
      let loss = 0, correct = 0, ties = 0;
      for (let i = 0; i < n; i++) {
        const s = Array.from(
          { length: k },
          (_, m) => refScore(x.view, i * d, d, w.view, m * (d + 1)),
        );
        const label = y.view[i]!;
        const best = s.indexOf(Math.max(...s));
        if (best === label) correct++;
        if (s.some((v, m) => m !== best && s[best]! - v < 1e-4)) ties++;
        loss += softmax
          ? Math.log(s.reduce((a, v) => a + Math.exp(v - s[best]!), 0)) + s[best]! - s[label]!
          : Math.max(...s.map((v, m) => v + (m === label ? 0 : 1))) - s[label]!;
      }
      const exact = kern.evaluate(x, y, 0, n, d, w, k, softmax, scratch.scores, scratch.out);
      assertEquals(exact.correct, correct, `correct (float64), ${where}`);
      // The exponentials and the logarithm are float32: within their rounding.
      const tol = softmax ? 1e-6 * n : 1e-9 * n;
      assert(
        Math.abs(exact.loss - loss) <= tol,
        `loss (float64), ${where}: ${exact.loss} vs ${loss}`,
      );
      const f32 = kern.evaluate32(x, y, 0, n, d, w, k, softmax, scratch, scratch.out);
      assert(Math.abs(f32.correct - correct) <= ties, `correct (float32), ${where}`);
      assert(
        Math.abs(f32.loss - loss) <= 1e-6 * n * (1 + Math.sqrt(d)),
        `loss (float32), ${where}: ${f32.loss} vs ${loss}`,
      );
      // Both agree with evaluateRows over the same codes.
      const rows = evaluateRows(softmax ? "softmax" : "svm", kern, x, y, n, d, w, k, scratch);
      assertEquals(rows, { loss: exact.loss / n, accuracy: exact.correct / n });
    }
    const short = { ...scratch, wf: kern.alloc(Float32Array, k * (d + 1) - 1) };
    assertThrows(
      () => kern.evaluate32(x, y, 0, n, d, w, k, false, short, scratch.out),
      RangeError,
      "float32 weights",
    );
    y.view[0] = k;
    assertThrows(
      () => kern.evaluate32(x, y, 0, n, d, w, k, true, scratch, scratch.out),
      RangeError,
      "Invalid labels",
    );
    assertThrows(
      () => kern.evaluate(x, y, 0, n, d, w, k, false, scratch.scores, scratch.out),
      RangeError,
      "Invalid labels",
    );
    assertThrows(
      () => kern.evaluate(x, y, 1, n, d, w, k, false, scratch.scores, scratch.out),
      RangeError,
      "Invalid codes",
    );
  }
});

Deno.test("the kernels' code statistics and standardization match float64 JavaScript bit for bit", () => {
  for (let seed = 0; seed < 100; seed++) {
    // Half the shapes are wider than the kernel's blocks of 64 values, the widths odd and even.
    const { rand, n, d, kern, x } = seed < 50 ? problem(seed) : wideCodes(seed);
    x.view.forEach((v, i) => (x.view[i] = 50 * v + (i % d) - 3));
    const raw = x.view.slice();
    const sum = kern.alloc(Float64Array, d), sq = kern.alloc(Float64Array, d);
    kern.codeStats(x, n, d, sum, sq);
    const wantSum = new Float64Array(d), wantSq = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) wantSum[j]! += raw[i * d + j]!;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) wantSq[j]! += (raw[i * d + j]! - wantSum[j]! / n) ** 2;
    }
    assertEquals(sum.view, wantSum, `sums, seed ${seed}`);
    assertEquals(sq.view, wantSq, `squared sums, seed ${seed}`);
    const mean = kern.alloc(Float32Array, d), std = kern.alloc(Float32Array, d);
    mean.view.forEach((_, j) => (mean.view[j] = wantSum[j]! / n));
    std.view.forEach((_, j) => (std.view[j] = 1 + (rand() + 1) * Math.sqrt(wantSq[j]! / n)));
    const qd = kern.alloc(Float64Array, n);
    kern.standardize(x, n, d, mean, std, qd);
    const want = raw.map((v, i) => (v - mean.view[i % d]!) / std.view[i % d]!);
    assertEquals(x.view, want, `standardized codes, seed ${seed}`);
    for (let i = 0; i < n; i++) {
      let q = 1;
      for (let j = 0; j < d; j++) q += want[i * d + j]! ** 2;
      assertEquals(qd.view[i], q, `norms, seed ${seed}`);
    }
    assertThrows(() => kern.codeStats(x, n + 1, d, sum, sq), RangeError, "Invalid codes");
    assertThrows(() => kern.codeStats(x, n, d + 1, sum, sq), RangeError);
    assertThrows(
      () =>
        kern.standardize(
          x,
          n,
          d,
          mean,
          std,
          kern.alloc(Float64Array, n - 1),
        ),
      RangeError,
      "Invalid norms",
    );
    assertThrows(() => kern.standardize(x, n, d + 1, mean, std), RangeError);
  }
});

/**
 * One sweep of Crammer–Singer dual coordinate descent with shrinking,
 * line by line as liblinear's `Solver_MCSVM_CS` writes it: the reference the
 * compiled `cs_sweep` must match bit for bit.
 */
function refSweep(
  s0: {
    x: Float32Array;
    w: Float64Array;
    wf: Float32Array;
    wlo: Float32Array;
    alpha: Float64Array;
    aidx: Int32Array;
  },
  p: { n: number; d: number; k: number; y: Int32Array; qd: Float64Array; c: number },
  state: {
    yIndex: Int32Array;
    activeOf: Int32Array;
    index: Int32Array;
    active: number;
    lastLoss: Float64Array;
    lastOk: Int32Array;
  },
): number {
  const { x, w, wf, wlo, alpha, aidx } = s0;
  const { d, k, y, qd, c } = p;
  const { yIndex, activeOf, index } = state;
  const ld = d + 1;
  const sc = new Float64Array(k), g = new Float64Array(k), b = new Float64Array(k);
  let stop = -Infinity;
  for (let s = 0; s < state.active; s++) {
    const i = index[s]!, base = i * k, label = y[i]!;
    let act = activeOf[i]!, yi = yIndex[i]!;
    // Only the classes still active, and the label, are scored.
    sc.fill(NaN);
    for (let m = 0; m < act; m++) {
      sc[aidx[base + m]!] = refScore32(x, i * d, d, wf, aidx[base + m]! * ld);
    }
    if (yi >= act) sc[label] = refScore32(x, i * d, d, wf, label * ld);
    let mx = sc[label]!, ok = 1;
    for (let m = 0; m < act; m++) {
      const cls = aidx[base + m]!;
      if (cls === label) continue;
      mx = Math.max(mx, sc[cls]! + 1);
      if (sc[cls]! > sc[label]! || (sc[cls] === sc[label] && cls < label)) ok = 0;
    }
    state.lastLoss[i] = mx - sc[label]!;
    state.lastOk[i] = ok;
    for (let m = 0; m < act; m++) g[m] = sc[aidx[base + m]!]! + (aidx[base + m] === label ? 0 : 1);
    let minG = Infinity, maxG = -Infinity;
    for (let m = 0; m < act; m++) {
      if (alpha[base + aidx[base + m]!]! < 0 && g[m]! < minG) minG = g[m]!;
      if (g[m]! > maxG) maxG = g[m]!;
    }
    if (yi < act && alpha[base + label]! < c && g[yi]! < minG) minG = g[yi]!;
    const shrink = (m: number) =>
      alpha[base + aidx[base + m]!] === (m === yi ? c : 0) && g[m]! < minG;
    for (let m = 0; m < act; m++) {
      if (!shrink(m)) continue;
      act--;
      while (act > m) {
        if (!shrink(act)) {
          [aidx[base + m], aidx[base + act]] = [aidx[base + act]!, aidx[base + m]!];
          [g[m], g[act]] = [g[act]!, g[m]!];
          if (yi === act) yi = m;
          else if (yi === m) yi = act;
          break;
        }
        act--;
      }
    }
    yIndex[i] = yi;
    activeOf[i] = act;
    if (act <= 1) {
      state.active--;
      [index[s], index[state.active]] = [index[state.active]!, index[s]!];
      s--;
      continue;
    }
    if (maxG - minG <= 1e-12) continue;
    stop = Math.max(stop, maxG - minG);
    const ai = qd[i]!;
    for (let m = 0; m < act; m++) b[m] = g[m]! - ai * alpha[base + aidx[base + m]!]!;
    const dd = Array.from(b.subarray(0, act));
    if (yi < act) dd[yi]! += ai * c;
    dd.sort((u, v) => u - v);
    let beta = dd[act - 1]! - ai * c, r = 1;
    while (r < act && beta < r * dd[act - 1 - r]!) beta += dd[act - 1 - r++]!;
    beta /= r;
    const upd: [number, number][] = [];
    for (let m = 0; m < act; m++) {
      const cls = aidx[base + m]!;
      const next = Math.min(m === yi ? c : 0, (beta - b[m]!) / ai);
      const delta = next - alpha[base + cls]!;
      alpha[base + cls] = next;
      if (Math.abs(delta) >= 1e-12) upd.push([cls, delta]);
    }
    // The weights are wf - wlo: float32, compensated (Kahan) summation of the updates.
    const f = Math.fround;
    for (const [cls, delta] of upd) {
      const v = f(delta);
      for (let j = 0, t = cls * ld; j <= d; j++, t++) {
        const add = f(f(j < d ? f(x[i * d + j]! * v) : v) - wlo[t]!);
        const sum = f(wf[t]! + add);
        wlo[t] = f(f(sum - wf[t]!) - add);
        wf[t] = sum;
      }
    }
  }
  for (let t = 0; t < w.length; t++) w[t] = wf[t]! - wlo[t]!;
  return stop;
}

Deno.test("the compiled Crammer–Singer sweep matches liblinear's steps bit for bit on random problems", () => {
  for (let seed = 0; seed < 60; seed++) {
    const { rand, n, d, k, kern, x } = problem(seed);
    const y = Int32Array.from({ length: n }, () => Math.floor((rand() + 1) / 2 * k));
    const qd = Float64Array.from({ length: n }, (_, i) => {
      let s = 1;
      for (let j = 0; j < d; j++) s += x.view[i * d + j]! ** 2;
      return s;
    });
    const c = 10 ** (rand() * 2);
    const a = csArrays({ kern, x, y, n, d, k }, qd);
    a.yIndex.view.set(y);
    a.qd.view.set(qd);
    a.activeOf.view.fill(k);
    a.index.view.forEach((_, i) => (a.index.view[i] = n - 1 - i));
    a.alphaIndex.view.forEach((_, i) => (a.alphaIndex.view[i] = i % k));
    const ref = {
      x: x.view.slice(),
      w: a.w.view.slice(),
      wf: a.wf.view.slice(),
      wlo: a.wlo.view.slice(),
      alpha: a.alpha.view.slice(),
      aidx: a.alphaIndex.view.slice(),
    };
    const state = {
      yIndex: a.yIndex.view.slice(),
      activeOf: a.activeOf.view.slice(),
      index: a.index.view.slice(),
      active: n,
      lastLoss: new Float64Array(n),
      lastOk: new Int32Array(n),
    };
    let active = n;
    for (let pass = 0; pass < 3; pass++) {
      const got = kern.csSweep(a, n, d, k, active, c);
      const want = refSweep(ref, { n, d, k, y, qd, c }, state);
      active = got.active;
      assertEquals(got.stopping, want, `violation, seed ${seed}, pass ${pass}`);
      assertEquals(active, state.active, `active codes, seed ${seed}, pass ${pass}`);
    }
    assert(a.w.view.some((v) => v !== 0), `the sweeps moved the weights, seed ${seed}`);
    assertEquals(a.w.view, ref.w, `weights, seed ${seed}`);
    assertEquals(a.wf.view, ref.wf, `float32 weights, seed ${seed}`);
    assertEquals(a.wlo.view, ref.wlo, `weight compensation, seed ${seed}`);
    assertEquals(a.alpha.view, ref.alpha, `dual variables, seed ${seed}`);
    assertEquals(a.index.view, state.index, `order, seed ${seed}`);
    assertEquals(a.lastLoss.view, state.lastLoss, `losses, seed ${seed}`);
    assertEquals(a.lastOk.view, state.lastOk, `correctness, seed ${seed}`);

    // Corrupted contents are refused by the kernel, not followed out of its arrays.
    a.index.view[0] = n + 5;
    assertThrows(() => kern.csSweep(a, n, d, k, 1, c), RangeError, "out of range");
    a.index.view[0] = 0;
    a.y.view[0] = k;
    assertThrows(() => kern.csSweep(a, n, d, k, 1, c), RangeError, "out of range");
  }
});

Deno.test({
  name: "the embedded linear kernels are what build.sh makes of linear.c",
  ignore: !HAS_CLANG,
  fn: () =>
    assertEmbeddedWasmFresh({
      dir: new URL("../../../sdk/features/simd/", import.meta.url),
      source: "linear.c",
      generated: "linear_wasm.ts",
      task: "build:features-simd",
    }),
});

Deno.test("the softmax's second thread gives the same weights bit for bit as one thread, started or not, and the split stays within rounding of no split", async () => {
  const rand = random(7);
  const n = SPLIT_ROWS + 13, d = 9, k = 3;
  const kern = new LinearKernels();
  const x = kern.alloc(Float32Array, n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % k;
    for (let j = 0; j < d; j++) x.view[i * d + j] = rand() + (j === y[i] ? 1 : 0);
  }
  const p = { kern, x, y, n, d, k };
  const solve = (second: SecondShare | undefined) => {
    const w = new Float64Array(k * (d + 1));
    const iterations = softmaxSolve(p, 1e-3, w, 30, 1e-6, undefined, second);
    return { w, iterations };
  };
  using threaded = await SecondShare.start(p);
  using local = await SecondShare.start(p, false);
  assert(local && !local.threaded, "the second share without a thread runs here");
  assert(threaded?.threaded, "a Worker was started");
  // Solved once while the Worker may still be starting, then once it has.
  const early = solve(threaded);
  assert(await threaded.ready(), "the Worker started");
  const b = solve(local), whole = solve(undefined);
  assertEquals(early, b);
  // On a busy machine the main thread may claim every share itself: solve again until the Worker took some.
  let a = solve(threaded);
  for (let tries = 1; tries < 10 && threaded.workerShares === 0; tries++) a = solve(threaded);
  assertEquals(a, b);
  assert(threaded.workerShares > 0, "the Worker evaluated some of the shares");
  assertEquals(local.workerShares, 0);
  for (let t = 0; t < a.w.length; t++) assert(Math.abs(a.w[t]! - whole.w[t]!) < 1e-4);
  assertEquals(await SecondShare.start({ ...p, n: SPLIT_ROWS - 1 }), undefined);
});
