/**
 * Benchmark: nsfwjs MobileNetV2 convolutionalized and run once on a 448×448
 * image (an 8×8 score map) against the original run on each of the 64
 * 224×224 crops at a stride of 32 that the map stands for. Ideal speedup 16×
 * (64 crops of 224² pixels against one pass over 4 × 224²).
 *
 * Usage: `deno run -A bench/convolutionalize.ts [--runs N]`; writes
 * bench/results/convolutionalize.md.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "@std/cli";
import { convolutionalize } from "../sdk/surgery/convolutionalize.ts";
import { selectDevice } from "../sdk/devices/select.ts";
import { loadNsfwjsModel } from "../zoo/nsfwjs/source.ts";
import { median } from "./_report.ts";

const args = parseArgs(Deno.args, { string: ["runs"], default: { runs: "3" } });
const runs = Number(args.runs);

/** The fastest backend for a forward-only job, as `--device auto` picks it. */
async function pickBackend(): Promise<{ backend: string; note: string }> {
  const choice = await selectDevice("auto", { training: false });
  return { backend: choice.backend, note: choice.reason };
}

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function loadAverage(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(", ");
  } catch {
    return "unknown";
  }
}

async function machine(): Promise<string> {
  try {
    const out = await new Deno.Command("lscpu", { stdout: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout);
    const model = /Model name:\s*(.+)/.exec(text)?.[1]?.trim() ?? "unknown CPU";
    return `${model}, ${navigator.hardwareConcurrency} logical cores`;
  } catch {
    return `unknown CPU, ${navigator.hardwareConcurrency} logical cores`;
  }
}

const { backend, note } = await pickBackend();
await tf.ready();
const net = await loadNsfwjsModel("mobilenet_v2");
const fcn = convolutionalize(net);
const image = tf.randomUniform([1, 448, 448, 3], 0, 1, "float32", 42) as tf.Tensor4D;
const crops: tf.Tensor4D[] = [];
for (let i = 0; i < 8; i++) {
  for (let j = 0; j < 8; j++) crops.push(image.slice([0, 32 * i, 32 * j, 0], [1, 224, 224, 3]));
}

async function onePass(): Promise<void> {
  const map = fcn.predict(image) as tf.Tensor;
  await map.data();
  map.dispose();
}
async function cropLoop(): Promise<void> {
  for (const crop of crops) {
    const y = net.predict(crop) as tf.Tensor;
    await y.data();
    y.dispose();
  }
}

// Check the map is the one being timed: its shape, and how far its cells are from the crops'
// scores (MobileNetV2 pads with 'same', so cells see real pixels where crops see zeros).
const map = fcn.predict(image) as tf.Tensor;
const cropScores = tf.concat(crops.map((c) => net.predict(c) as tf.Tensor));
const gap = tf.tidy(() => tf.abs(tf.sub(map.reshape([64, 5]), cropScores)).max());
const [maxGap] = await gap.data();
const mapShape = map.shape;
tf.dispose([map, cropScores, gap]);

await onePass();
await cropLoop();
const passTimes: number[] = [];
const loopTimes: number[] = [];
for (let r = 0; r < runs; r++) {
  passTimes.push(await time(onePass));
  loopTimes.push(await time(cropLoop));
}
const load = await loadAverage();
const pass = median(passTimes);
const loop = median(loopTimes);
const speedup = loop / pass;

const table = [
  "| method | input | passes | median (ms) | runs (ms) |",
  "| --- | --- | --- | --- | --- |",
  `| convolutionalized, one pass | 1×448×448×3 → ${mapShape.join("×")} | 1 | ${pass.toFixed(0)} | ${
    passTimes.map((t) => t.toFixed(0)).join(", ")
  } |`,
  `| original on every crop | 64 × 1×224×224×3 (stride 32) | 64 | ${loop.toFixed(0)} | ${
    loopTimes.map((t) => t.toFixed(0)).join(", ")
  } |`,
  "",
  `Speedup: **${speedup.toFixed(1)}×** (ideal 16×, target ≥ 12×).`,
].join("\n");
console.log(table);

const report = `# Convolutionalized MobileNetV2 vs. the crop loop

- Machine: ${await machine()}
- Command: \`deno run -A bench/convolutionalize.ts --runs ${runs}\`
- Date: ${new Date().toISOString()}
- Deno ${Deno.version.deno}, TensorFlow.js ${tf.version.tfjs}
- Backend: ${backend} (${note})
- Model: nsfwjs MobileNetV2 (224×224, 5 classes), converted by \`convolutionalize()\`
- Medians of ${runs} runs after one warm-up run of each (the two alternate); every run reads
  its outputs back. Load average at the end: ${load} (single runs vary on a
  shared machine; the medians are what to compare)
- Score-map cells vs. crop scores, max abs difference: ${maxGap!.toExponential(2)}
  (MobileNetV2 pads with 'same': a cell sees the real pixels around its crop where the
  crop alone sees zero padding; at 224×224 the two agree to 1e-4, see the tests)

${table}
`;
await Deno.writeTextFile(new URL("./results/convolutionalize.md", import.meta.url), report);
tf.dispose([image, ...crops]);
fcn.dispose();
net.dispose();
