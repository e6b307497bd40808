import { assert, assertEquals, assertGreater, assertRejects } from "@std/assert";
import { type CnnCodes, evaluateLinear, trainLinear } from "../../../sdk/features/mod.ts";
import { LinearKernels } from "../../../sdk/features/_linear_kernels.ts";
import { scaleSvmState, svmSolve, type SvmState } from "../../../sdk/features/_linear_svm.ts";

/** Three blobs in 5 dimensions, far from the origin and on different scales, `spread` wide. */
function blobs(perClass: number, seed: number, spread = 0.3): CnnCodes {
  let s = seed + 1;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
  const dim = 5, count = 3 * perClass;
  const codes = new Float32Array(count * dim);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 3;
    for (let d = 0; d < dim; d++) {
      codes[i * dim + d] = 100 + (d + 1) * 10 * ((d === labels[i] ? 1 : 0) + spread * rand());
    }
  }
  return { codes, labels, count, dim };
}

/** `codes` with labels of every `every`-th code moved to the next class. */
function noisy(codes: CnnCodes, every: number): CnnCodes {
  return { ...codes, labels: codes.labels.map((l, i) => i % every === 0 ? (l + 1) % 3 : l) };
}

for (const classifier of ["svm", "softmax"] as const) {
  Deno.test(`trainLinear() with ${classifier} separates blobs, and its folded weights classify raw codes`, async () => {
    const fit = await trainLinear(blobs(30, 1), blobs(10, 2), {
      classifier,
      numClasses: 3,
      epochs: 40,
      seed: 0,
    });
    assertEquals(fit.history[0]!.phase, "linear");
    assert(fit.trials.length >= 3, `L2 weights tried: ${JSON.stringify(fit.trials)}`);
    assertEquals(
      fit.model.l2,
      fit.trials.reduce((a, t) => t.valAccuracy > a.valAccuracy ? t : a).l2,
    );
    assertGreater(fit.history.at(-1)!.valAccuracy!, 0.95);
    const test = await evaluateLinear(fit.model, blobs(20, 3));
    assertGreater(test.accuracy, 0.95);
  });
}

Deno.test("trainLinear() chooses the L2 weight with the best validation accuracy, trying the strongest first", async () => {
  // Few noisy training codes: the weakest penalties overfit, a strong one generalizes.
  const train = noisy(blobs(4, 1), 3);
  const validation = blobs(30, 2);
  const fit = await trainLinear(train, validation, {
    classifier: "softmax",
    numClasses: 3,
    epochs: 200,
  });
  const l2s = fit.trials.map((t) => t.l2);
  assertEquals(l2s, [...l2s].sort((a, b) => b - a), "from the strongest penalty down");
  const best = Math.max(...fit.trials.map((t) => t.valAccuracy));
  const chosen = fit.trials.find((t) => t.l2 === fit.model.l2)!;
  assertEquals(chosen.valAccuracy, best);
  // The fit kept is that trial's, then on to convergence where the trial stopped at its cap.
  assertEquals(fit.history[chosen.epochs - 1]!.valAccuracy, chosen.valAccuracy);
  assert(fit.history.length >= chosen.epochs);
  assertEquals(fit.history.map((m) => m.epoch), fit.history.map((_, i) => i + 1));
  const atFixed = await trainLinear(train, validation, {
    classifier: "softmax",
    numClasses: 3,
    epochs: 200,
    l2: fit.model.l2,
  });
  assertEquals(atFixed.trials, [], "a given l2 is used as is");
  // From zero rather than from the previous trial, to the same optimum within the tolerance.
  const gap = atFixed.model.kernel.reduce(
    (m, v, i) => Math.max(m, Math.abs(v - fit.model.kernel[i]!)),
    0,
  );
  assert(gap < 1e-2, `kernels differ by ${gap}`);
});

Deno.test("an SVM solution scaled to a larger C is a feasible start that ends at the new C's optimum", () => {
  // Overlapping blobs, centred: at C = 0.01 most codes' dual variables sit at their bounds.
  const raw = blobs(40, 1, 2.5);
  const { count: n, dim: d } = raw;
  const k = 3;
  const kern = new LinearKernels();
  const x = kern.alloc(Float32Array, n * d);
  for (let t = 0; t < n * d; t++) x.view[t] = (raw.codes[t]! - 100) / 10;
  const p = { kern, x, y: raw.labels, n, d, k };
  const qd = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    qd[i] = 1 + x.view.subarray(i * d, (i + 1) * d).reduce((s, v) => s + v * v, 0);
  }
  const zero = (): SvmState => ({
    w: new Float64Array(k * (d + 1)),
    alpha: new Float64Array(n * k),
  });
  const small = zero();
  svmSolve(p, qd, 0.01, small, 5000, 1e-6, 0);
  const atBound = raw.labels.filter((l, i) => small.alpha[i * k + l] === 0.01).length;
  assertGreater(atBound, n / 2, `${atBound} of ${n} codes' label variables at C`);
  const start = { w: small.w.slice(), alpha: small.alpha.slice() };
  scaleSvmState(start, 10);
  for (let i = 0; i < n; i++) {
    const a = start.alpha.subarray(i * k, (i + 1) * k);
    assert(Math.abs(a.reduce((s, v) => s + v, 0)) < 1e-12, `code ${i}: the variables sum to ${a}`);
    a.forEach((v, m) => assert(v <= (m === raw.labels[i] ? 0.1 : 0), `code ${i}: ${a}`));
  }
  // The weights stay the variables' sum over the codes (with the bias a constant feature).
  for (let m = 0; m < k; m++) {
    for (let j = 0; j <= d; j++) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += start.alpha[i * k + m]! * (j < d ? x.view[i * d + j]! : 1);
      assert(Math.abs(sum - start.w[m * (d + 1) + j]!) < 1e-5, `class ${m}, weight ${j}`);
    }
  }
  const fromScaled = svmSolve(p, qd, 0.1, start, 5000, 1e-6, 0);
  const fresh = zero();
  svmSolve(p, qd, 0.1, fresh, 5000, 1e-6, 0);
  const gap = fresh.w.reduce((g, v, t) => Math.max(g, Math.abs(v - start.w[t]!)), 0);
  assert(gap < 1e-3, `weights differ by ${gap} (${fromScaled} passes from the scaled start)`);
});

Deno.test("trainLinear() trains the Crammer–Singer SVM to the optimum of its objective", async () => {
  // At the optimum no small move of the weights lowers mean hinge + l2 ||W||² (a subgradient check).
  const train = blobs(20, 4);
  const l2 = 0.01;
  const fit = await trainLinear(train, undefined, {
    classifier: "svm",
    numClasses: 3,
    epochs: 2000,
    l2,
    tolerance: 1e-6,
  });
  const objective = (kernel: Float32Array, bias: Float32Array) => {
    const m = { ...fit.model, kernel, bias };
    let penalty = 0; // over the standardized weights, bias included as liblinear has it
    for (let i = 0; i < kernel.length; i++) {
      penalty += (kernel[i]! * m.std[Math.floor(i / 3)]!) ** 2;
    }
    for (let c = 0; c < 3; c++) {
      let b = bias[c]!;
      for (let j = 0; j < m.dim; j++) b += m.mean[j]! * kernel[j * 3 + c]!;
      penalty += b * b;
    }
    return evaluateLinear(m, train).then((e) => e.loss + l2 * penalty);
  };
  const at = await objective(fit.model.kernel, fit.model.bias);
  let s = 7;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
  for (let trial = 0; trial < 20; trial++) {
    const k = fit.model.kernel.map((v, i) => v + 1e-3 * rand() / fit.model.std[Math.floor(i / 3)]!);
    const b = fit.model.bias.map((v) => v + 1e-3 * rand());
    assert(await objective(k, b) >= at - 1e-6, `a nearby point is better than the solution`);
  }
});

Deno.test("trainLinear() rejects labels out of range and codes of the wrong length", async () => {
  const train = blobs(2, 1);
  const opts = { classifier: "svm", numClasses: 2, epochs: 1 } as const;
  await assertRejects(() => trainLinear(train, undefined, opts), RangeError, `label "2"`);
  await assertRejects(
    () => trainLinear(train, { ...train, dim: 4 }, { ...opts, numClasses: 3 }),
    RangeError,
    "Invalid validation codes",
  );
  await assertRejects(
    () => trainLinear(blobs(2, 1), undefined, { ...opts, numClasses: 3, l2: -1 }),
    RangeError,
    `Invalid L2 weight "-1"`,
  );
});

Deno.test("evaluateLinear() computes the Crammer–Singer hinge and the cross-entropy as written by hand", async () => {
  // scores = codes · kernel + bias, 2 dimensions, 3 classes.
  const kernel = new Float32Array([1, 0, -1, 0, 2, 1]);
  const bias = new Float32Array([0, 0.5, 0]);
  const codes: CnnCodes = {
    codes: new Float32Array([1, 0, 0, 1, 2, -1]),
    labels: new Int32Array([0, 2, 0]),
    count: 3,
    dim: 2,
  };
  const scores = [[1, 0.5, -1], [0, 2.5, 1], [2, -1.5, -3]];
  const model = {
    dim: 2,
    numClasses: 3,
    kernel,
    bias,
    mean: new Float32Array(2),
    std: new Float32Array([1, 1]),
    l2: 1e-3,
  };
  // Hinge per example: max(0, max over j != y of s_j + 1 - s_y) = 0.5, 2.5, 0.
  const svm = await evaluateLinear({ ...model, classifier: "svm" }, codes);
  assert(Math.abs(svm.loss - 1) < 1e-6, `hinge ${svm.loss}`);
  assertEquals(svm.accuracy, 2 / 3);
  const ce = scores.map((s, i) => {
    const y = codes.labels[i]!;
    return Math.log(s.reduce((a, v) => a + Math.exp(v), 0)) - s[y]!;
  }).reduce((a, b) => a + b, 0) / 3;
  const softmax = await evaluateLinear({ ...model, classifier: "softmax" }, codes);
  assert(Math.abs(softmax.loss - ce) < 1e-5, `cross-entropy ${softmax.loss}, by hand ${ce}`);
});

Deno.test("trainLinear()'s L2 penalty shrinks the SVM's weights over the standardized codes", async () => {
  const opts = { classifier: "svm", numClasses: 3, epochs: 1000, tolerance: 1e-3 } as const;
  const norm = (m: { kernel: Float32Array; std: Float32Array; numClasses: number }) =>
    // The folded kernel is W / std row by row: undo it to get W.
    Math.sqrt(
      m.kernel.reduce((a, v, i) => a + (v * m.std[Math.floor(i / m.numClasses)]!) ** 2, 0),
    );
  const free = await trainLinear(blobs(30, 1), undefined, { ...opts, l2: 1e-4 });
  const penalized = await trainLinear(blobs(30, 1), undefined, { ...opts, l2: 10 });
  const [a, b] = [norm(free.model), norm(penalized.model)];
  assert(b < 0.5 * a, `||W|| ${b} with l2 10, ${a} with 1e-4`);
  assertGreater((await evaluateLinear(penalized.model, blobs(20, 3))).accuracy, 0.9);
});
