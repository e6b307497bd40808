/**
 * Fine-tuning speed: images/s of each strategy (features: CNN codes in
 * inference mode; partial: conv1/first half frozen; full: every layer) on
 * each device, for LeNet-5 (28×28×1, batch 128) and MobileNetV2 (the nsfwjs
 * checkpoint, 224×224×3, batch 32, micro-batches of 8 on wasm), through the
 * SDK's own trainers (`featureStrategy`, `fineTuneNetwork`) on synthetic
 * images, next to the same architectures and batches in PyTorch on the CPU.
 *
 * Each device runs in its own process (a wasm build is chosen once per
 * process). A trainer run is two epochs of `steps` batches: the first warms
 * up (kernel compilation, allocation), the second is timed. The PyTorch side
 * times the networks of `bench/_torch_models.py`, as `bench/training.ts` does.
 *
 *   deno run -A bench/finetune.ts [--steps 2] [--out bench/results/finetune.md]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "@std/cli";
import type { Dataset } from "../sdk/data/types.ts";
import { selectDevice } from "../sdk/devices/select.ts";
import { featureStrategy } from "../sdk/features/mod.ts";
import type { DeviceName } from "../sdk/devices/types.ts";
import { fineTuneNetwork } from "../sdk/train/network.ts";
import { lenet5 } from "../zoo/_recipes.ts";
import { loadNsfwjsModel } from "../zoo/nsfwjs/source.ts";
import { runTorchScript } from "./_torch.ts";
import { lscpu, writeReport } from "./_report.ts";

type Strategy = "features" | "partial" | "full";
type ModelName = "lenet5" | "mobilenetV2";
type Cell = { imagesPerSecond: number; note?: string } | { skipped: string };
type Row = { setup?: string; error?: string; cells: Partial<Record<string, Cell>> };

const STRATEGIES: Strategy[] = ["features", "partial", "full"];
const MODELS: Record<ModelName, { label: string; batch: number; classes: number }> = {
  lenet5: { label: "LeNet-5 28×28×1, batch 128", batch: 128, classes: 10 },
  mobilenetV2: { label: "MobileNetV2 224×224×3, batch 32", batch: 32, classes: 5 },
};

const args = parseArgs(Deno.args, {
  string: ["steps", "out", "child", "devices"],
  default: { steps: "2", out: "bench/results/finetune.md", devices: "wasm,webgpu,cpu" },
});
const steps = Number(args.steps);

/** Random images streamed in batches: speed does not depend on pixel values. */
function synthetic(shape: [number, number, number], classes: number, size: number): Dataset {
  const counts = Array.from(
    { length: classes },
    (_, c) => Math.floor(size / classes) + (c < size % classes ? 1 : 0),
  );
  return {
    name: `synthetic ${shape.join("x")}`,
    identity: `synthetic:${shape.join("x")}:${size}:${crypto.randomUUID()}`,
    classes: Array.from({ length: classes }, (_, c) => `c${c}`),
    size,
    imageShape: shape,
    counts,
    async *batches(batchSize: number) {
      for (let i = 0; i < size; i += batchSize) {
        const n = Math.min(batchSize, size - i);
        yield {
          xs: tf.randomUniform([n, ...shape]) as tf.Tensor4D,
          ys: tf.tensor1d(Array.from({ length: n }, (_, j) => (i + j) % classes), "int32"),
        };
        await Promise.resolve();
      }
    },
  };
}

async function measure(
  name: ModelName,
  strategy: Strategy,
  device: string,
): Promise<Cell> {
  const spec = MODELS[name];
  const model = name === "lenet5" ? lenet5(1) : await loadNsfwjsModel("mobilenet_v2");
  const shape = model.inputs[0]!.shape.slice(1) as [number, number, number];
  const preprocess = {
    height: shape[0],
    width: shape[1],
    channels: shape[2] as 1 | 3,
    range: [0, 1] as const,
  };
  const train = synthetic(shape, spec.classes, spec.batch * steps);
  const common = {
    model,
    train,
    preprocess,
    numClasses: spec.classes,
    batchSize: spec.batch,
    lr: 1e-3,
    seed: 0,
    patience: 99,
  };
  try {
    if (strategy === "features") {
      const rates: number[] = [];
      for (let run = 0; run < 2; run++) {
        const out = await featureStrategy({
          ...common,
          train: synthetic(shape, spec.classes, spec.batch * steps),
          epochs: 1,
          classifier: "softmax",
          noCache: true,
          codeBatchSize: spec.batch,
          onCodes: (i) => rates.push(i.count / i.seconds),
        });
        out.model.dispose();
      }
      return { imagesPerSecond: rates.at(-1)!, note: "codes, 2nd run" };
    }
    const micro = name === "mobilenetV2" && device === "wasm" ? 8 : undefined;
    const out = await fineTuneNetwork({
      ...common,
      strategy,
      epochs: 2,
      ...(micro ? { microBatch: micro } : {}),
    });
    out.model.dispose();
    const timed = out.history.at(-1)!;
    return {
      imagesPerSecond: timed.imagesPerSecond,
      note: `epoch 2${micro ? `, micro-batches of ${micro}` : ""}${
        strategy === "partial" ? `, ${out.frozenLayers.length} layers frozen` : ""
      }`,
    };
  } finally {
    model.dispose();
  }
}

/** Which cases a device runs: MobileNetV2 training on software WebGPU or tfjs cpu takes minutes a step. */
function skipReason(device: string, name: ModelName, strategy: Strategy): string | undefined {
  if (name !== "mobilenetV2") return undefined;
  if (device === "cpu") return "tfjs cpu: ~1 img/s inference (bench/results/training.md)";
  if (device === "webgpu" && strategy !== "features") {
    return "llvmpipe: ~34 s per step (bench/results/training.md)";
  }
  return undefined;
}

async function child(device: string): Promise<Row> {
  const choice = await selectDevice(device as DeviceName, { training: true });
  const row: Row = { setup: choice.adapter ?? choice.reason, cells: {} };
  for (const name of Object.keys(MODELS) as ModelName[]) {
    for (const strategy of STRATEGIES) {
      const skip = skipReason(device, name, strategy);
      try {
        row.cells[`${name}/${strategy}`] = skip
          ? { skipped: skip }
          : await measure(name, strategy, device);
      } catch (e) {
        row.cells[`${name}/${strategy}`] = {
          skipped: `error: ${e instanceof Error ? e.message.slice(0, 160) : e}`,
        };
      }
      console.error(device, name, strategy, JSON.stringify(row.cells[`${name}/${strategy}`]));
    }
  }
  return row;
}

async function runChild(device: string, timeoutS: number): Promise<Row> {
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--child",
        device,
        "--steps",
        String(steps),
      ],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "piped",
      stderr: "inherit",
      signal: AbortSignal.timeout(timeoutS * 1000),
    }).output();
    const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
      l.startsWith('{"row"')
    );
    if (!line) return { error: `exit ${out.code} without a result`, cells: {} };
    return (JSON.parse(line) as { row: Row }).row;
  } catch (e) {
    return {
      error: `stopped after ${timeoutS} s: ${e instanceof Error ? e.message : e}`,
      cells: {},
    };
  }
}

async function runTorch(timeoutS: number): Promise<Row> {
  try {
    const r = await runTorchScript("finetune_torch.py", [String(steps)], timeoutS) as {
      torch: string;
      threads: number;
      cells: Record<string, Cell>;
    };
    return { setup: `torch ${r.torch}, ${r.threads} threads`, cells: r.cells };
  } catch (e) {
    return { error: `PyTorch not run: ${e instanceof Error ? e.message : e}`, cells: {} };
  }
}

function cell(c: Cell | undefined, base: Cell | undefined): string {
  if (c === undefined) return "–";
  if ("skipped" in c) return `skipped: ${c.skipped.replaceAll("|", "/")}`;
  const ratio = base && !("skipped" in base)
    ? ` (${(c.imagesPerSecond / base.imagesPerSecond).toFixed(2)}×)`
    : "";
  return `${c.imagesPerSecond.toFixed(1)}${ratio}${c.note ? `, ${c.note}` : ""}`;
}

if (args.child) {
  let row: Row;
  try {
    row = await child(String(args.child));
  } catch (e) {
    row = { error: e instanceof Error ? e.message : String(e), cells: {} };
  }
  console.log(JSON.stringify({ row }));
  Deno.exit(0);
}

const started = new Date();
const t0 = performance.now();
const rows: Record<string, Row> = {};
rows["PyTorch CPU"] = await runTorch(300);
console.error("PyTorch", JSON.stringify(rows["PyTorch CPU"]));
for (const device of String(args.devices).split(",")) {
  rows[`tfjs ${device}`] = await runChild(device, 420);
}
const base = rows["PyTorch CPU"]!;
const keys = (Object.keys(MODELS) as ModelName[]).flatMap((m) =>
  STRATEGIES.map((s) => `${m}/${s}`)
);
const tables = (Object.keys(MODELS) as ModelName[]).map((m) => {
  const header = `| device | setup | ${STRATEGIES.join(" | ")} |`;
  const lines = Object.entries(rows).map(([name, r]) =>
    r.error
      ? `| ${name} | error: ${r.error.replaceAll("|", "/")} | ${
        STRATEGIES.map(() => "–").join(" | ")
      } |`
      : `| ${name} | ${r.setup ?? ""} | ${
        STRATEGIES.map((s) => cell(r.cells[`${m}/${s}`], base.cells[`${m}/${s}`])).join(" | ")
      } |`
  );
  return `### ${MODELS[m].label}\n\n${header}\n| --- | --- | ${
    STRATEGIES.map(() => "---").join(" | ")
  } |\n${lines.join("\n")}`;
});
void keys;
const md = `# Fine-tuning speed by strategy and device

Images/s (in parentheses: the ratio to PyTorch on the same CPU). features:
the CNN codes pass in inference mode (the linear classifier on codes costs
milliseconds); partial: \`fineTuneNetwork\` with its default freezing (early
layers fixed, pretrained layers at 0.1× the head's learning rate); full: every
layer trains. tfjs runs the SDK's trainers on synthetic images, ${steps} batches
per epoch, the second epoch timed; PyTorch runs the same architecture and
batch (\`bench/finetune_torch.py\`, model definitions from
\`bench/_torch_models.py\`), median of ${steps} steps after one warm-up.

- date: ${started.toISOString()}, took ${((performance.now() - t0) / 1000).toFixed(0)} s
- command: \`deno run -A bench/finetune.ts --steps ${steps}\`
- Deno ${Deno.version.deno}, tfjs ${tf.version.tfjs}; PyTorch with OMP_NUM_THREADS=${navigator.hardwareConcurrency}, OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset
- machine (no GPU; webgpu is Mesa's llvmpipe software adapter):

\`\`\`
${await lscpu()}
\`\`\`

${tables.join("\n\n")}
`;
await writeReport(String(args.out), md);
console.log(md);
