/**
 * Training and inference speed against PyTorch on the same CPU, in paired
 * rounds: in each round every case runs in PyTorch and then in tfjs, seconds
 * apart, each in a fresh process (a wasm build is chosen once per process),
 * so both sides see the same machine; the report gives every round and the
 * medians. Each run is images/s, the median of timed steps after one warm-up
 * step, within a time budget.
 *
 * Both sides do the same work, and check it: each prints the number of
 * trainable tensors and parameters of its model, which must equal
 * {@linkcode EXPECTED} (the run stops otherwise).
 *
 * Cases:
 * - LeNet-size CNN training (28×28×1, batch 128);
 * - Keras' MNIST example convnet (conv 32 3×3, conv 64 3×3, max pool,
 *   dropout, dense 128, dropout, dense 10; batch 128);
 * - MobileNetV2 (the nsfwjs checkpoint) fine-tuned with every layer trainable
 *   (224×224, batch 32; on tfjs as the micro-batches the SDK's planner picks,
 *   with gradient accumulation, which the 4 GiB wasm heap needs; `--micro N`
 *   to set them);
 * - MobileNetV2 inference (batch 32).
 *
 * tfjs trains as the SDK does: its training forward (`trainableForward`,
 * what `fineTuneNetwork` runs), the cross-entropy of the model's softmax
 * output, plain SGD; `--forward layers` runs tfjs's own instead
 * (`trainOnBatch` for the MNIST nets, `model.apply` in training mode for
 * MobileNetV2).
 *
 *   deno run -A bench/training.ts [--rounds 3] [--budget 15] [--backends wasm-threads] [--profile]
 *     [--cases lenetTrain,kerasMnistTrain,mobilenetTrain,mobilenetInfer,mobilenetInferFolded]
 *     [--forward sdk|layers] [--out bench/results/training.md]
 *
 * A hand-written part after the `<!-- findings -->` line of the output file
 * is kept.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "@std/cli";
import { initWasmBackend } from "../sdk/devices/wasm/backend.ts";
import { accumulatedGradients, splitBatch } from "../sdk/train/accumulate.ts";
import { splitForward, trainableForward } from "../sdk/train/_loop.ts";
import { planMicroBatch, stepCost } from "../sdk/train/plan.ts";
import { foldForInference } from "../sdk/surgery/fold.ts";
import { loadNsfwjsModel } from "../zoo/nsfwjs/source.ts";
import { runTorchScript } from "./_torch.ts";
import { lscpu, median, writeReport } from "./_report.ts";

type CaseName =
  | "lenetTrain"
  | "kerasMnistTrain"
  | "mobilenetTrain"
  | "mobilenetInfer"
  | "mobilenetInferFolded";
type Result = {
  imagesPerSecond: number;
  iterations: number;
  tensors: number;
  params: number;
  /** The micro-batch tfjs accumulated gradients over, where it did. */
  microBatch?: number;
};

const ALL_CASES: CaseName[] = [
  "lenetTrain",
  "kerasMnistTrain",
  "mobilenetTrain",
  "mobilenetInfer",
  "mobilenetInferFolded",
];
const LABELS: Record<CaseName, string> = {
  lenetTrain: "LeNet-size CNN training (28×28×1, batch 128)",
  kerasMnistTrain: "Keras' MNIST convnet training (conv 32/64, dense 128; batch 128)",
  mobilenetTrain: "MobileNetV2 fine-tune, every layer (224, batch 32)",
  mobilenetInfer: "MobileNetV2 inference (224, batch 32)",
  mobilenetInferFolded:
    "MobileNetV2 inference, BatchNormalization folded into the convolutions on both sides (224, batch 32)",
};

/** Trainable tensors and parameters of each case's model (the same in training_torch.py's EXPECTED). */
const EXPECTED: Record<CaseName, [number, number]> = {
  lenetTrain: [8, 37_106],
  kerasMnistTrain: [8, 1_199_882],
  mobilenetTrain: [162, 2_585_349],
  mobilenetInfer: [162, 2_585_349],
  mobilenetInferFolded: [162, 2_585_349],
};

const args = parseArgs(Deno.args, {
  string: ["budget", "out", "child", "case", "micro", "rounds", "backends", "cases", "forward"],
  boolean: ["profile"],
  default: {
    budget: "15",
    out: "bench/results/training.md",
    rounds: "3",
    backends: "wasm-threads",
    cases: "lenetTrain,kerasMnistTrain,mobilenetTrain,mobilenetInfer,mobilenetInferFolded",
    forward: "sdk",
  },
});
const budgetS = Number(args.budget);
const CASES = String(args.cases).split(",") as CaseName[];
for (const c of CASES) {
  if (!ALL_CASES.includes(c)) {
    throw new Error(`Unknown case "${c}": use some of ${ALL_CASES.join(", ")}`);
  }
}

type T = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: T) => layer.apply(x) as T;

/** The LeNet-size CNN, the same net as `lenet` in _torch_models.py. */
function lenet(): tf.LayersModel {
  const inp = tf.input({ shape: [28, 28, 1] });
  let x = apply(
    tf.layers.conv2d({ filters: 6, kernelSize: 5, padding: "same", activation: "relu" }),
    inp,
  );
  x = apply(tf.layers.maxPooling2d({ poolSize: 2 }), x);
  x = apply(tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: "relu" }), x);
  x = apply(tf.layers.averagePooling2d({ poolSize: 2 }), x);
  x = apply(tf.layers.flatten(), x);
  x = apply(tf.layers.dense({ units: 84, activation: "relu" }), x);
  const out = apply(tf.layers.dense({ units: 10, activation: "softmax" }), x);
  return tf.model({ inputs: inp, outputs: out });
}

/** Keras' MNIST example convnet, the same net as `keras_mnist` in _torch_models.py. */
function kerasMnist(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: "relu" }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.dropout({ rate: 0.25 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: "relu" }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
}

/** Trainable tensors and parameters, checked against {@linkcode EXPECTED}. */
function checkTrainable(name: CaseName, vars: tf.LayerVariable[]): [number, number] {
  const counts: [number, number] = [
    vars.length,
    vars.reduce((n, v) => n + tf.util.sizeFromShape(v.shape as number[]), 0),
  ];
  if (counts[0] !== EXPECTED[name][0] || counts[1] !== EXPECTED[name][1]) {
    throw new Error(
      `${name}: tfjs trains ${counts[0]} tensors of ${counts[1]} parameters, not ${
        EXPECTED[name].join(" of ")
      }`,
    );
  }
  return counts;
}

async function measure(
  step: () => Promise<void>,
  batch: number,
  maxIters: number,
): Promise<{ imagesPerSecond: number; iterations: number }> {
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
  return { imagesPerSecond: batch / (median(times) / 1000), iterations: times.length };
}

/**
 * The SDK's training loss (`crossEntropy` of `sdk/train/_loop.ts`): the mean
 * categorical cross-entropy of the model's class probabilities, here against
 * one-hot labels. (PyTorch's side takes `CrossEntropyLoss` of the logits.)
 */
function sdkLoss(probs: tf.Tensor, oneHot: tf.Tensor): tf.Scalar {
  return tf.mean(tf.metrics.categoricalCrossentropy(oneHot, probs)) as tf.Scalar;
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

/** What a child process reports. */
type ChildRow = { result?: Result; setup?: string; profile?: string; error?: string };

/** Runs one case on one backend, in this process. */
async function child(backend: string, name: CaseName): Promise<ChildRow> {
  const row: ChildRow = {};
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
  } else {
    throw new Error(
      `Unknown backend "${backend}": use cpu, wasm, wasm-threads or wasm-threads-xnnpack`,
    );
  }
  if (name === "lenetTrain" || name === "kerasMnistTrain") {
    const model = name === "lenetTrain" ? lenet() : kerasMnist();
    const counts = checkTrainable(name, model.trainableWeights);
    const x = tf.randomNormal([128, 28, 28, 1]), y = labels(128, 10);
    let step: () => Promise<void>;
    if (args.forward === "layers") {
      // tfjs's own training step.
      model.compile({ optimizer: tf.train.sgd(0.01), loss: "categoricalCrossentropy" });
      step = async () => {
        await model.trainOnBatch(x, y);
      };
    } else {
      // The SDK's: its training forward (`fineTuneNetwork`'s), its loss, one SGD step.
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const optimizer = tf.train.sgd(0.01);
      const split = splitForward(model, null);
      step = async () => {
        const { value, grads } = tf.variableGrads(
          () => sdkLoss(trainableForward(split, x), y),
          vars,
        );
        optimizer.applyGradients(grads);
        await value.data();
        tf.dispose([value, Object.values(grads)]);
      };
    }
    const r = await measure(step, 128, 100);
    row.result = { ...r, tensors: counts[0], params: counts[1] };
    if (args.profile) row.profile = await profileMicroBatch(step);
    tf.dispose([x, y]);
    model.dispose();
    return row;
  }
  const model = await loadNsfwjsModel("mobilenet_v2");
  // The checkpoint ships blocks 0–10 frozen; a whole-network fine-tune trains them too.
  for (const layer of model.layers) layer.trainable = true;
  const counts = checkTrainable(name, model.trainableWeights);
  const x = tf.randomUniform([32, 224, 224, 3]), y = labels(32, 5);
  if (name === "mobilenetInfer" || name === "mobilenetInferFolded") {
    // The SDK's inference pass with every BatchNormalization folded into the
    // convolution before it (PyTorch folds its own the same way), or tfjs's
    // model.predict as it comes.
    const folded = name === "mobilenetInferFolded" ? foldForInference(model) : null;
    if (folded !== null) {
      const bns = model.layers.filter((l) => l.getClassName() === "BatchNormalization").length;
      if (folded.folded.length !== bns) {
        throw new Error(`folded ${folded.folded.length} of ${bns} BatchNormalization layers`);
      }
    }
    const r = await measure(
      async () => {
        const p = folded === null ? model.predict(x) as tf.Tensor : folded.predict(x);
        await p.data();
        p.dispose();
      },
      32,
      10,
    );
    row.result = { ...r, tensors: counts[0], params: counts[1] };
    folded?.dispose();
    return row;
  }
  // The micro-batch fineTuneNetwork would pick for this step (or --micro).
  const planned = planMicroBatch(stepCost(model, model.layers.map((l) => l.name), counts[1]), 32);
  const micro = args.micro === undefined ? planned.microBatch : Number(args.micro);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.sgd(1e-4);
  // The SDK's training forward pass (what `fineTuneNetwork` runs), or with
  // `--forward layers` tfjs's own `model.apply` in training mode; either way
  // the model's softmax output and the SDK's cross-entropy of it.
  const split = splitForward(model, null);
  const forward = args.forward === "layers"
    ? (xs: tf.Tensor) => model.apply(xs, { training: true }) as tf.Tensor
    : (xs: tf.Tensor) => trainableForward(split, xs);
  const loss = (d: { xs: tf.Tensor; ys: tf.Tensor }) => sdkLoss(forward(d.xs), d.ys);
  const step = async () => {
    const parts = splitBatch({ xs: x, ys: y }, micro);
    const { value, grads } = await accumulatedGradients(loss, vars, parts);
    optimizer.applyGradients(grads);
    await value.data();
    tf.dispose([value, grads, parts.map((p) => p.data)]);
  };
  const r = await measure(step, 32, 5);
  row.result = { ...r, tensors: counts[0], params: counts[1], microBatch: micro };
  if (args.profile) {
    const parts = splitBatch({ xs: x, ys: y }, micro).slice(0, 1);
    row.profile = await profileMicroBatch(async () => {
      const { value, grads } = await accumulatedGradients(loss, vars, parts);
      tf.dispose([value, grads]);
    }, 3);
    tf.dispose(parts.map((p) => p.data));
  }
  return row;
}

async function runChild(
  backend: string,
  name: CaseName,
  timeoutS: number,
  profile = false,
): Promise<ChildRow> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      backend,
      "--case",
      name,
      "--budget",
      String(budgetS),
      "--forward",
      String(args.forward),
      ...(profile ? ["--profile"] : []),
    ],
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
    return (JSON.parse(line) as { row: ChildRow }).row;
  } catch (e) {
    return { error: `stopped after ${timeoutS} s: ${e instanceof Error ? e.message : e}` };
  }
}

async function runTorch(name: CaseName, timeoutS: number): Promise<ChildRow> {
  try {
    const r = await runTorchScript("training_torch.py", [String(budgetS), name], timeoutS);
    const result = r[name] as { imagesPerSecond: number; iterations: number };
    return {
      result: { ...result, tensors: Number(r.tensors), params: Number(r.params) },
      setup: `torch ${r.torch}, ${r.threads} threads`,
    };
  } catch (e) {
    return { error: `PyTorch: ${e instanceof Error ? e.message : e}` };
  }
}

if (args.child) {
  let row: ChildRow;
  try {
    row = await child(String(args.child), String(args.case) as CaseName);
  } catch (e) {
    row = { error: e instanceof Error ? e.message : String(e) };
  }
  console.log(JSON.stringify({ row }));
  Deno.exit(0);
}

const backends = String(args.backends).split(",");
const started = new Date();
const commit = new TextDecoder().decode(
  (await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], stdout: "piped" })
    .output()).stdout,
).trim();
const loads: string[] = [Deno.loadavg().map((l) => l.toFixed(2)).join(", ")];
/** rounds[r][case][side]: one round's runs, PyTorch first. */
const rounds: Record<string, Record<string, ChildRow>>[] = [];
const timeout = (name: CaseName) => (name === "mobilenetTrain" ? 900 : 300);
for (let r = 0; r < Number(args.rounds); r++) {
  const round: Record<string, Record<string, ChildRow>> = {};
  for (const name of CASES) {
    const runs: Record<string, ChildRow> = { torch: await runTorch(name, timeout(name)) };
    for (const b of backends) runs[b] = await runChild(b, name, timeout(name));
    round[name] = runs;
    console.error(`round ${r + 1} ${name}`, JSON.stringify(runs));
    // Both sides must have trained the same number of tensors and parameters.
    const counts = Object.values(runs).flatMap((x) =>
      x.result ? [`${x.result.tensors}/${x.result.params}`] : []
    );
    if (new Set(counts).size > 1) {
      throw new Error(`${name}: the sides differ: ${counts.join(", ")}`);
    }
  }
  rounds.push(round);
  loads.push(Deno.loadavg().map((l) => l.toFixed(2)).join(", "));
}
const profiles: Record<string, string> = {};
if (args.profile) {
  for (const name of ["lenetTrain", "mobilenetTrain"] as const) {
    const row = await runChild(backends[0]!, name, timeout(name), true);
    profiles[name] = row.profile ?? `not recorded: ${row.error}`;
  }
}

const rate = (x?: ChildRow) => x?.result?.imagesPerSecond;
const fmt = (v?: number) => (v === undefined ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const sections = CASES.map((name) => {
  const header = `| round | PyTorch | ${backends.map((b) => `tfjs ${b}`).join(" | ")} |`;
  const lines = rounds.map((round, i) => {
    const runs = round[name]!, torch = rate(runs.torch);
    return `| ${i + 1} | ${runs.torch?.error ? `error: ${runs.torch.error}` : fmt(torch)} | ${
      backends.map((b) => {
        const v = rate(runs[b]);
        if (v === undefined) return `error: ${(runs[b]?.error ?? "").replaceAll("|", "/")}`;
        return `${fmt(v)}${torch ? ` (${(v / torch).toFixed(2)}×)` : ""}`;
      }).join(" | ")
    } |`;
  });
  const med = `| median | ${fmt(median(rounds.flatMap((r) => rate(r[name]!.torch) ?? [])))} | ${
    backends.map((b) => {
      const ratios = rounds.flatMap((r) => {
        const v = rate(r[name]![b]), t = rate(r[name]!.torch);
        return v !== undefined && t !== undefined ? [v / t] : [];
      });
      return `${fmt(median(rounds.flatMap((r) => rate(r[name]![b]) ?? [])))} (${
        median(ratios).toFixed(2)
      }×)`;
    }).join(" | ")
  } |`;
  const any = rounds.map((r) => r[name]!).flatMap((runs) => Object.values(runs)).find((x) =>
    x.result
  )?.result;
  const micro = rounds.flatMap((r) => Object.values(r[name]!)).find((x) =>
    x.result?.microBatch !== undefined
  )?.result?.microBatch;
  return `### ${LABELS[name]}

Trainable tensors and parameters, printed and checked by both sides: ${
    any ? `${any.tensors} tensors, ${any.params.toLocaleString("en-US")} parameters` : "–"
  }.${micro === undefined ? "" : ` tfjs accumulates gradients over micro-batches of ${micro}.`}

${header}
| --- | ---: | ${backends.map(() => "---:").join(" | ")} |
${lines.join("\n")}
${med}`;
});
const setups = [
  ...new Set(
    rounds.flatMap((r) =>
      Object.entries(r[CASES[0]!]!).map(([side, x]) => `  - ${side}: ${x.setup ?? x.error ?? ""}`)
    ),
  ),
];
const md = `# Training speed without a GPU

Images/s in paired rounds: in each round every case runs in PyTorch and then in
tfjs, seconds apart, each in a fresh process, so both see the same machine; in
parentheses the ratio to the PyTorch run of the same round. The last line of
each table is the median of each column (ratios: the median of the rounds'
ratios). A run is the median of its timed steps after one warm-up step, within
a ${budgetS} s budget (at least one timed step). Inputs are random.

MobileNetV2 is the nsfwjs checkpoint (5 classes) on tfjs and the same
architecture and head defined in \`bench/training_torch.py\` for PyTorch. The
fine-tune trains every layer with SGD (the checkpoint's frozen blocks 0–10
included); on tfjs it accumulates gradients over the micro-batches the SDK's
planner picks for the 4 GiB heap (\`sdk/train/plan.ts\`, said in the setups below;
\`sdk/train/accumulate.ts\`), PyTorch takes the batch of 32 at once. tfjs trains
${
  args.forward === "layers"
    ? "with tfjs's own training path (`trainOnBatch` for the MNIST nets, `model.apply` for MobileNetV2)"
    : "as the SDK does (its training forward, `trainableForward`, and its cross-entropy of the softmax output)"
}; PyTorch takes \`CrossEntropyLoss\` of the logits.

- date: ${started.toISOString()}, commit ${commit}
- command: \`deno run -A bench/training.ts --rounds ${args.rounds} --budget ${budgetS} --backends ${args.backends} --cases ${args.cases}${
  args.forward === "layers" ? " --forward layers" : ""
}\`
- Deno ${Deno.version.deno}, tfjs ${tf.version.tfjs}; PyTorch with OMP_NUM_THREADS=${navigator.hardwareConcurrency}
- setups:
${setups.join("\n")}
- load average (1, 5, 15 min) before the run and after each round: ${loads.join("; ")}
- machine:

\`\`\`
${await lscpu()}
\`\`\`

${sections.join("\n\n")}
${
  Object.keys(profiles).length === 0 ? "" : `
## Where the time goes (${backends[0]})

One LeNet-size step (batch 128), per kernel, median of 5 profiled steps:

${profiles.lenetTrain}

One MobileNetV2 micro-batch (its size in the setups above), forward + backward, every layer trainable, median of 3:

${profiles.mobilenetTrain}
`
}`;
await writeReport(String(args.out), md);
console.log(md);
