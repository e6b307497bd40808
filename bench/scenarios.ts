/**
 * The experiment that calibrates the advisor (`sdk/advisor/`): MNIST-trained
 * checkpoints transferred to held-out MNIST digits (similar) and to
 * Fashion-MNIST (very different), with few and with many examples per class,
 * by every strategy: a linear SVM or softmax on top-layer codes, a linear SVM
 * on codes of the earlier cut point the advisor picks, partial and full
 * fine-tuning (`fineTuneNetwork`), and the same architecture trained from a
 * random initialization. Prints a Markdown table (mean ± std of test accuracy
 * over seeds, the advisor's pick marked) and writes the raw results as JSON.
 *
 * The checkpoints are `zoo/<name>/checkpoint/model.json` when committed, else
 * trained here on the MNIST train split (seed 0) and kept in
 * `$ZOO_CACHE/bench-checkpoints/`. The new tasks never see that split: the
 * similar task draws from the MNIST validation and test splits (seed 0),
 * re-split per seed into 50 test images per class and the training images.
 *
 * ```
 * deno run -A bench/scenarios.ts --models lenet5 --seeds 3 --json out.json
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "@std/cli";
import { join } from "node:path";
import { analyze } from "../core/arch/analyze.ts";
import { loadBuiltin } from "../sdk/data/builtin.ts";
import type { Batch, BatchOptions, Dataset, Preprocessing } from "../sdk/data/types.ts";
import { initWasmBackend } from "../sdk/devices/wasm/backend.ts";
import { codeExtractor, computeCodes } from "../sdk/features/extract.ts";
import type { CnnCodes } from "../sdk/features/code_cache.ts";
import { evaluateLinear, trainLinear } from "../sdk/features/linear.ts";
import { advise } from "../sdk/advisor/advise.ts";
import { codeStatistics, measureSimilarity } from "../sdk/advisor/similarity.ts";
import { fineTuneNetwork } from "../sdk/train/network.ts";
import type { LinearClassifier, SourceStats } from "../sdk/types.ts";
import { lenet5, resnetMini } from "../zoo/_recipes.ts";
import { mulberry32 } from "../sdk/_random.ts";

const flags = parseArgs(Deno.args, {
  string: [
    "models",
    "seeds",
    "large-seeds",
    "small",
    "large",
    "test-per-class",
    "epochs-small",
    "epochs-large",
    "finetune-lr",
    "json",
    "tasks",
    "out",
    "from-json",
  ],
  boolean: ["threads"],
  default: {
    models: "lenet5,resnet-mini",
    seeds: "3",
    small: "10",
    large: "200",
    "test-per-class": "50",
    "epochs-small": "15",
    "epochs-large": "4",
    "finetune-lr": "0.003",
  },
});
const flag = (name: string): string => String(flags[name] ?? "");
const args = {
  models: flag("models"),
  seeds: flag("seeds"),
  small: flag("small"),
  large: flag("large"),
  "test-per-class": flag("test-per-class"),
  "epochs-small": flag("epochs-small"),
  "epochs-large": flag("epochs-large"),
  "large-seeds": flags["large-seeds"] === undefined ? undefined : flag("large-seeds"),
  "finetune-lr": Number(flag("finetune-lr")),
  threads: flags.threads === true,
  json: flags.json === undefined ? undefined : flag("json"),
  /** Which new tasks: `mnist` (held-out digits), `fashion-mnist`. */
  tasks: (flags.tasks === undefined ? "mnist,fashion-mnist" : flag("tasks")).split(","),
  /** Where the Markdown report goes. */
  out: flags.out === undefined ? "bench/results/scenarios.md" : flag("out"),
  /** Re-render the report from a previous run's `--json` with the current advisor thresholds. */
  fromJson: flags["from-json"] === undefined ? undefined : flag("from-json"),
};

const PREPROCESS: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };
const RECIPES: Record<string, () => tf.LayersModel> = {
  lenet5: () => lenet5(1),
  "resnet-mini": () => resnetMini(1),
};

/** Labelled images held in memory, preprocessed already ([0, 1], 28x28x1). */
class ArrayDataset implements Dataset {
  readonly imageShape: [number, number, number] = [28, 28, 1];
  readonly counts: number[];
  readonly size: number;
  constructor(
    readonly name: string,
    readonly identity: string,
    readonly classes: string[],
    private pixels: Float32Array,
    private labels: Int32Array,
  ) {
    this.size = labels.length;
    this.counts = classes.map((_, c) => labels.filter((l) => l === c).length);
  }
  subset(name: string, indices: number[]): ArrayDataset {
    const pixels = new Float32Array(indices.length * 784);
    indices.forEach((i, k) => pixels.set(this.pixels.subarray(i * 784, (i + 1) * 784), k * 784));
    return new ArrayDataset(
      name,
      `${this.identity}/${name}`,
      this.classes,
      pixels,
      Int32Array.from(indices, (i) => this.labels[i]!),
    );
  }
  tensors(): Batch {
    return {
      xs: tf.tensor4d(this.pixels, [this.size, 28, 28, 1]),
      ys: tf.tensor1d(this.labels, "int32"),
    };
  }
  batches(n: number, opts: BatchOptions = {}): AsyncIterable<Batch> {
    const order = Array.from({ length: this.size }, (_, i) => i);
    if (opts.shuffle) shuffle(order, opts.seed ?? 0);
    const { pixels, labels } = this;
    return {
      async *[Symbol.asyncIterator]() {
        for (let s = 0; s < order.length; s += n) {
          const idx = order.slice(s, s + n);
          const px = new Float32Array(idx.length * 784);
          idx.forEach((i, k) => px.set(pixels.subarray(i * 784, (i + 1) * 784), k * 784));
          yield {
            xs: tf.tensor4d(px, [idx.length, 28, 28, 1]),
            ys: tf.tensor1d(idx.map((i) => labels[i]!), "int32"),
          };
        }
      },
    };
  }
}

function shuffle<T>(xs: T[], seed: number): T[] {
  const r = mulberry32(seed);
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

async function materialize(datasets: Dataset[], name: string): Promise<ArrayDataset> {
  const px: Float32Array[] = [];
  const ls: Int32Array[] = [];
  for (const d of datasets) {
    for await (const { xs, ys } of d.batches(1000, { preprocess: PREPROCESS })) {
      px.push(await xs.data() as Float32Array);
      ls.push(await ys.data() as Int32Array);
      tf.dispose([xs, ys]);
    }
  }
  const pixels = new Float32Array(px.reduce((n, p) => n + p.length, 0));
  const labels = new Int32Array(ls.reduce((n, l) => n + l.length, 0));
  let a = 0, b = 0;
  for (const p of px) pixels.set(p, (a += p.length) - p.length);
  for (const l of ls) labels.set(l, (b += l.length) - l.length);
  return new ArrayDataset(
    name,
    datasets.map((d) => d.identity).join("+"),
    datasets[0]!.classes,
    pixels,
    labels,
  );
}

/** Per class: the first `testPerClass` of a seeded shuffle are test, the next `perClass` train. */
function resplit(
  pool: ArrayDataset,
  labels: Int32Array,
  seed: number,
  perClass: number,
  testPerClass: number,
) {
  const train: number[] = [], test: number[] = [];
  for (let c = 0; c < pool.classes.length; c++) {
    const idx = shuffle([...labels.keys()].filter((i) => labels[i] === c), seed * 31 + c);
    test.push(...idx.slice(0, testPerClass));
    train.push(...idx.slice(testPerClass, testPerClass + perClass));
  }
  return { train, test };
}

const checkpointDir = join(
  Deno.env.get("ZOO_CACHE") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache", "deno-model-zoo"),
  "bench-checkpoints",
);

async function loadOrTrain(
  name: string,
  mnistTrain: ArrayDataset,
): Promise<{ model: tf.LayersModel; from: string; stats?: SourceStats }> {
  const zooDir = new URL(`../zoo/${name}/`, import.meta.url);
  try {
    const json = JSON.parse(await Deno.readTextFile(new URL("checkpoint/model.json", zooDir)));
    const weights = await Promise.all(
      json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths).map((p: string) =>
        Deno.readFile(new URL(`checkpoint/${p}`, zooDir))
      ),
    );
    const data = new Uint8Array(weights.reduce((n, w) => n + w.length, 0));
    let at = 0;
    for (const w of weights) data.set(w, (at += w.length) - w.length);
    const model = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
      weightData: data.buffer,
    }));
    let stats: SourceStats | undefined;
    try {
      stats = JSON.parse(await Deno.readTextFile(new URL("card.json", zooDir))).sourceStats;
    } catch { /* computed below */ }
    return { model, from: `zoo/${name}/checkpoint (committed)`, ...(stats ? { stats } : {}) };
  } catch { /* not committed yet */ }
  const dir = join(checkpointDir, name);
  try {
    const json = JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
    const bin = await Deno.readFile(join(dir, "weights.bin"));
    const model = await tf.loadLayersModel(tf.io.fromMemory({ ...json, weightData: bin.buffer }));
    return { model, from: `trained by this bench (cached in ${dir})` };
  } catch { /* train it */ }
  const model = RECIPES[name]!();
  model.compile({
    optimizer: tf.train.adam(1e-3),
    loss: "sparseCategoricalCrossentropy",
    metrics: ["accuracy"],
  });
  const { xs, ys } = mnistTrain.tensors();
  const epochs = name === "lenet5" ? 4 : 1;
  const started = performance.now();
  const h = await model.fit(xs, tf.cast(ys, "float32"), {
    epochs,
    batchSize: 64,
    shuffle: true,
    verbose: 0,
  });
  console.error(
    `trained ${name}: ${epochs} epochs, acc ${h.history.acc?.at(-1)}, ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s`,
  );
  tf.dispose([xs, ys]);
  await Deno.mkdir(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (a) => {
    await Deno.writeTextFile(
      join(dir, "model.json"),
      JSON.stringify({ modelTopology: a.modelTopology, weightSpecs: a.weightSpecs }),
    );
    await Deno.writeFile(join(dir, "weights.bin"), new Uint8Array(a.weightData as ArrayBuffer));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
  return {
    model,
    from: `trained by this bench: ${epochs} epoch(s) of Adam on the mnist train split`,
  };
}

async function accuracyOf(model: tf.LayersModel, test: ArrayDataset): Promise<number> {
  const { xs, ys } = test.tensors();
  const correct = tf.tidy(() =>
    tf.sum(
      tf.cast(
        tf.equal(tf.argMax(model.predict(xs, { batchSize: 256 }) as tf.Tensor, 1), ys),
        "float32",
      ),
    )
  );
  const n = (await correct.data())[0]!;
  tf.dispose([xs, ys, correct]);
  return n / test.size;
}

function pick(codes: CnnCodes, idx: number[]): CnnCodes {
  const out = new Float32Array(idx.length * codes.dim);
  idx.forEach((i, k) =>
    out.set(codes.codes.subarray(i * codes.dim, (i + 1) * codes.dim), k * codes.dim)
  );
  return {
    codes: out,
    labels: Int32Array.from(idx, (i) => codes.labels[i]!),
    count: idx.length,
    dim: codes.dim,
  };
}

interface Row {
  model: string;
  task: string;
  perClass: number;
  method: string;
  seed: number;
  accuracy: number;
  seconds: number;
}

const info = await initWasmBackend({ threads: args.threads });
console.error(`backend wasm, ${info.threads} thread(s)`);
const seeds = Number(args.seeds);
const largeSeeds = Number(args["large-seeds"] ?? args.seeds);
const testPerClass = Number(args["test-per-class"]);
const sizes = [Number(args.small), Number(args.large)];
const mnistTrain = await materialize(
  [await loadBuiltin("mnist", { split: "train", seed: 0 })],
  "mnist train",
);
const pools = {
  mnist: await materialize(
    [
      await loadBuiltin("mnist", { split: "validation", seed: 0 }),
      await loadBuiltin("mnist", { split: "test", seed: 0 }),
    ],
    "held-out mnist",
  ),
  "fashion-mnist": await materialize([
    await loadBuiltin("fashion-mnist", { split: "test", seed: 0 }),
  ], "fashion-mnist"),
};
const previous = args.fromJson === undefined
  ? undefined
  : JSON.parse(await Deno.readTextFile(args.fromJson)) as {
    rows: Row[];
    meta: Record<string, unknown>;
    args: typeof args;
    argv?: string[];
    date?: string;
  };
const rows: Row[] = previous?.rows ?? [];
const meta: Record<string, unknown> = previous?.meta ?? {};
for (const name of previous ? [] : args.models.split(",")) {
  const { model, from, stats: cardStats } = await loadOrTrain(name, mnistTrain);
  const arch = analyze(model);
  // What the SDK does: features-top reads the penultimate layer, features-early
  // the advisor's earlier cut with the advisor's pooling. The feature cut
  // (end of the conv trunk) average-pooled is kept as a reference column.
  const top = arch.classifierCut!;
  const trunk = arch.featureCut!;
  const stats = cardStats ??
    await codeStatistics(
      model,
      top,
      mnistTrain,
      PREPROCESS,
      { sample: 2000 },
      "mnist train split (2000 sampled)",
    );
  meta[name] = {
    from,
    sourceTestAccuracy: await accuracyOf(model, pools.mnist),
    statsFrom: cardStats ? "card.json" : stats.dataset,
    statsLayer: stats.layer,
  };
  for (const [task, pool] of Object.entries(pools).filter(([t]) => args.tasks.includes(t))) {
    const similarity = await measureSimilarity(model, stats, pool, PREPROCESS);
    const codes: Record<string, CnnCodes> = {};
    const earlyAdvice = advise({
      examplesPerClass: 1,
      similarity: 0,
      cutPoints: arch.cutPoints,
      featureCut: trunk,
      layers: arch.layers,
    });
    const early = earlyAdvice.cut!;
    for (
      const [key, cut, pooling] of [
        ["top", top, "avg"],
        ["trunk", trunk, "avg"],
        ["early", early, earlyAdvice.codes ?? "avg"],
        ["early-avg", early, "avg"],
      ] as const
    ) {
      const ex = codeExtractor(model, cut, pooling);
      codes[key] = await computeCodes(ex.model, pool, PREPROCESS, { batchSize: 256 });
      ex.model.dispose();
    }
    meta[`${name}/cuts`] = { top, trunk, early, earlyCodes: earlyAdvice.codes };
    for (const perClass of sizes) {
      const advice = advise({
        examplesPerClass: perClass,
        similarity,
        cutPoints: arch.cutPoints,
        featureCut: trunk,
        layers: arch.layers,
        source: "mnist",
      });
      meta[`${name}/${task}/${perClass}`] = {
        similarity,
        advice: advice.strategy,
        early,
        explanation: advice.explanation,
      };
      console.error(advice.explanation);
      const nSeeds = perClass === sizes[0] ? seeds : largeSeeds;
      const labels = codes.top!.labels;
      for (let seed = 0; seed < nSeeds; seed++) {
        const split = resplit(pool, labels, seed, perClass, testPerClass);
        const train = pool.subset(`${task} train ${perClass}/class seed ${seed}`, split.train);
        const test = pool.subset(`${task} test seed ${seed}`, split.test);
        const record = (method: string, accuracy: number, started: number) => {
          const r = {
            model: name,
            task,
            perClass,
            method,
            seed,
            accuracy,
            seconds: (performance.now() - started) / 1000,
          };
          rows.push(r);
          console.error(JSON.stringify(r));
        };
        const linear: [string, string, LinearClassifier][] = [
          ["features-top svm", "top", "svm"],
          ["features-top softmax", "top", "softmax"],
          ["features-early svm", "early", "svm"],
          ["trunk-avg svm", "trunk", "svm"],
          ["early-avg svm", "early-avg", "svm"],
        ];
        for (const [method, key, classifier] of linear) {
          const started = performance.now();
          const fit = await trainLinear(pick(codes[key]!, split.train), undefined, {
            classifier,
            numClasses: 10,
            epochs: 100,
            seed,
            l2: 1e-3,
          });
          record(
            method,
            (await evaluateLinear(fit.model, pick(codes[key]!, split.test))).accuracy,
            started,
          );
        }
        const epochs = perClass === sizes[0]
          ? Number(args["epochs-small"])
          : Number(args["epochs-large"]);
        for (const method of ["partial", "full", "scratch"] as const) {
          const started = performance.now();
          const base = method === "scratch" ? RECIPES[name]!() : model;
          const run = await fineTuneNetwork({
            model: base,
            train,
            preprocess: PREPROCESS,
            numClasses: 10,
            epochs,
            batchSize: 32,
            lr: args["finetune-lr"],
            seed,
            strategy: method === "partial" ? "partial" : "full",
            // As the SDK runs them: partial at 0.1, full and scratch at 1.
            baseLrMult: method === "partial" ? 0.1 : 1,
          });
          record(method, await accuracyOf(run.model, test), started);
          run.model.dispose();
          if (base !== model) base.dispose();
        }
      }
    }
  }
  model.dispose();
}
if (args.json && !previous) {
  await Deno.writeTextFile(
    args.json,
    JSON.stringify({ rows, meta, args, argv: Deno.args, date: new Date().toISOString() }, null, 2),
  );
}

/** The method each advisor strategy runs, as the SDK runs it (classifier svm). */
const PICK_METHOD: Record<string, string> = {
  "features-top": "features-top svm",
  "features-early": "features-early svm",
  partial: "partial",
  full: "full",
};
const METHODS = [
  "features-top svm",
  "features-top softmax",
  "features-early svm",
  "partial",
  "full",
  "scratch",
  "trunk-avg svm",
  "early-avg svm",
];
const stat = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean: 100 * mean, sd: 100 * sd, n: xs.length };
};
// A re-render describes the run it renders, not its own command line.
const ran = previous?.args ?? args;
const ranSizes = [Number(ran.small), Number(ran.large)];
const lines: string[] = [];
let hits = 0;
let cells = 0;
for (const name of ran.models.split(",")) {
  const cuts = meta[`${name}/cuts`] as {
    top: string;
    trunk: string;
    early: string;
    earlyCodes?: string;
  };
  lines.push(
    `### ${name}`,
    "",
    `Cuts: features-top = \`${cuts.top}\` (penultimate), features-early = \`${cuts.early}\` (${
      cuts.earlyCodes ?? "avg"
    }), trunk = \`${cuts.trunk}\` (feature cut, avg-pooled, reference). Source accuracy on held-out digits: ${
      (100 * ((meta[name] as { sourceTestAccuracy: number }).sourceTestAccuracy)).toFixed(1)
    }%.`,
    "",
    `| task | per class | similarity | advisor | ${METHODS.join(" | ")} | pick vs best |`,
    `| --- | --- | --- | --- | ${METHODS.map(() => "---").join(" | ")} | --- |`,
  );
  for (const task of Object.keys(pools).filter((t) => ran.tasks.includes(t))) {
    for (const perClass of ranSizes) {
      const m = meta[`${name}/${task}/${perClass}`] as { similarity: number };
      // The advice is recomputed here, so a re-render from --from-json shows
      // the current thresholds' picks; the architecture needs no weights.
      const net = RECIPES[name]!();
      const arch = analyze(net);
      net.dispose();
      const advice = advise({
        examplesPerClass: perClass,
        similarity: m.similarity,
        cutPoints: arch.cutPoints,
        featureCut: arch.featureCut,
        layers: arch.layers,
      });
      const cell = (method: string) =>
        stat(
          rows.filter((r) =>
            r.model === name && r.task === task && r.perClass === perClass && r.method === method
          ).map((r) => r.accuracy),
        );
      const stats = METHODS.map(cell);
      const product = stats.slice(0, 6);
      const best = Math.max(...product.map((x) => x.mean));
      const pickMethod = PICK_METHOD[advice.strategy]!;
      const picked = stats[METHODS.indexOf(pickMethod)]!.mean;
      const ok = best - picked <= 1;
      cells++;
      if (ok) hits++;
      const shown = stats.map((x, i) => {
        const text = `${x.mean.toFixed(1)} ± ${x.sd.toFixed(1)}`;
        const marked = METHODS[i] === pickMethod ? `**${text}**` : text;
        return i < 6 && x.mean === best ? `${marked} ★` : marked;
      });
      lines.push(
        `| ${task} | ${perClass} | ${m.similarity.toFixed(3)} | ${advice.strategy} | ${
          shown.join(" | ")
        } | ${ok ? "ok" : "miss"}: ${(picked - best).toFixed(1)} |`,
      );
    }
  }
  lines.push("");
}
const machine = new TextDecoder().decode(
  (await new Deno.Command("lscpu", { stdout: "piped" }).output()).stdout,
).split("\n").filter((l) => /^(Model name|CPU\(s\)):/.test(l)).map((l) => l.replace(/\s+/g, " "))
  .join("; ");
const report = [
  "# Transfer-learning scenarios: calibrating the advisor",
  "",
  `- Date: ${previous?.date ?? new Date().toISOString()}`,
  `- Command: \`deno run -A bench/scenarios.ts ${(previous?.argv ?? Deno.args).join(" ")}\`${
    previous
      ? `; table re-rendered with the current thresholds by \`... ${Deno.args.join(" ")}\``
      : ""
  }`,
  `- Machine: ${machine}; Deno ${Deno.version.deno}, tfjs ${tf.version.tfjs}, wasm backend (${info.threads} thread)`,
  `- Seeds: ${ran.seeds} (small), ${ran["large-seeds"] ?? ran.seeds} (large); ${
    ran["test-per-class"]
  } test images per class; fine-tuning: Adam, head lr ${
    ran["finetune-lr"]
  }, pretrained layers × 0.1 (partial) or × 1 (full), batch 32, ${
    ran["epochs-small"]
  } epochs (small) / ${
    ran["epochs-large"]
  } (large), head on the penultimate layer (the SDK default); linear classifiers: 100 epochs of Adam 0.01, L2 1e-3`,
  `- Similar task: held-out MNIST digits (validation + test splits, never seen in pretraining; about 300 per class); different: the Fashion-MNIST test split (1,400 per class). Small is ${
    ranSizes[0]
  } per class, large ${ranSizes[1]}.`,
  "",
  "Test accuracy (%), mean ± std over seeds. **Bold**: the advisor's pick as the SDK runs it; ★: the best of the six strategies the SDK offers (the last two columns are references, not SDK strategies).",
  "",
  ...lines,
  `The advisor's pick is the best or within 1 point of it in ${hits} of ${cells} cells.`,
  "",
];
await Deno.writeTextFile(args.out, report.join("\n"));
console.log(report.join("\n"));
