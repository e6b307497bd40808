/**
 * The whole `features` run against PyTorch doing the same: LeNet-5's codes
 * at `pool1` (flattened, 1,176 values) of 1,000 Fashion-MNIST training and
 * 1,000 validation images, then a linear classifier for the same number of
 * epochs. tfjs: `featureStrategy` (codes computed, not read from the cache;
 * the linear SVM with its L2 weight chosen on the validation codes, each fit
 * capped at `--epochs` passes) on the device `--device auto` picks. PyTorch
 * (`bench/features_run_torch.py`, the same images): the codes once, then
 * `nn.Linear` by Adam in batches of 32 for `--epochs` epochs; and, as a
 * training loop with frozen layers does, the trunk run again every epoch.
 * Paired rounds, PyTorch then tfjs seconds apart, after one tfjs warm-up.
 *
 *   deno task bench:features-run [--rounds 3] [--epochs 10] [--out bench/results/features_run.md]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "@std/cli";
import { loadBuiltin } from "../sdk/data/builtin.ts";
import type { Dataset, Preprocessing } from "../sdk/data/types.ts";
import { selectDevice } from "../sdk/devices/select.ts";
import { featureStrategy } from "../sdk/features/mod.ts";
import { runTorchScript } from "./_torch.ts";
import { lscpu, writeReport } from "./_report.ts";
import { loadCheckpointModel } from "../zoo/_checkpoint.ts";

const args = parseArgs(Deno.args, {
  string: ["rounds", "epochs", "out"],
  default: { rounds: "3", epochs: "10", out: "bench/results/features_run.md" },
});
const rounds = Number(args.rounds);
const epochs = Number(args.epochs);
const started = performance.now();
const preprocess: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };

const device = await selectDevice("auto", { training: false });
const dir = new URL("../zoo/lenet5/checkpoint/", import.meta.url);
const model = await loadCheckpointModel(dir);
const train = await loadBuiltin("fashion-mnist", { perClass: 100 });
const validation = await loadBuiltin("fashion-mnist", { perClass: 100, split: "validation" });

/** The images and labels of `sets`, in order, as PyTorch reads them. */
async function dump(sets: Dataset[]): Promise<{ images: string; labels: string }> {
  const pixels: Float32Array[] = [];
  const labels: number[] = [];
  for (const set of sets) {
    for await (const { xs, ys } of set.batches(256, { preprocess })) {
      pixels.push((await xs.data()) as Float32Array);
      labels.push(...(await ys.data()));
      tf.dispose([xs, ys]);
    }
  }
  const images = await Deno.makeTempFile({ suffix: ".f32" });
  const labelFile = await Deno.makeTempFile({ suffix: ".i32" });
  const all = new Float32Array(pixels.reduce((n, p) => n + p.length, 0));
  pixels.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  await Deno.writeFile(images, new Uint8Array(all.buffer));
  await Deno.writeFile(labelFile, new Uint8Array(Int32Array.from(labels).buffer));
  return { images, labels: labelFile };
}

async function tfjsRun(): Promise<
  { seconds: number; valAccuracy: number; codes: string; coded: number; epochs: number }
> {
  const t = performance.now();
  let coded = 0;
  const outcome = await featureStrategy({
    model,
    train,
    validation,
    preprocess,
    numClasses: 10,
    cut: "pool1",
    codes: "flatten",
    classifier: "svm",
    epochs,
    batchSize: 32,
    lr: 0.01,
    seed: 0,
    noCache: true,
    onCodes: (info) => {
      coded += info.count;
    },
  });
  const seconds = (performance.now() - t) / 1000;
  outcome.model.dispose();
  return {
    seconds,
    valAccuracy: outcome.history.at(-1)!.valAccuracy!,
    codes: outcome.codes,
    coded,
    epochs: outcome.history.length,
  };
}

const files = await dump([train, validation]);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
try {
  const warm = await tfjsRun();
  console.error(`tfjs warm-up: ${warm.seconds.toFixed(2)} s, codes ${warm.codes}`);
  const rows: string[] = [];
  const ratios: number[] = [];
  const ratiosEvery: number[] = [];
  let torchInfo = "";
  for (let r = 1; r <= rounds; r++) {
    const torch = await runTorchScript("features_run_torch.py", [
      files.images,
      files.labels,
      String(train.size),
      String(epochs),
    ], 900) as Record<string, unknown> & {
      images: number;
      codeLength: number;
      epochs: number;
      "codes once": { seconds: number; valAccuracy: number };
      "trunk every epoch": { seconds: number; valAccuracy: number };
    };
    const ours = await tfjsRun();
    // Both sides must have done the same work: the same images, code length and epochs.
    if (
      torch.images !== train.size + validation.size || torch.codeLength !== 1176 ||
      torch.epochs !== epochs || !ours.codes.endsWith("-> 1176") ||
      ours.coded !== torch.images || ours.epochs > epochs
    ) {
      throw new Error(`The two sides did different work: ${JSON.stringify(torch)}, ${ours.codes}`);
    }
    console.error(
      `round ${r}: PyTorch coded ${torch.images} images to ${torch.codeLength} values, ` +
        `${torch.epochs} epochs; tfjs coded ${ours.coded} to ${ours.codes}, ` +
        `${ours.epochs} epochs kept (each L2 trial at most ${epochs} passes)`,
    );
    torchInfo = `torch ${torch.torch}, ${torch.threads} threads`;
    const once = torch["codes once"];
    const every = torch["trunk every epoch"];
    ratios.push(once.seconds / ours.seconds);
    ratiosEvery.push(every.seconds / ours.seconds);
    rows.push(
      `| ${r} | ${once.seconds.toFixed(3)} (${(once.valAccuracy * 100).toFixed(1)}%) | ${
        every.seconds.toFixed(3)
      } | ${ours.seconds.toFixed(3)} (${(ours.valAccuracy * 100).toFixed(1)}%) | ${
        (once.seconds / ours.seconds).toFixed(2)
      }× | ${(every.seconds / ours.seconds).toFixed(2)}× |`,
    );
    console.error(rows.at(-1));
  }
  const report = `# The whole features run against PyTorch

LeNet-5 (\`zoo/lenet5\`) codes at \`pool1\`, flattened to 1,176 values, of
${train.size} Fashion-MNIST training and ${validation.size} validation images, then a
linear classifier for ${epochs} epochs. Seconds per run (validation accuracy);
the ratio is PyTorch's time over tfjs's (above 1: tfjs is faster). tfjs:
\`featureStrategy\` on ${device.backend}, codes computed (no cache), the linear
SVM with its L2 weight chosen on the validation codes, each fit at most ${epochs}
passes. PyTorch (${torchInfo}): the codes once, then \`nn.Linear\` by Adam in
batches of 32 ("codes once"), or the frozen trunk again every epoch ("trunk
every epoch"). Paired rounds, PyTorch then tfjs; other work shared the machine.

- date: ${new Date().toISOString()}, took ${((performance.now() - started) / 1000).toFixed(0)} s
- command: \`deno run -A bench/features_run.ts --rounds ${rounds} --epochs ${epochs}\`
- device: ${device.reason}
- machine:

\`\`\`
${await lscpu()}
\`\`\`

| round | PyTorch, codes once | PyTorch, trunk every epoch | tfjs features run | ratio, codes once | ratio, trunk every epoch |
| --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

Medians: ${median(ratios).toFixed(2)}× PyTorch with codes once, ${
    median(ratiosEvery).toFixed(2)
  }× with the trunk every epoch (target 5×).
`;
  await writeReport(String(args.out), report);
  console.log(report);
} finally {
  await Deno.remove(files.images);
  await Deno.remove(files.labels);
}
Deno.exit(0);
