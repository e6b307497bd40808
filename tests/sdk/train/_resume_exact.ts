/**
 * The check behind the resume tests: a fine-tune interrupted after an epoch
 * and resumed from its checkpoint ends with the weights of an uninterrupted
 * run, bit for bit, through Adam's slots, step count and running β powers,
 * BatchNormalization moving statistics, the data order and the Dropout
 * masks of the trained layers.
 */
import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertNotEquals } from "@std/assert";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import type { Preprocessing } from "../../../sdk/data/types.ts";
import { fineTuneNetwork, type FineTuneNetworkOptions } from "../../../sdk/train/network.ts";

const preprocess: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };
const train = await loadBuiltin("fashion-mnist", { perClass: 6 });
const validation = await loadBuiltin("fashion-mnist", { split: "validation", perClass: 2 });

/** A small net with every kind of state a resume must carry: BatchNormalization and Dropout before the head. */
function net(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        name: "conv",
        inputShape: [28, 28, 1],
        filters: 4,
        kernelSize: 5,
        strides: 2,
        kernelInitializer: init(1),
      }),
      tf.layers.batchNormalization({ name: "bn" }),
      tf.layers.activation({ name: "relu", activation: "relu" }),
      tf.layers.maxPooling2d({ name: "pool", poolSize: 2 }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ name: "fc", units: 16, activation: "relu", kernelInitializer: init(2) }),
      tf.layers.dropout({ name: "drop", rate: 0.5 }),
      tf.layers.dense({
        name: "logits",
        units: 10,
        activation: "softmax",
        kernelInitializer: init(3),
      }),
    ],
  });
}

async function bits(model: tf.LayersModel): Promise<Uint32Array[]> {
  return await Promise.all(
    model.weights.map(async (w) =>
      new Uint32Array(((await w.read().data()) as Float32Array).buffer)
    ),
  );
}

/** Runs the check on `backend`, which must be registered; throws an AssertionError on any difference. */
export async function checkResumeExact(backend: "cpu" | "wasm"): Promise<void> {
  await tf.setBackend(backend);
  const base = net();
  const opts: FineTuneNetworkOptions = {
    model: base,
    train,
    validation,
    preprocess,
    numClasses: 10,
    strategy: "full",
    cut: "drop",
    headEpochs: 1,
    epochs: 3,
    batchSize: 8,
    lr: 0.01,
    seed: 5,
    patience: 10,
  };
  const straight = await fineTuneNetwork(opts);
  const again = await fineTuneNetwork(opts);
  const dir = await Deno.makeTempDir();
  try {
    // The interruption: a run that stops after its second epoch (one head
    // epoch, one of all layers), its checkpoint on disk, then a new run resumes it.
    const killed = await fineTuneNetwork({ ...opts, epochs: 1, checkpointDir: dir });
    killed.model.dispose();
    const resumed = await fineTuneNetwork({ ...opts, checkpointDir: dir, resume: true });
    assertEquals(resumed.history.map((m) => m.epoch), [1, 2, 3, 4]);
    const [a, b, c] = [
      await bits(straight.model),
      await bits(again.model),
      await bits(resumed.model),
    ];
    assertEquals(b, a, "two uninterrupted runs differ: something draws unseeded random numbers");
    assertEquals(c, a, "the resumed run's weights differ from the uninterrupted run's");
    assertEquals(
      resumed.history.map((m) => [m.trainLoss, m.valLoss]),
      straight.history.map((m) => [m.trainLoss, m.valLoss]),
    );
    // The moving statistics moved, and Dropout was active: a run without it ends elsewhere.
    const bn = straight.model.getLayer("bn").getWeights();
    assertNotEquals(Array.from(await bn[2]!.data()), [0, 0, 0, 0]);
    const drop = straight.model.getLayer("drop") as unknown as { seed?: number; rate: number };
    assertEquals(drop.seed, undefined, "the returned model keeps the seed its Dropout came with");
    resumed.model.dispose();
  } finally {
    straight.model.dispose();
    again.model.dispose();
    base.dispose();
    await Deno.remove(dir, { recursive: true });
  }
}
