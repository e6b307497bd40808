/**
 * fineTune() and the CLI end to end at tiny scale against a real registry on
 * a free port: outputs, lineage card, publishing, input-size handling and
 * flat tensor counts.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { join } from "node:path";
import { PNG } from "pngjs";
import { ZooClient } from "../../../sdk/client/mod.ts";
import { main } from "../../../sdk/finetune.ts";
import { fineTune, type FineTuneOptions } from "../../../sdk/finetune/fine_tune.ts";
import type { EpochMetrics } from "../../../sdk/types.ts";
import { lenet5 } from "../../../zoo/_recipes.ts";
import { startFinetuneRegistry } from "./_registry.ts";

function png(size: number, seed: number): Uint8Array {
  const image = new PNG({ width: size, height: size });
  for (let i = 0; i < image.data.length; i += 4) {
    const v = ((i / 4) * 37 + seed * 101) % 256;
    image.data[i] = image.data[i + 1] = image.data[i + 2] = v;
    image.data[i + 3] = 255;
  }
  return new Uint8Array(PNG.sync.write(image));
}

async function imageFolder(size: number, perClass: number): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "finetune_dir_" });
  for (const cls of ["bright", "dark"]) {
    await Deno.mkdir(join(root, cls));
    for (let i = 0; i < perClass; i++) {
      await Deno.writeFile(join(root, cls, `${i}.png`), png(size, cls === "dark" ? i : 50 + i));
    }
  }
  return root;
}

Deno.test("finetune CLI trains, writes a publishable checkpoint with its lineage card and publishes it", async () => {
  const reg = await startFinetuneRegistry();
  const out = await Deno.makeTempDir({ prefix: "finetune_out_" });
  try {
    const lines: string[] = [];
    const result = await main([
      "--model",
      "zoo/lenet5",
      "--data",
      "fashion-mnist?perClass=6",
      "--strategy",
      "partial",
      "--epochs",
      "2",
      "--batch-size",
      "16",
      "--patience",
      "5",
      "--device",
      "wasm",
      "--registry",
      reg.url,
      "--token",
      reg.token,
      "--cache",
      reg.cacheDir,
      "--out",
      out,
      "--publish",
      "me/lenet5-fashion@1.0.0",
    ], { out: (l) => lines.push(l), err: (l) => lines.push(l), bar: false });
    const run = result!.run;
    assertEquals(run.strategy, "partial");
    assertEquals(run.device.backend, "wasm");
    assert(run.testAccuracy !== undefined && run.testAccuracy >= 0 && run.testAccuracy <= 1);

    const metrics = (await Deno.readTextFile(join(out, "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l) as EpochMetrics);
    assertEquals(metrics.length, run.history.length);
    assertEquals(metrics.map((m) => m.epoch), run.history.map((m) => m.epoch));
    for (const m of metrics) assert(Number.isFinite(m.trainLoss) && m.imagesPerSecond > 0);

    const svg = await Deno.readTextFile(join(out, "training-curves.svg"));
    assertMatch(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*>[\s\S]*<\/svg>\n$/);
    const opened = [...svg.matchAll(/<(g|svg)\b/g)].length;
    const closed = [...svg.matchAll(/<\/(g|svg)>/g)].length;
    assertEquals(opened, closed, "every <g> and <svg> is closed");
    assert(svg.includes("<path"), "the plot has curves");

    const card = JSON.parse(await Deno.readTextFile(join(out, "card.json")));
    const parentDoc = await new ZooClient({ url: reg.url, cacheDir: reg.cacheDir }).resolve(
      "zoo/lenet5@1.0.0",
    );
    const parentDigest = parentDoc.files.find((f) => f.path === "model.json")!.digest;
    assertEquals(card.parent, "zoo/lenet5@1.0.0");
    assertEquals(card.parentDigest, parentDigest);
    assertEquals(card.fineTuning.strategy, "partial");
    assertEquals(card.fineTuning.cutLayer, run.cutLayer);
    assertEquals(card.fineTuning.frozenLayers, run.frozenLayers);
    assertEquals(card.fineTuning.learningRates, run.learningRates);
    assertEquals(card.fineTuning.inputSize, [28, 28, 1]);
    assertEquals(card.dataset.name, "fashion-mnist?perClass=6");
    assert(typeof card.dataset.identity === "string" && card.dataset.identity.length > 0);
    assertEquals(card.labels.length, 10);
    assertEquals(card.metrics[0].name, "accuracy");
    for (const f of ["model.json", "group1-shard1of1.bin", "README.md"]) {
      await Deno.stat(join(out, f));
    }

    const published = result!.published!;
    assertEquals(published.reference, "me/lenet5-fashion@1.0.0");
    assert(lines.some((l) => l.includes(published.url)), "the URL is printed");
    assert(lines.some((l) => /test accuracy/.test(l)), "the final table is printed");
    const client = new ZooClient({ url: reg.url, cacheDir: reg.cacheDir, progress: false });
    const doc = await client.resolve("me/lenet5-fashion@1.0.0");
    assertEquals(doc.card.parent, "zoo/lenet5@1.0.0");
    assertEquals(doc.card.parentDigest, parentDigest);
    const model = await client.loadModel("me/lenet5-fashion@1.0.0");
    const p = model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor;
    assertEquals(p.shape, [1, 10]);
    tf.dispose([p]);
    model.dispose();
    run.model.dispose();
  } finally {
    await Deno.remove(out, { recursive: true });
    await reg.close();
  }
});

Deno.test("fineTune() keeps tf.memory().numTensors flat across epochs and leaks nothing", async () => {
  await tf.setBackend("cpu");
  const base = lenet5(2);
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  const run = await fineTune({
    model: base,
    data: "fashion-mnist?perClass=4",
    strategy: "full",
    device: "cpu",
    training: { epochs: 4, batchSize: 20, patience: 5 },
    callbacks: { log: () => {}, onEpoch: () => counts.push(tf.memory().numTensors) },
  });
  assertEquals(counts.length, 4);
  // Best-weight snapshots come and go; the count must never grow past the first epoch's.
  assert(counts.every((c) => c <= counts[0]!), `tensors per epoch: ${counts.join(", ")}`);
  run.model.dispose();
  assertEquals(tf.memory().numTensors, before, "nothing is left after the run's model is disposed");
  base.dispose();
});

Deno.test("fineTune() runs LeNet on 32x32 RGB images through resizeInput and adaptInputChannels, or resizes them", async () => {
  await tf.setBackend("cpu");
  const dir = await imageFolder(32, 6);
  try {
    const notes: string[] = [];
    const base = lenet5(3);
    const run = await fineTune({
      model: base,
      data: `dir:${dir}?validationFraction=0.2&testFraction=0.2`,
      strategy: "features",
      device: "cpu",
      training: { epochs: 3 },
      output: { cacheDir: join(dir, ".codes") },
      callbacks: { log: (l) => notes.push(l) },
    });
    assertEquals(run.inputSize, [32, 32, 3]);
    assert(notes.some((n) => /resizeInput/.test(n) && /32x32/.test(n)), notes.join("\n"));
    assert(notes.some((n) => /adaptInputChannels\(model, 3\)/.test(n)), notes.join("\n"));
    assertMatch(
      String(
        run.card.fineTuning && (run.card.fineTuning as Record<string, unknown>).inputSize_note,
      ),
      /resizeInput/,
    );
    run.model.dispose();

    const resized: string[] = [];
    const run2 = await fineTune({
      model: base,
      data: `dir:${dir}?validationFraction=0.2&testFraction=0.2`,
      strategy: "features",
      resize: true,
      device: "cpu",
      training: { epochs: 3 },
      output: { cacheDir: join(dir, ".codes") },
      callbacks: { log: (l) => resized.push(l) },
    });
    assertEquals(run2.inputSize, [28, 28, 3]);
    assert(resized.some((n) => /resized from 32x32 to 28x28 in preprocessing/.test(n)));
    run2.model.dispose();
    base.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fineTune() refuses an option of a group given at the top level, naming the group, before any work", async () => {
  const base = lenet5(1);
  const flat = { model: base, data: "fashion-mnist?perClass=2", epochs: 3 } as FineTuneOptions;
  await assertRejects(
    () => fineTune(flat),
    TypeError,
    `Cannot fine-tune with option "epochs" at the top level: it belongs to the "training" group: pass { training: { epochs } }`,
  );
  const log = { model: base, data: "fashion-mnist?perClass=2", log: () => {} } as FineTuneOptions;
  await assertRejects(() => fineTune(log), TypeError, `it belongs to the "callbacks" group`);
  base.dispose();
});
