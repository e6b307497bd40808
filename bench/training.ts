/**
 * Training and inference speed, side by side: tfjs cpu, wasm (1 thread, all
 * cores with XNNPACK on one, all cores for both), webgpu, and PyTorch on the CPU. Each backend runs in its own
 * process (a wasm build is chosen once per process), each case as images/s,
 * the median of timed steps after one warm-up step, with a time budget per
 * case so the whole run stays near ten minutes.
 *
 * Cases: MNIST-size CNN training (LeNet-ish, 28×28×1, batch 128), MobileNetV2
 * full fine-tune (224×224, batch 32 as micro-batches with gradient
 * accumulation), MobileNetV2 inference (batch 32).
 *
 *   deno run -A bench/training.ts [--budget 15] [--out bench/results/training.md]
 *
 * A hand-written part after the `<!-- findings -->` line of the output file
 * is kept.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "@std/cli";
import { initWasmBackend } from "../sdk/devices/wasm.ts";
import { accumulatedGradients, splitBatch } from "../sdk/train/accumulate.ts";
import { loadNsfwjsModel } from "../zoo/nsfwjs/source.ts";
import { runTorchScript } from "./_torch.ts";
import { lscpu, writeReport } from "./_report.ts";

type CaseName = "mnistTrain" | "mobilenetTrain" | "mobilenetInfer";
type Result = { imagesPerSecond: number; iterations: number; note?: string } | { skipped: string };
type Row = Partial<Record<CaseName, Result>> & {
  setup?: string;
  profile?: string;
  mnistProfile?: string;
  error?: string;
};

const CASES: CaseName[] = ["mnistTrain", "mobilenetTrain", "mobilenetInfer"];
const LABELS: Record<CaseName, string> = {
  mnistTrain: "MNIST CNN training (28×28×1, batch 128)",
  mobilenetTrain: "MobileNetV2 full fine-tune (224, batch 32)",
  mobilenetInfer: "MobileNetV2 inference (224, batch 32)",
};

const args = parseArgs(Deno.args, {
  string: ["budget", "out", "child", "micro", "rounds"],
  boolean: ["profile", "mnist-only"],
  default: { budget: "15", out: "bench/results/training.md", rounds: "5" },
});
const budgetS = Number(args.budget);

type T = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: T) => layer.apply(x) as T;

/** The MNIST-size CNN, the same net as `lenet` in training_torch.py. */
function lenet(
  inputShape: [number, number, number] = [28, 28, 1],
  classes = 10,
): tf.LayersModel {
  const inp = tf.input({ shape: inputShape });
  let x = apply(
    tf.layers.conv2d({ filters: 6, kernelSize: 5, padding: "same", activation: "relu" }),
    inp,
  );
  x = apply(tf.layers.maxPooling2d({ poolSize: 2 }), x);
  x = apply(tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: "relu" }), x);
  x = apply(tf.layers.averagePooling2d({ poolSize: 2 }), x);
  x = apply(tf.layers.flatten(), x);
  x = apply(tf.layers.dense({ units: 84, activation: "relu" }), x);
  const out = apply(tf.layers.dense({ units: classes, activation: "softmax" }), x);
  return tf.model({ inputs: inp, outputs: out });
}

async function measure(
  step: () => Promise<void>,
  batch: number,
  maxIters: number,
): Promise<Result> {
  await step();
  const times: number[] = [];
  const start = performance.now();
  while (
    times.length < maxIters && (times.length === 0 || performance.now() - start < budgetS * 1000)
  ) {
    const t = performance.now();
    await step();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  return { imagesPerSecond: batch / (median / 1000), iterations: times.length };
}

function labels(n: number, classes: number): tf.Tensor {
  return tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % classes), "int32"), classes);
}

/**
 * Per-kernel time of `run`, the median over `repeats` profiled runs (one
 * profiled step is at the mercy of a single scheduling hiccup on a shared VM).
 */
async function profileMicroBatch(run: () => Promise<void>, repeats = 5): Promise<string> {
  const runs: Map<string, number>[] = [];
  for (let r = 0; r < repeats; r++) {
    const info = await tf.profile(run);
    const times = new Map<string, number>();
    for (const k of info.kernels) {
      if (k.name.endsWith("__op")) continue;
      times.set(k.name, (times.get(k.name) ?? 0) + Number(k.kernelTimeMs));
    }
    runs.push(times);
  }
  const byKernel = new Map<string, number>();
  for (const name of new Set(runs.flatMap((m) => [...m.keys()]))) {
    const ts = runs.map((m) => m.get(name) ?? 0).sort((a, b) => a - b);
    byKernel.set(name, ts[Math.floor(ts.length / 2)]!);
  }
  const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
  const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 12);
  return [
    `| kernel | ms | share |`,
    `| --- | ---: | ---: |`,
    ...top.map(([k, ms]) => `| ${k} | ${ms.toFixed(1)} | ${(100 * ms / total).toFixed(1)}% |`),
    `| all kernels | ${total.toFixed(1)} | 100% |`,
  ].join("\n");
}

/** Runs every case on one backend, in this process. */
async function child(backend: string): Promise<Row> {
  const row: Row = {};
  if (backend === "cpu") {
    await tf.setBackend("cpu");
  } else if (backend.startsWith("wasm")) {
    const info = await initWasmBackend({
      threads: backend.startsWith("wasm-threads"),
      // XNNPACK's own pool: one thread (the default) or one per core.
      xnnpackThreads: backend === "wasm-threads-xnnpack" ? navigator.hardwareConcurrency : 1,
    });
    row.setup = `threads ${info.threads} (XNNPACK ${info.xnnpackThreads}), SIMD ${info.simd}` +
      (info.threadsFallback ? ` (threads fallback: ${info.threadsFallback})` : "");
  } else if (backend === "webgpu") {
    await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend("webgpu"))) throw new Error("webgpu backend failed to initialize");
    const adapter = await navigator.gpu?.requestAdapter();
    row.setup = `adapter ${adapter?.info?.device || adapter?.info?.description || "unknown"}`;
  }
  // MNIST-size CNN
  {
    const model = lenet([28, 28, 1], 10);
    model.compile({ optimizer: tf.train.sgd(0.01), loss: "categoricalCrossentropy" });
    const x = tf.randomNormal([128, 28, 28, 1]), y = labels(128, 10);
    row.mnistTrain = await measure(
      async () => {
        await model.trainOnBatch(x, y);
      },
      128,
      100,
    );
    if (args.profile) {
      row.mnistProfile = await profileMicroBatch(async () => {
        await model.trainOnBatch(x, y);
      });
    }
    tf.dispose([x, y]);
    model.dispose();
  }
  if (args["mnist-only"]) return row;
  const model = await loadNsfwjsModel("mobilenet_v2");
  const x = tf.randomUniform([32, 224, 224, 3]), y = labels(32, 5);
  // MobileNetV2 inference first: it bounds how slow training would be.
  const inferMax = backend === "cpu" ? 1 : 10;
  row.mobilenetInfer = await measure(
    async () => {
      const p = model.predict(x) as tf.Tensor;
      await p.data();
      p.dispose();
    },
    32,
    inferMax,
  );
  const inferRate = (row.mobilenetInfer as { imagesPerSecond: number }).imagesPerSecond;
  // A training step costs about three forward passes; skip when one step would blow the budget.
  const stepEstimateS = 3 * 32 / inferRate;
  if (stepEstimateS * 2 > 4 * budgetS) {
    row.mobilenetTrain = {
      skipped:
        `one step would take ~${stepEstimateS.toFixed(0)} s (3× the measured inference time); ` +
        `two steps (warm-up + 1) exceed this backend's budget`,
    };
  } else {
    const micro = Number(args.micro ?? 8);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = tf.train.sgd(1e-4);
    const loss = (d: { xs: tf.Tensor; ys: tf.Tensor }) =>
      tf.losses.softmaxCrossEntropy(
        d.ys,
        model.apply(d.xs, { training: true }) as tf.Tensor,
      ) as tf.Scalar;
    const step = async () => {
      const parts = splitBatch({ xs: x, ys: y }, micro);
      const { value, grads } = await accumulatedGradients(loss, vars, parts);
      optimizer.applyGradients(grads);
      await value.data();
      tf.dispose([value, grads, parts.map((p) => p.data)]);
    };
    const r = await measure(step, 32, 5);
    row.mobilenetTrain = { ...r, note: `micro-batches of ${micro}` } as Result;
    if (args.profile) {
      const parts = splitBatch({ xs: x, ys: y }, micro).slice(0, 1);
      row.profile = await profileMicroBatch(async () => {
        const { value, grads } = await accumulatedGradients(loss, vars, parts);
        tf.dispose([value, grads]);
      }, 3);
      tf.dispose(parts.map((p) => p.data));
    }
  }
  return row;
}

async function runChild(backend: string, timeoutS: number, mnistOnly = false): Promise<Row> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      backend,
      "--budget",
      String(budgetS),
    ]
      .concat(mnistOnly ? ["--mnist-only"] : [])
      .concat(
        !mnistOnly && (backend === "wasm" || backend === "wasm-threads") ? ["--profile"] : [],
      ),
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutS * 1000),
  });
  try {
    const out = await cmd.output();
    const text = new TextDecoder().decode(out.stdout);
    const line = text.split("\n").find((l) => l.startsWith('{"row"'));
    if (!line) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
      return { error: `exit ${out.code}: ${err.slice(0, 300)}` };
    }
    return (JSON.parse(line) as { row: Row }).row;
  } catch (e) {
    return { error: `stopped after ${timeoutS} s: ${e instanceof Error ? e.message : e}` };
  }
}

async function runTorch(timeoutS: number, mnistOnly = false): Promise<Row & { version?: string }> {
  try {
    const r = await runTorchScript(
      "training_torch.py",
      [String(budgetS), ...(mnistOnly ? ["mnist"] : [])],
      timeoutS,
    );
    return {
      mnistTrain: r.mnistTrain as Result,
      mobilenetTrain: r.mobilenetTrain as Result,
      mobilenetInfer: r.mobilenetInfer as Result,
      setup: `torch ${r.torch}, ${r.threads} threads`,
    };
  } catch (e) {
    return { error: `PyTorch not run: ${e instanceof Error ? e.message : e}` };
  }
}

function cell(r: Result | undefined, base: Result | undefined): string {
  if (r === undefined) return "–";
  if ("skipped" in r) return `skipped: ${r.skipped}`;
  const ratio = base && !("skipped" in base)
    ? ` (${(r.imagesPerSecond / base.imagesPerSecond).toFixed(2)}×)`
    : "";
  return `${r.imagesPerSecond.toFixed(1)}${ratio}, n=${r.iterations}${r.note ? `, ${r.note}` : ""}`;
}

if (args.child) {
  let row: Row;
  try {
    row = await child(String(args.child));
  } catch (e) {
    row = { error: e instanceof Error ? e.message : String(e) };
  }
  console.log(JSON.stringify({ row }));
  Deno.exit(0);
}

const started = new Date();
const loadBefore = Deno.loadavg().map((l) => l.toFixed(2)).join(", ");
const rows: Record<string, Row> = {};
rows["PyTorch CPU"] = await runTorch(150);
console.error("PyTorch", JSON.stringify(rows["PyTorch CPU"]));
for (const backend of ["wasm", "wasm-threads", "wasm-threads-xnnpack", "cpu", "webgpu"]) {
  rows[`tfjs ${backend}`] = await runChild(backend, 300);
  console.error(backend, JSON.stringify(rows[`tfjs ${backend}`]));
}
// PyTorch again after the tfjs rows: this VM has slow stretches that last
// minutes, so each ratio is taken against the faster of PyTorch's two runs.
rows["PyTorch CPU, again"] = await runTorch(150);
console.error("PyTorch again", JSON.stringify(rows["PyTorch CPU, again"]));
// Paired MNIST rounds: PyTorch and the two wasm rows one after another, a
// few times over, each ratio against the PyTorch run of its own round (runs
// seconds apart see the same machine; the table's runs are minutes apart).
const PAIRED = ["wasm-threads", "wasm"] as const;
const rounds: { torch?: number; tfjs: Partial<Record<(typeof PAIRED)[number], number>> }[] = [];
for (let r = 0; r < Number(args.rounds); r++) {
  const round: (typeof rounds)[number] = { tfjs: {} };
  const torch = (await runTorch(60, true)).mnistTrain;
  if (torch && "imagesPerSecond" in torch) round.torch = torch.imagesPerSecond;
  for (const backend of PAIRED) {
    const m = (await runChild(backend, 120, true)).mnistTrain;
    if (m && "imagesPerSecond" in m) round.tfjs[backend] = m.imagesPerSecond;
  }
  rounds.push(round);
  console.error("paired round", r + 1, JSON.stringify(round));
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2
    ? s[s.length >> 1]!
    : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ratio = (a?: number, b?: number) => a !== undefined && b !== undefined ? a / b : undefined;
const paired = [
  `| round | PyTorch CPU | ${PAIRED.map((b) => `tfjs ${b}`).join(" | ")} |`,
  `| --- | ---: | ${PAIRED.map(() => "---:").join(" | ")} |`,
  ...rounds.map((r, i) =>
    `| ${i + 1} | ${r.torch?.toFixed(0) ?? "–"} | ${
      PAIRED.map((b) => {
        const q = ratio(r.tfjs[b], r.torch);
        return r.tfjs[b] === undefined
          ? "–"
          : `${r.tfjs[b]!.toFixed(0)}${q ? ` (${q.toFixed(2)}×)` : ""}`;
      }).join(" | ")
    } |`
  ),
  `| median | ${median(rounds.flatMap((r) => r.torch ?? [])).toFixed(0)} | ${
    PAIRED.map((b) => {
      const qs = rounds.flatMap((r) => ratio(r.tfjs[b], r.torch) ?? []);
      return `${median(rounds.flatMap((r) => r.tfjs[b] ?? [])).toFixed(0)} (${
        median(qs).toFixed(2)
      }×)`;
    }).join(" | ")
  } |`,
].join("\n");
const base: Row = {};
for (const c of CASES) {
  const runs = [rows["PyTorch CPU"]![c], rows["PyTorch CPU, again"]![c]].filter((
    r,
  ): r is Result & { imagesPerSecond: number } => r !== undefined && "imagesPerSecond" in r);
  const fastest = runs.sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
  if (fastest !== undefined) base[c] = fastest;
}
const table = [
  `| backend | setup | ${CASES.map((c) => LABELS[c]).join(" | ")} |`,
  `| --- | --- | ${CASES.map(() => "---").join(" | ")} |`,
  ...Object.entries(rows).sort(([a], [b]) =>
    Number(!a.startsWith("PyTorch")) - Number(!b.startsWith("PyTorch"))
  ).map(([name, r]) =>
    r.error
      ? `| ${name} | error: ${r.error.replaceAll("|", "/")} | ${CASES.map(() => "–").join(" | ")} |`
      : `| ${name} | ${r.setup ?? ""} | ${CASES.map((c) => cell(r[c], base[c])).join(" | ")} |`
  ),
].join("\n");
const profile = rows["tfjs wasm"]?.profile ?? "not recorded";
const mnistProfile = rows["tfjs wasm"]?.mnistProfile ?? "not recorded";
const threadsProfile = rows["tfjs wasm-threads"]?.profile ?? "not recorded";
const threadsMnistProfile = rows["tfjs wasm-threads"]?.mnistProfile ?? "not recorded";
const loadAfter = Deno.loadavg().map((l) => l.toFixed(2)).join(", ");
const md = `# Training speed without a GPU

Images/s, median of timed steps after one warm-up step (n = steps timed; a
${budgetS} s budget per case), and in parentheses the ratio to PyTorch on the
same CPU. PyTorch runs before and after the tfjs rows; each ratio is against
the faster of its two runs. MobileNetV2 is the nsfwjs checkpoint (5 classes) for tfjs and the
same architecture defined in \`bench/training_torch.py\` for PyTorch; inputs are
random. Fine-tuning updates every layer with SGD; on tfjs it accumulates
gradients over micro-batches of 8 (\`sdk/train/accumulate.ts\`).

- date: ${started.toISOString()}
- command: \`deno run -A bench/training.ts --budget ${budgetS}\`
- Deno ${Deno.version.deno}, tfjs ${tf.version.tfjs}; PyTorch with OMP_NUM_THREADS=${navigator.hardwareConcurrency}, OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset
- load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}
- machine:

\`\`\`
${await lscpu()}
\`\`\`

${table}

Rows: \`wasm\` runs on one thread; \`wasm-threads\` runs the compiled SIMD kernels on one
thread per core with XNNPACK's pool at one thread (the default of \`threads\`);
\`wasm-threads-xnnpack\` gives XNNPACK's pool one thread per core too
(\`xnnpackThreads\`, \`ZOO_XNNPACK_THREADS\`).

## MNIST training, paired rounds

The MNIST case again, ${rounds.length} rounds of PyTorch then each tfjs row (fresh
processes, ${budgetS} s budget, 100 steps each), images/s and in parentheses the
ratio to the PyTorch run of the same round; the last line is the median of
each column (ratios: the median of the rounds' ratios).

${paired}

## Where the time goes (wasm, one thread)

One MNIST CNN step (batch 128, forward + backward + SGD update), per kernel, median of 5 profiled steps:

${mnistProfile}

One MobileNetV2 micro-batch of 8, forward + backward, median of 3:

${profile}

## Where the time goes (wasm-threads)

One MNIST CNN step, per kernel, median of 5 profiled steps:

${threadsMnistProfile}

One MobileNetV2 micro-batch of 8, forward + backward, median of 3:

${threadsProfile}
`;
await writeReport(String(args.out), md);
console.log(md);
