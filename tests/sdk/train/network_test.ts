import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import type { Dataset, Preprocessing } from "../../../sdk/data/types.ts";
import type { EpochMetrics } from "../../../sdk/types.ts";
import { attachHead } from "../../../sdk/surgery/head.ts";
import { fineTuneNetwork, type FineTuneNetworkOptions } from "../../../sdk/train/network.ts";
import { crossEntropy, evaluate, splitForward } from "../../../sdk/train/_loop.ts";
import { lenet5, resnetMini } from "../../../zoo/_recipes.ts";
import { mobilenetV2Small } from "../devices/_models.ts";

await initWasmBackend({ threads: false });

const preprocess: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };
const train = await loadBuiltin("mnist", { perClass: 4 });
const validation = await loadBuiltin("mnist", { split: "validation", perClass: 2 });

function common(
  model: tf.LayersModel,
  extra: Partial<FineTuneNetworkOptions> = {},
): FineTuneNetworkOptions {
  return {
    model,
    train,
    preprocess,
    numClasses: 10,
    epochs: 1,
    batchSize: 20,
    lr: 0.01,
    seed: 7,
    strategy: "full",
    ...extra,
  };
}

async function values(layer: tf.layers.Layer): Promise<Float32Array[]> {
  return await Promise.all(layer.getWeights().map(async (w) => (await w.data()) as Float32Array));
}

async function weightsOf(model: tf.LayersModel): Promise<Float32Array[]> {
  return await Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  assertEquals(a.length, b.length);
  let max = 0;
  a.forEach((x, i) => x.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i]![j]!)))));
  return max;
}

function norm(t: tf.Tensor): Promise<number> {
  const n = tf.norm(t);
  return n.data().then((d) => (n.dispose(), d[0]!));
}

/** The whole of `data` as one batch. */
async function oneBatch(data: Dataset): Promise<{ xs: tf.Tensor4D; ys: tf.Tensor1D }> {
  for await (const batch of data.batches(data.size, { preprocess })) return batch;
  throw new Error("empty dataset");
}

Deno.test("attachHead() keeps the pretrained layers' outputs, adds the head the cut asks for and leaves the original intact", async () => {
  const net = resnetMini(3);
  const before = await weightsOf(net);
  const { model, cutLayer, headLayers, baseLayers, innerCutPoints } = attachHead(net, {
    numClasses: 4,
    cut: "stage2_out",
    seed: 1,
  });
  assertEquals(cutLayer, "stage2_out");
  assertEquals(headLayers, ["head_pool", "head_logits"]);
  assert(!baseLayers.some((n) => n.startsWith("stage3")));
  assertEquals(innerCutPoints.at(-1), "stage2_add");
  assertEquals(model.outputs[0]!.shape, [null, 4]);
  const { xs } = await oneBatch(validation);
  const original = tf.model({ inputs: net.inputs, outputs: net.getLayer("stage2_out").output });
  const rebuilt = tf.model({ inputs: model.inputs, outputs: model.getLayer("stage2_out").output });
  const diff = tf.tidy(() =>
    tf.max(tf.abs(tf.sub(original.predict(xs) as tf.Tensor, rebuilt.predict(xs) as tf.Tensor)))
  );
  assertEquals((await diff.data())[0], 0);
  // A flat cut gets the Dense layer directly; the default cut is the penultimate layer.
  const flat = attachHead(lenet5(), { numClasses: 3, cut: "fc2" });
  assertEquals(flat.headLayers, ["head_logits"]);
  assertEquals(attachHead(lenet5(), { numClasses: 3 }).cutLayer, "fc2");
  assertThrows(
    () => attachHead(net, { numClasses: 3, cut: "stage2_a_conv" }),
    RangeError,
    "not a cut point",
  );
  assertThrows(() => attachHead(net, { numClasses: 1 }), RangeError, '"1" classes');
  model.dispose();
  flat.model.dispose();
  tf.dispose([xs, diff]);
  assertEquals(maxAbsDiff(await weightsOf(net), before), 0);
  net.dispose();
});

Deno.test("fineTuneNetwork() moves the head at lr and the pretrained layers at lr × baseLrMult, leaving the caller's model as it was", async () => {
  const net = lenet5(2);
  const before = await weightsOf(net);
  const lr = 0.1;
  const baseLrMult = 0.25;
  const run = await fineTuneNetwork(
    common(net, { optimizer: "sgd", lr, baseLrMult, batchSize: train.size, cut: "fc2" }),
  );
  assertEquals(run.learningRates, { head: lr, base: lr * baseLrMult });
  assertEquals(run.frozenLayers, []);
  // The gradient at the start, computed independently on the same data.
  const start = attachHead(net, { numClasses: 10, seed: 7, cut: "fc2" }).model;
  const split = splitForward(start, null);
  const { xs, ys } = await oneBatch(train);
  const vars = start.trainableWeights.map((w) => w.read() as tf.Variable);
  const { grads, value } = tf.variableGrads(
    () =>
      crossEntropy(
        start.apply(xs, { training: true }) as tf.Tensor,
        ys,
        10,
      ),
    vars,
  );
  for (const name of ["conv1", "conv2", "fc1", "fc2", "head_logits"]) {
    const expected = name === "head_logits" ? lr : lr * baseLrMult;
    const w0 = start.getLayer(name).trainableWeights;
    const w1 = run.model.getLayer(name).trainableWeights;
    for (const [i, w] of w0.entries()) {
      const g = grads[(w.read() as tf.Variable).name]!;
      const delta = tf.sub(w.read(), w1[i]!.read());
      const ratio = (await norm(delta)) / (await norm(g));
      assert(
        Math.abs(ratio - expected) / expected < 1e-5,
        `${w.name}: |Δw|/|g| = ${ratio}, expected ${expected}`,
      );
      // The step is along -g, not only of the right length.
      const along = tf.tidy(() => tf.sum(tf.mul(delta, g)));
      assert((await along.data())[0]! > 0, `${w.name} moved against the gradient`);
      tf.dispose([delta, along]);
    }
  }
  assertEquals(split.frozen, []);
  tf.dispose([xs, ys, grads, value]);
  start.dispose();
  run.model.dispose();
  assertEquals(maxAbsDiff(await weightsOf(net), before), 0);
  net.dispose();
});

Deno.test("fineTuneNetwork() partial keeps frozen BatchNormalization statistics bit-identical and updates the unfrozen ones", async () => {
  const net = resnetMini(1);
  const run = await fineTuneNetwork(
    common(net, { strategy: "partial", freezeUntil: "stage1_out", lr: 0.01 }),
  );
  const frozen = ["stem_conv", "stem_bn", "stage1_a_conv", "stage1_a_bn", "stage1_b_bn"];
  for (const name of frozen) {
    assert(run.frozenLayers.includes(name), `${name} is not reported frozen`);
    assertEquals(
      maxAbsDiff(await values(run.model.getLayer(name)), await values(net.getLayer(name))),
      0,
      `${name} changed`,
    );
  }
  assert(!run.frozenLayers.some((n) => n.startsWith("stage2") || n.startsWith("stage3")));
  for (const name of ["stage2_a_bn", "stage3_b_bn", "stage3_proj_bn"]) {
    const [gamma, beta, movingMean, movingVariance] = await values(run.model.getLayer(name));
    const [gamma0, beta0, mean0, variance0] = await values(net.getLayer(name));
    for (
      const [what, a, b] of [
        ["gamma", gamma, gamma0],
        ["beta", beta, beta0],
        ["moving mean", movingMean, mean0],
        ["moving variance", movingVariance, variance0],
      ] as const
    ) {
      assert(maxAbsDiff([a!], [b!]) > 0, `${name} ${what} did not change`);
    }
  }
  run.model.dispose();
  net.dispose();
});

Deno.test("fineTuneNetwork() trains the head alone for headEpochs, then the unfrozen base", async () => {
  const net = lenet5(4);
  const headOnly = await fineTuneNetwork(
    common(net, { strategy: "partial", headEpochs: 1, epochs: 0, cut: "pool2" }),
  );
  assertEquals(headOnly.history.map((m) => m.phase), ["head"]);
  assertEquals(headOnly.frozenLayers, ["conv1", "conv2"]);
  for (const name of ["conv1", "conv2"]) {
    assertEquals(
      maxAbsDiff(await values(headOnly.model.getLayer(name)), await values(net.getLayer(name))),
      0,
    );
  }
  const both = await fineTuneNetwork(
    common(net, { strategy: "partial", headEpochs: 1, epochs: 1, cut: "pool2" }),
  );
  assertEquals(both.history.map((m) => [m.epoch, m.phase]), [[1, "head"], [2, "all"]]);
  // The default freezeUntil for LeNet-5 cut at pool2 is pool1: conv1 stays, conv2 trains.
  assertEquals(both.frozenLayers, ["conv1"]);
  assertEquals(
    maxAbsDiff(await values(both.model.getLayer("conv1")), await values(net.getLayer("conv1"))),
    0,
  );
  assert(
    maxAbsDiff(await values(both.model.getLayer("conv2")), await values(net.getLayer("conv2"))) >
      0,
  );
  headOnly.model.dispose();
  both.model.dispose();
  net.dispose();
});

Deno.test("fineTuneNetwork() resumed after a kill ends bit-identical to an uninterrupted run, with flat tensor counts", async () => {
  const net = lenet5(5);
  const opts = common(net, { epochs: 3, validation, batchSize: 10, patience: 5 });
  const counts: number[] = [];
  const straight = await fineTuneNetwork({
    ...opts,
    checkpointDir: await Deno.makeTempDir(),
    onEpoch: () => counts.push(tf.memory().numTensors),
  });
  assertEquals(counts.length, 3);
  assertEquals(counts[2], counts[0], `tensors per epoch: ${counts}`);

  const dir = await Deno.makeTempDir();
  const batches: number[] = [];
  await assertRejects(
    () =>
      fineTuneNetwork({
        ...opts,
        checkpointDir: dir,
        onEpoch: (m) => {
          if (m.epoch === 2) throw new Error("killed");
        },
      }),
    Error,
    "killed",
  );
  const resumedEpochs: EpochMetrics[] = [];
  const resumedAfter: number[] = [];
  const resumed = await fineTuneNetwork({
    ...opts,
    checkpointDir: dir,
    resume: true,
    onResume: (completed) => resumedAfter.push(completed),
    onEpoch: (m) => resumedEpochs.push(m),
    onBatch: (done, total) => batches.push(done / total),
  });
  assertEquals(resumedAfter, [2]);
  assertEquals(resumedEpochs.map((m) => m.epoch), [3]);
  assertEquals(batches.at(-1), 1);
  assertEquals(resumed.history.map((m) => m.epoch), [1, 2, 3]);
  const diff = maxAbsDiff(await weightsOf(resumed.model), await weightsOf(straight.model));
  assertEquals(diff, 0, `resumed weights differ by ${diff}`);
  for (const [i, m] of resumed.history.entries()) {
    assertEquals(m.valLoss, straight.history[i]!.valLoss);
    assert(m.imagesPerSecond > 0);
  }
  const kept = [];
  for await (const e of Deno.readDir(dir)) kept.push(e.name);
  assert(kept.includes("epoch-0003"), `checkpoint folders: ${kept}`);
  assert(kept.length <= 2, `old epochs were not pruned: ${kept}`);
  // Each epoch folder holds a model stock tfjs loads.
  const json = JSON.parse(await Deno.readTextFile(`${dir}/epoch-0003/model.json`));
  const loaded = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest[0].weights,
    weightData: (await Deno.readFile(`${dir}/epoch-0003/weights.bin`)).buffer,
  }));
  assertEquals(loaded.outputs[0]!.shape, [null, 10]);
  loaded.dispose();
  // Options that change the result cannot change on resume.
  await assertRejects(
    () => fineTuneNetwork({ ...opts, lr: 0.5, checkpointDir: dir, resume: true }),
    RangeError,
    'option "lr"',
  );
  straight.model.dispose();
  resumed.model.dispose();
  net.dispose();
});

/** `data` with every label moved to the next class: the better a model learns, the worse it does here. */
function mislabelled(data: Dataset): Dataset {
  return {
    name: `${data.name} (mislabelled)`,
    identity: `${data.identity}+shifted`,
    classes: data.classes,
    size: data.size,
    imageShape: data.imageShape,
    counts: data.counts,
    async *batches(n, opts) {
      for await (const { xs, ys } of data.batches(n, opts)) {
        const shifted = tf.tidy(() =>
          tf.cast(tf.mod(tf.add(ys, 1), data.classes.length), "int32")
        ) as tf.Tensor1D;
        ys.dispose();
        yield { xs, ys: shifted };
      }
    },
  };
}

Deno.test("fineTuneNetwork() stops after patience epochs without a better validation loss and returns the best weights", async () => {
  const net = lenet5(6);
  const wrong = mislabelled(validation);
  const run = await fineTuneNetwork(
    common(net, { epochs: 8, validation: wrong, batchSize: 10, lr: 0.01, patience: 2 }),
  );
  const losses = run.history.map((m) => m.valLoss!);
  const best = Math.min(...losses);
  const bestEpoch = losses.indexOf(best) + 1;
  assert(run.history.length < 8, `never stopped: ${losses}`);
  assertEquals(run.history.length, bestEpoch + 2);
  assert(bestEpoch < run.history.length);
  const { loss } = await evaluate(run.model, wrong, 10, preprocess, 10);
  assert(Math.abs(loss - best) < 1e-5, `returned model's loss ${loss}, best ${best}`);
  run.model.dispose();
  net.dispose();
});

Deno.test("fineTuneNetwork() with microBatch takes the same step as with the whole batch", async () => {
  const net = lenet5(8);
  const opts = common(net, { optimizer: "sgd", lr: 0.1, batchSize: train.size });
  const whole = await fineTuneNetwork(opts);
  const micro = await fineTuneNetwork({ ...opts, microBatch: 16 });
  const diff = maxAbsDiff(await weightsOf(micro.model), await weightsOf(whole.model));
  assert(diff < 1e-5, `weights differ by ${diff}`);
  assert(Math.abs(micro.history[0]!.trainLoss - whole.history[0]!.trainLoss) < 1e-5);
  assertEquals(micro.history[0]!.trainAccuracy, whole.history[0]!.trainAccuracy);
  whole.model.dispose();
  micro.model.dispose();
  net.dispose();
});

Deno.test("fineTuneNetwork() runs a MobileNetV2-style net through both phases in micro-batches with its default freeze point", async () => {
  const net = mobilenetV2Small([16, 16, 3], 5);
  const rgb: Preprocessing = { height: 16, width: 16, channels: 3, range: [-1, 1] };
  const run = await fineTuneNetwork(
    common(net, {
      preprocess: rgb,
      strategy: "partial",
      headEpochs: 1,
      microBatch: 8,
      validation,
    }),
  );
  assertEquals(run.history.map((m) => m.phase), ["head", "all"]);
  for (const m of run.history) {
    assert(Number.isFinite(m.trainLoss) && Number.isFinite(m.valLoss!), JSON.stringify(m));
  }
  assert(run.frozenLayers.length > 0);
  for (const name of run.frozenLayers) {
    assertEquals(
      maxAbsDiff(await values(run.model.getLayer(name)), await values(net.getLayer(name))),
      0,
      `${name} changed`,
    );
  }
  run.model.dispose();
  net.dispose();
});

/** Options fineTuneNetwork() rejects, with the error each gets and a part of its message. */
const REJECTED: [Partial<FineTuneNetworkOptions>, ErrorConstructor, string][] = [
  [
    { strategy: "partial", freezeUntil: "fc1", cut: "pool2" },
    RangeError,
    'Cannot freeze until layer "fc1"',
  ],
  [{ numClasses: 3 }, RangeError, "numClasses"],
  [{ resume: true }, TypeError, "checkpointDir"],
  [{ batchSize: 0 }, RangeError, "batchSize"],
];

Deno.test("fineTuneNetwork() rejects a freezeUntil that is not a cut point before the head, and other bad options", async () => {
  const net = lenet5();
  for (const [options, errorClass, says] of REJECTED) {
    await assertRejects(() => fineTuneNetwork(common(net, options)), errorClass, says);
  }
  net.dispose();
});
