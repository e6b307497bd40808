/**
 * The linear classifiers on cached codes: `trainLinear` on LeNet-5's codes
 * at `fc2` (84 values) of Fashion-MNIST's whole training split (49,000
 * images, 7,000 for validation), for 100 epochs, next to PyTorch doing 100
 * full-batch epochs of `nn.Linear` (forward, backward, one Adam step each)
 * on the same standardized codes (`bench/features_linear_torch.py`).
 *
 * tfjs side, each timed alone: the SVM and softmax at a fixed L2 weight
 * (`C` = 0.1, one fit of at most 100 passes), then each with its L2 weight
 * chosen on the validation codes (the trials and the fit kept). Both sides
 * print the codes, code length and passes they ran. Paired rounds, PyTorch
 * then tfjs, seconds apart; medians.
 *
 *   deno run -A bench/features_linear.ts [--rounds 3] [--epochs 100] [--out bench/results/features_linear.md]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "@std/cli";
import { loadBuiltin } from "../sdk/data/builtin.ts";
import { initWasmBackend } from "../sdk/devices/wasm/backend.ts";
import { codeExtractor, computeCodes, type LinearFit, trainLinear } from "../sdk/features/mod.ts";
import { runTorchScript } from "./_torch.ts";
import { lscpu, writeReport } from "./_report.ts";
import { loadCheckpointModel } from "../zoo/_checkpoint.ts";

const args = parseArgs(Deno.args, {
  string: ["rounds", "epochs", "out"],
  default: { rounds: "3", epochs: "100", out: "bench/results/features_linear.md" },
});
const rounds = Number(args.rounds);
const epochs = Number(args.epochs);
const started = performance.now();

await initWasmBackend();
const dir = new URL("../zoo/lenet5/checkpoint/", import.meta.url);
const model = await loadCheckpointModel(dir);
const extractor = codeExtractor(model, "fc2");
const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
const t0 = performance.now();
const train = await computeCodes(
  extractor.model,
  await loadBuiltin("fashion-mnist", {}),
  preprocess,
  { batchSize: 256 },
);
const validation = await computeCodes(
  extractor.model,
  await loadBuiltin("fashion-mnist", { split: "validation" }),
  preprocess,
  { batchSize: 256 },
);
const codeSeconds = (performance.now() - t0) / 1000;
console.error(
  `codes: ${train.count} + ${validation.count} of ${train.dim} in ${codeSeconds.toFixed(1)} s`,
);

// PyTorch reads the codes standardized as trainLinear standardizes them.
const z = new Float32Array(train.codes.length);
const d = train.dim;
for (let j = 0; j < d; j++) {
  let s = 0, q = 0;
  for (let i = 0; i < train.count; i++) s += train.codes[i * d + j]!;
  const mean = s / train.count;
  for (let i = 0; i < train.count; i++) q += (train.codes[i * d + j]! - mean) ** 2;
  const std = Math.sqrt(q / train.count) > 1e-6 ? Math.sqrt(q / train.count) : 1;
  for (let i = 0; i < train.count; i++) z[i * d + j] = (train.codes[i * d + j]! - mean) / std;
}
const codeFile = await Deno.makeTempFile({ suffix: ".f32" });
const labelFile = await Deno.makeTempFile({ suffix: ".i32" });
await Deno.writeFile(codeFile, new Uint8Array(z.buffer));
await Deno.writeFile(labelFile, new Uint8Array(Int32Array.from(train.labels).buffer));

type Case = { name: string; classifier: "svm" | "softmax"; l2?: number };
const FIXED_C = 0.1;
const cases: Case[] = [
  { name: `SVM, C ${FIXED_C}`, classifier: "svm", l2: 1 / (2 * FIXED_C * train.count) },
  { name: `softmax, C ${FIXED_C}`, classifier: "softmax", l2: 1 / (2 * FIXED_C * train.count) },
  { name: "SVM, C chosen", classifier: "svm" },
  { name: "softmax, C chosen", classifier: "softmax" },
];

async function ours(c: Case): Promise<{ seconds: number; fit: LinearFit }> {
  const t = performance.now();
  const fit = await trainLinear(train, validation, {
    classifier: c.classifier,
    numClasses: 10,
    epochs,
    seed: 0,
    ...(c.l2 !== undefined ? { l2: c.l2 } : {}),
  });
  return { seconds: (performance.now() - t) / 1000, fit };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
try {
  await ours(cases[0]!); // warm-up: compiles the kernels
  const times: Record<string, number[]> = { torch: [] };
  const notes: Record<string, string> = {};
  let torchInfo = "";
  const rows: string[] = [];
  for (let r = 1; r <= rounds; r++) {
    const torch = await runTorchScript("features_linear_torch.py", [
      codeFile,
      labelFile,
      String(train.count),
      String(d),
      String(epochs),
    ], 600) as {
      torch: string;
      threads: number;
      codes: number;
      codeLength: number;
      passes: number;
      seconds: number;
      trainAccuracy: number;
    };
    if (torch.codes !== train.count || torch.codeLength !== d || torch.passes !== epochs) {
      throw new Error(`PyTorch did different work: ${JSON.stringify(torch)}`);
    }
    torchInfo = `torch ${torch.torch}, ${torch.threads} threads`;
    times.torch!.push(torch.seconds);
    const cells = [`${torch.seconds.toFixed(3)}`];
    for (const c of cases) {
      const { seconds, fit } = await ours(c);
      (times[c.name] ??= []).push(seconds);
      const passes = fit.history.length + fit.trials.reduce((a, t) => a + t.epochs, 0) -
        (fit.trials.length > 0 ? fit.trials.find((t) => t.l2 === fit.model.l2)!.epochs : 0);
      notes[c.name] = `${fit.history.length} epochs kept, ${passes} passes in all${
        fit.trials.length ? `, ${fit.trials.length} values of C tried` : ""
      }, val ${(fit.history.at(-1)!.valAccuracy! * 100).toFixed(1)}%`;
      cells.push(`${seconds.toFixed(3)}`);
    }
    rows.push(`| ${r} | ${cells.join(" | ")} |`);
    console.error(rows.at(-1));
  }
  const report = `# Linear classifiers on cached codes

LeNet-5 (\`zoo/lenet5\`) codes at \`fc2\` (${d} values) of Fashion-MNIST's
training split (${train.count} codes; ${validation.count} validation codes),
computed once (${codeSeconds.toFixed(1)} s on wasm), then a linear classifier
for at most ${epochs} epochs. Seconds per fit. PyTorch (${torchInfo}):
\`nn.Linear(${d}, 10)\`, cross-entropy, ${epochs} full-batch epochs (forward,
backward and one Adam step each) on the same standardized codes. tfjs side:
\`trainLinear\` (the compiled wasm SIMD kernels: the SVM on one thread, the
softmax's float32 evaluations split in two halves, the second on a Worker
when both threads run at once): the SVM and the
softmax at a fixed \`C\` (one fit, at most ${epochs} passes), then with \`C\`
chosen on the validation codes (trials of at most 20 passes from the
strongest penalty down, then the fit kept, to ${epochs} epochs). Paired
rounds, PyTorch then tfjs, after one tfjs warm-up; other work shared the
machine's 2 cores.

- date: ${new Date().toISOString()}, took ${((performance.now() - started) / 1000).toFixed(0)} s
- command: \`deno run -A bench/features_linear.ts --rounds ${rounds} --epochs ${epochs}\`
- load average at the end: ${
    (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(", ")
  }
- machine:

\`\`\`
${await lscpu()}
\`\`\`

| round | PyTorch, ${epochs} epochs | ${cases.map((c) => c.name).join(" | ")} |
| --- | --- | ${cases.map(() => "---").join(" | ")} |
${rows.join("\n")}
| median | ${median(times.torch!).toFixed(3)} | ${
    cases.map((c) => median(times[c.name]!).toFixed(3)).join(" | ")
  } |

${cases.map((c) => `- ${c.name}: ${notes[c.name]}`).join("\n")}
`;
  await writeReport(String(args.out), report);
  console.log(report);
} finally {
  await Deno.remove(codeFile);
  await Deno.remove(labelFile);
  tf.dispose([
    ...extractor.model.weights.map((w) => w.read()),
    ...model.weights.map((w) => w.read()),
  ]);
}
Deno.exit(0);
