/**
 * A fine-tuning step's memory and FLOPs before it runs, on the zoo's
 * MobileNetV2, and the micro-batch that fits.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import * as tf from "@tensorflow/tfjs";
import { attachHead } from "../../../sdk/surgery/head.ts";
import {
  DEFAULT_MEMORY_BUDGET,
  formatDuration,
  planMicroBatch,
  stepCost,
} from "../../../sdk/train/plan.ts";
import { loadNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";

await tf.setBackend("cpu");

Deno.test("stepCost() of a whole-network MobileNetV2 step is about 250 MiB and 1.8 GFLOPs per image, less with the early layers frozen", async () => {
  const source = await loadNsfwjsModel("mobilenet_v2");
  const { model, baseLayers, headLayers } = attachHead(source, { numClasses: 3 });
  const all = model.layers.map((l) => l.name);
  const params = model.layers.reduce((n, l) => n + l.countParams(), 0);
  const full = stepCost(model, all, params);
  // 21.97 M activation values per image x 12 bytes (the heap grew 214.5 MiB per image).
  assert(Math.abs(full.bytesPerImage / 2 ** 20 - 251) < 3, `${full.bytesPerImage / 2 ** 20} MiB`);
  assert(Math.abs(full.flopsPerImage / 1e9 - 1.8) < 0.05, `${full.flopsPerImage} FLOPs`);
  assertEquals(full.fixedBytes, params * 24);
  const after = baseLayers.slice(baseLayers.indexOf("block_13_expand"));
  const partial = stepCost(model, [...after, ...headLayers], params);
  assert(partial.bytesPerImage < full.bytesPerImage / 5);
  assert(partial.flopsPerImage < full.flopsPerImage);
  model.dispose();
  source.dispose();
});

Deno.test("planMicroBatch() keeps the whole batch when it fits, else picks the largest micro-batch that does", () => {
  const mib = 2 ** 20;
  const cost = {
    bytesPerImage: 461 * mib,
    fixedBytes: 14 * 24 * 2 ** 20 / 8,
    flopsPerImage: 1.8e9,
  };
  assertEquals(planMicroBatch(cost, 32), {
    microBatch: 7,
    bytes: cost.fixedBytes + 7 * cost.bytesPerImage,
    chosen: true,
  });
  assertEquals(planMicroBatch(cost, 4).microBatch, 4);
  assertEquals(planMicroBatch(cost, 4).chosen, false);
  assertEquals(planMicroBatch(cost, 32, 2), {
    microBatch: 2,
    bytes: cost.fixedBytes + 2 * cost.bytesPerImage,
    chosen: false,
  });
  assertThrows(
    () => planMicroBatch(cost, 32, 16),
    RangeError,
    "Cannot train with micro-batches of 16: a step would need about 7.2 GiB (about 461 MiB per image), more than the 3.5 GiB it may use: pass --micro-batch 7 or less",
  );
  assertThrows(
    () => planMicroBatch(cost, 16, 16),
    RangeError,
    "(or --batch-size 7)",
  );
  assertThrows(
    () => planMicroBatch({ ...cost, bytesPerImage: DEFAULT_MEMORY_BUDGET }, 32),
    RangeError,
    "one image needs",
  );
});

Deno.test("formatDuration() says seconds, minutes, or hours and minutes", () => {
  assertEquals(
    [formatDuration(0.2), formatDuration(89), formatDuration(200), formatDuration(6000)],
    ["1 s", "89 s", "3 min", "1 h 40 min"],
  );
});
