import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import type { Batch, BatchOptions, Dataset, Preprocessing } from "../../../sdk/data/types.ts";
import {
  type CnnCodes,
  codeExtractor,
  computeCodes,
  featureStrategy,
  type FeatureStrategyOptions,
} from "../../../sdk/features/mod.ts";
import { lenet5, resnetMini } from "../../../zoo/_recipes.ts";
import { foldForInference } from "../../../sdk/surgery/fold.ts";

await initWasmBackend();

const PREPROCESS: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };

/** A dataset that counts how often its batches are read. */
function counting(data: Dataset): Dataset & { reads: number } {
  const counted = {
    name: data.name,
    identity: data.identity,
    classes: data.classes,
    size: data.size,
    imageShape: data.imageShape,
    counts: data.counts,
    reads: 0,
    batches(n: number, opts?: BatchOptions): AsyncIterable<Batch> {
      counted.reads++;
      return data.batches(n, opts);
    },
  };
  return counted;
}

async function options(
  model: tf.LayersModel,
  extra: Partial<FeatureStrategyOptions> = {},
): Promise<FeatureStrategyOptions> {
  return {
    model,
    train: await loadBuiltin("mnist", { perClass: 8, seed: 3 }),
    preprocess: PREPROCESS,
    numClasses: 10,
    epochs: 30,
    batchSize: 40,
    lr: 0.01,
    seed: 0,
    classifier: "svm",
    noCache: true,
    ...extra,
  };
}

Deno.test("featureStrategy() refuses a layer that is not a cut point and names the nearest cut points", async () => {
  const model = resnetMini();
  const err = await assertRejects(
    async () => featureStrategy(await options(model, { cut: "stage1_a_conv" })),
    RangeError,
    "not a cut point",
  );
  assert(err.message.includes(`"stem_relu" and "stage1_add"`), err.message);
  assertThrows(() => codeExtractor(model, "nope"), RangeError, `there is no such layer`);
  model.dispose();
});

Deno.test("codeExtractor() adds a ReLU only where the cut's output can be negative", () => {
  const model = resnetMini();
  const add = codeExtractor(model, "stage1_add");
  const out = codeExtractor(model, "stage1_out", "flatten");
  assertEquals(add.description, "ReLU'd, avg-pooled 28x28x16 -> 16");
  assertEquals(out.description, "flattened 28x28x16 -> 12544");
  assertEquals(out.dim, 12544);
  tf.dispose([add.model, out.model, model].flatMap((m) => m.weights.map((w) => w.read())));
});

Deno.test("a second run reads the codes from the cache: it never reads the images and trains the same classifier", async () => {
  const model = lenet5();
  const cacheDir = await Deno.makeTempDir();
  try {
    const train = counting(await loadBuiltin("mnist", { perClass: 8, seed: 3 }));
    const seen: boolean[] = [];
    const opts = await options(model, {
      train,
      cacheDir,
      noCache: false,
      onCodes: (i) => seen.push(i.cached),
    });
    delete opts.noCache;
    const first = await featureStrategy(opts);
    const readsAfterFirst = train.reads;
    const second = await featureStrategy(opts);
    assert(readsAfterFirst > 0);
    assertEquals(train.reads, readsAfterFirst, "the second run read the images");
    assertEquals(seen, [false, true]);
    assertEquals(second.linear.kernel, first.linear.kernel);
    assertEquals(second.linear.mean, first.linear.mean);
    const files = [...Deno.readDirSync(cacheDir)].map((e) => e.name).sort();
    assertEquals(files.length, 2);
    assert(files[0]!.endsWith(".f32") && files[1]!.endsWith(".json"));
    first.model.dispose();
    second.model.dispose();
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
    model.dispose();
  }
});

Deno.test("the predictor maps images to the linear classifier's softmax, and saves and loads as a LayersModel", async () => {
  const model = lenet5();
  const outcome = await featureStrategy(
    await options(model, { classifier: "softmax", cut: "pool2" }),
  );
  assertEquals(outcome.cutLayer, "pool2");
  assertEquals(outcome.codes, "avg-pooled 5x5x16 -> 16");
  assertEquals(outcome.learningRates.base, 0);
  assertEquals(outcome.frozenLayers, ["conv1", "pool1", "conv2", "pool2"]);
  assert(outcome.history.every((m) => m.phase === "linear"));
  const data = await loadBuiltin("mnist", { split: "test", perClass: 2 });
  const extractor = codeExtractor(model, "pool2");
  const codes = await computeCodes(extractor.model, data, PREPROCESS);
  const { linear } = outcome;
  let saved: tf.io.ModelArtifacts | undefined;
  await outcome.model.save(tf.io.withSaveHandler((a) => {
    saved = a;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  const reloaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
  for await (const { xs, ys } of data.batches(20, { preprocess: PREPROCESS })) {
    const [probs, again] = [outcome.model, reloaded].map((m) => m.predict(xs) as tf.Tensor);
    const p = await probs!.data();
    assertEquals(await again!.data(), p);
    for (let i = 0; i < codes.count; i++) {
      const scores = Array.from({ length: 10 }, (_, k) => {
        let s = linear.bias[k]!;
        for (let d = 0; d < linear.dim; d++) {
          s += codes.codes[i * linear.dim + d]! * linear.kernel[d * 10 + k]!;
        }
        return s;
      });
      const max = Math.max(...scores);
      const z = scores.reduce((a, s) => a + Math.exp(s - max), 0);
      scores.forEach((s, k) => assertAlmostEquals(p[i * 10 + k]!, Math.exp(s - max) / z, 1e-4));
    }
    tf.dispose([xs, ys, probs!, again!]);
  }
  tf.dispose(
    [outcome.model, reloaded, extractor.model, model].flatMap((m) =>
      m.weights.map((w) => w.read())
    ),
  );
});

Deno.test("featureStrategy() leaves no tensor behind but the predictor's weights", async () => {
  const model = lenet5();
  const test = await loadBuiltin("mnist", { split: "test", perClass: 3 });
  const validation = await loadBuiltin("mnist", { split: "validation", perClass: 3 });
  const opts = await options(model, { test, validation });
  const warm = await featureStrategy(opts);
  warm.model.dispose();
  const before = tf.memory().numTensors;
  const outcome = await featureStrategy(opts);
  assert(outcome.test !== undefined && outcome.test.accuracy >= 0);
  assert(outcome.history.every((m) => m.valLoss !== undefined));
  outcome.model.dispose();
  assertEquals(tf.memory().numTensors, before);
  model.dispose();
});

/** Asserts that `codes` are the extractor's `predict` of every image of `data`, to a relative 1e-5. */
async function assertCodesLikePredict(
  extractor: tf.LayersModel,
  data: Dataset,
  codes: CnnCodes,
): Promise<void> {
  let at = 0, worst = 0, scale = 0;
  for await (const { xs, ys } of data.batches(16, { preprocess: PREPROCESS })) {
    const out = extractor.predict(xs) as tf.Tensor;
    const want = await out.data();
    tf.dispose([out, xs, ys]);
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(codes.codes[at + i]! - want[i]!));
      scale = Math.max(scale, Math.abs(want[i]!));
    }
    at += want.length;
  }
  assertEquals(at, codes.count * codes.dim);
  assert(scale > 0 && worst / scale < 1e-5, `codes differ by ${worst} (of ${scale})`);
}

Deno.test("computeCodes folds an extractor's BatchNormalization layers and gives the codes its predict gives", async () => {
  const model = resnetMini();
  // Moving statistics, scales and offsets far from their initial values, so folding shows.
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    layer.setWeights(
      layer.getWeights().map((w, i, all) =>
        tf.tidy(() => {
          const u = tf.randomUniform(w.shape, 0, 1, "float32", 40 + i);
          return i === all.length - 1 ? u.add(0.2) : u.sub(0.5).mul(2);
        })
      ),
    );
  }
  const cut = model.layers.at(-2)!.name;
  const extractor = codeExtractor(model, cut);
  const probe = foldForInference(extractor.model);
  assert(probe.folded.length > 0, "resnetMini has convolutions with BatchNormalization to fold");
  probe.dispose();
  const data = await loadBuiltin("mnist", { split: "test", perClass: 3 });
  const before = tf.memory().numTensors;
  const codes = await computeCodes(extractor.model, data, PREPROCESS, { batchSize: 16 });
  assertEquals(tf.memory().numTensors, before, "the folded weights are freed");
  await assertCodesLikePredict(extractor.model, data, codes);
});

Deno.test("computeCodes runs LeNet-5's conv1 and pool1 as one pooled convolution and gives the codes its predict gives", async () => {
  const model = lenet5();
  const extractor = codeExtractor(model, "pool1", "flatten");
  const data = await loadBuiltin("mnist", { split: "test", perClass: 5 });
  const before = tf.memory().numTensors;
  let codes: CnnCodes = { codes: new Float32Array(0), labels: new Int32Array(0), count: 0, dim: 0 };
  const profile = await tf.profile(async () => {
    codes = await computeCodes(extractor.model, data, PREPROCESS, { batchSize: 32 });
    return [];
  });
  assertEquals(tf.memory().numTensors, before, "the copied weights are freed");
  const kernels = profile.kernels.map((k) => k.name);
  assert(kernels.includes("ZooConv2DMaxPool"), `${kernels}`);
  assert(!kernels.includes("MaxPool"), `${kernels}`);
  assertEquals(codes.dim, 1176);
  await assertCodesLikePredict(extractor.model, data, codes);
  tf.dispose([
    ...extractor.model.weights.map((w) => w.read()),
    ...model.weights.map((w) => w.read()),
  ]);
});
