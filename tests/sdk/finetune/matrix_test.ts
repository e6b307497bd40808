/**
 * The fine-tuning CLI as a user runs it (`deno run -A sdk/finetune.ts`, one
 * subprocess per cell) over checkpoints × strategies, one epoch on small
 * data, against a real registry holding the zoo. Every cell must exit 0
 * within a time bound derived from the FLOPs its step costs, write the
 * checkpoint, card and metrics, and, where learning is expected (a linear
 * classifier on codes: `features`, and `auto`, which picks it on small
 * data), beat chance on the held-out test split with a fixed seed.
 *
 * Tiers, to keep CI well inside its budget:
 *
 * - default: lenet5 and resnet-mini × {auto, features, partial, full} on
 *   Fashion-MNIST (10 per class), and mobilenet-v2 × the four strategies on
 *   a generated `dir:` folder of RGB JPEG and PNG images of mixed sizes
 *   (three classes, no `adaptInputChannels`);
 * - `ZOO_SLOW_TESTS=1`: inception-v3 × the four strategies on the same
 *   folder, and mobilenet-v2 `partial` and `full` on Fashion-MNIST resized
 *   to 224x224 (the grey-to-RGB path).
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import { runFinetune } from "../../_helpers/cli.ts";
import { startZooRegistry, type ZooRegistry } from "../../_helpers/registry.ts";
const SLOW = Deno.env.get("ZOO_SLOW_TESTS") === "1";
const STRATEGIES = ["auto", "features", "partial", "full"] as const;
type Strategy = typeof STRATEGIES[number];

/**
 * Forward FLOPs per image of each checkpoint at the size the cells run it
 * (`analyze().flops`), and the cells' training images: the time bound is
 * 60 s of start-up and evaluation, plus 10x the training FLOPs (3x forward)
 * at 2.5 GFLOP/s, the wasm rate per thread that `sdk/train/plan.ts` uses.
 * The factor covers a loaded machine: on this project's shared 2-core
 * machine a MobileNetV2 step ran 4x slower than on an idle one.
 */
const FORWARD_FLOPS: Record<string, number> = {
  "lenet5": 0.6e6,
  "resnet-mini": 12e6,
  "mobilenet-v2": 0.6e9,
  "inception-v3": 11.4e9,
};

function timeBound(model: string, images: number): number {
  return 60 + 10 * images * 3 * FORWARD_FLOPS[model]! / 2.5e9;
}

interface Cell {
  model: string;
  strategy: Strategy;
  data: string;
  /** Training images (for the bound). */
  images: number;
  classes: number;
  extra: string[];
  slow: boolean;
}

function png(width: number, height: number, rgb: [number, number, number], seed: number) {
  const image = new PNG({ width, height });
  fill(image.data, rgb, seed);
  return new Uint8Array(PNG.sync.write(image));
}

function jpg(width: number, height: number, rgb: [number, number, number], seed: number) {
  const data = new Uint8Array(width * height * 4);
  fill(data, rgb, seed);
  return new Uint8Array(jpeg.encode({ data, width, height }, 90).data);
}

/** A colour with seeded noise and a darker square in a random place. */
function fill(data: Uint8Array, rgb: [number, number, number], seed: number): void {
  let s = seed * 2654435761 >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = 0; i < data.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      data[i + c] = Math.max(0, Math.min(255, rgb[c]! + (rand() - 0.5) * 80));
    }
    data[i + 3] = 255;
  }
}

/** Three classes of 20 RGB images, half JPEG half PNG, sides from 40 to 320 pixels. */
async function colourFolder(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "finetune_matrix_rgb_" });
  const classes: Record<string, [number, number, number]> = {
    red: [200, 40, 40],
    green: [40, 180, 60],
    blue: [40, 60, 200],
  };
  let seed = 1;
  for (const [name, rgb] of Object.entries(classes)) {
    await Deno.mkdir(join(root, name));
    for (let i = 0; i < 20; i++) {
      const w = 40 + (seed * 37) % 281;
      const h = 40 + (seed * 91) % 281;
      const bytes = i % 2 === 0 ? png(w, h, rgb, seed) : jpg(w, h, rgb, seed);
      await Deno.writeFile(join(root, name, `${i}.${i % 2 === 0 ? "png" : "jpg"}`), bytes);
      seed++;
    }
  }
  return root;
}

const folder = await colourFolder();
// 20 per class, 10% validation and 20% test held out: 14 training images per class.
const FOLDER_TRAIN = 3 * 14;

const cells: Cell[] = [];
for (const model of ["lenet5", "resnet-mini"]) {
  for (const strategy of STRATEGIES) {
    cells.push({
      model,
      strategy,
      data: "fashion-mnist?perClass=10",
      images: 100,
      classes: 10,
      extra: [],
      slow: false,
    });
  }
}
for (const model of ["mobilenet-v2", "inception-v3"]) {
  for (const strategy of STRATEGIES) {
    cells.push({
      model,
      strategy,
      data: `dir:${folder}`,
      images: FOLDER_TRAIN,
      classes: 3,
      extra: ["--resize", "--batch-size", "16"],
      slow: model === "inception-v3",
    });
  }
}
for (const strategy of ["partial", "full"] as const) {
  cells.push({
    model: "mobilenet-v2",
    strategy,
    data: "fashion-mnist?perClass=3",
    images: 30,
    classes: 10,
    extra: ["--resize", "--batch-size", "16"],
    slow: true,
  });
}

const wanted = cells.filter((c) => SLOW || !c.slow);
let registry: ZooRegistry | undefined;

for (const cell of cells) {
  const learns = cell.strategy === "features" || cell.strategy === "auto";
  Deno.test({
    name: `finetune ${cell.strategy} on zoo/${cell.model} with ${
      cell.data.startsWith("dir:") ? "a folder of RGB JPEG and PNG images" : cell.data
    } exits 0 in time and writes its checkpoint and card${
      learns ? ", above chance on held-out images" : ""
    }`,
    ignore: !wanted.includes(cell),
    sanitizeResources: false,
    sanitizeOps: false,
  }, async () => {
    registry ??= await startZooRegistry(["lenet5", "resnet-mini", "mobilenet-v2", "inception-v3"]);
    const out = await Deno.makeTempDir({ prefix: `finetune_matrix_${cell.model}_` });
    const bound = timeBound(cell.model, cell.images);
    const started = performance.now();
    const run = await runFinetune(
      [
        "--model",
        `zoo/${cell.model}`,
        "--data",
        cell.data,
        "--strategy",
        cell.strategy,
        "--epochs",
        "1",
        "--seed",
        "1",
        "--device",
        "wasm",
        "--out",
        out,
        ...cell.extra,
        ...registry.flags,
      ],
      { signal: AbortSignal.timeout(bound * 1000) },
    );
    const seconds = (performance.now() - started) / 1000;
    const stderr = run.stderr;
    assertEquals(run.code, 0, `exit ${run.code} after ${seconds.toFixed(0)} s:\n${stderr}`);
    assert(seconds < bound, `${seconds.toFixed(0)} s, bound ${bound.toFixed(0)} s`);
    for (const file of ["model.json", "card.json", "README.md", "metrics.jsonl"]) {
      assert((await Deno.stat(join(out, file))).size > 0, file);
    }
    const card = JSON.parse(await Deno.readTextFile(join(out, "card.json")));
    assertEquals(card.parent, `zoo/${cell.model}@1.0.0`);
    assertEquals(card.labels.length, cell.classes);
    const ft = card.fineTuning;
    if (cell.strategy === "full") assertEquals(ft.frozenLayers, []);
    if (cell.strategy === "partial") assert(ft.frozenLayers.length > 0, "nothing frozen");
    if (cell.strategy === "partial" || cell.strategy === "full") {
      assert(ft.trainedWeights.tensors > 0);
    }
    if (cell.strategy === "full" && cell.model !== "lenet5" && cell.model !== "resnet-mini") {
      // Batches of 16 do not fit in memory in one piece: accumulated, and said so.
      assert(
        /memory: a step keeps about \d+ MiB per image: .* micro-batches of \d+/.test(stderr),
        stderr,
      );
    }
    if (cell.strategy === "full" && cell.model === "inception-v3") {
      assert(
        /time: full trains \d+ weight tensors .* expect about \d+ (s|min)/.test(stderr),
        stderr,
      );
    }
    if (cell.strategy === "auto") {
      assert(/advisor: /.test(stderr), stderr);
      assertEquals(ft.requestedStrategy, "auto");
    }
    const test = card.metrics.find((m: { dataset: string }) => m.dataset.endsWith(" test"));
    assert(test !== undefined, JSON.stringify(card.metrics));
    console.log(
      `${cell.model} ${cell.strategy} (${ft.strategy}): test accuracy ${
        (100 * test.value).toFixed(1)
      }%, ${seconds.toFixed(0)} s (bound ${bound.toFixed(0)} s)`,
    );
    if (learns) {
      assert(test.value > 1 / cell.classes + 0.1, `test accuracy ${test.value} at chance`);
    }
    await Deno.remove(out, { recursive: true });
  });
}

Deno.test({
  name:
    "finetune refuses a --micro-batch that cannot fit in memory before training, saying what to pass",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  registry ??= await startZooRegistry(["lenet5", "resnet-mini", "mobilenet-v2", "inception-v3"]);
  const out = await Deno.makeTempDir({ prefix: "finetune_matrix_refused_" });
  const run = await runFinetune([
    "--model",
    "zoo/mobilenet-v2",
    "--data",
    `dir:${folder}`,
    "--resize",
    "--strategy",
    "full",
    "--micro-batch",
    "32",
    "--device",
    "wasm",
    "--out",
    out,
    ...registry.flags,
  ]);
  const stderr = run.stderr;
  assertEquals(run.code, 1, stderr);
  assert(
    /Cannot train with micro-batches of 32: a step would need about \d+\.\d GiB .*: pass --micro-batch \d+ or less \(or --batch-size \d+\)$/
      .test(stderr.trim().split("\n").at(-1)!),
    stderr,
  );
  assert(!/epoch 1/.test(stderr), "it trained");
  await Deno.remove(out, { recursive: true });
});

Deno.test({
  name: "the matrix's registry and image folder are removed",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await registry?.close();
  await Deno.remove(folder, { recursive: true });
});
