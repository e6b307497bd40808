import { assertAlmostEquals, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import * as tf from "@tensorflow/tfjs";
import { memoryDataset, packedDataset } from "../../../sdk/data/_batches.ts";
import { imagesToTensor } from "../../../sdk/data/_image.ts";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import type { Dataset } from "../../../sdk/data/types.ts";
import { collect, useCpu } from "./_fixtures.ts";

await useCpu();

/** n 2x2 gray images, image i filled with value i * 10, label i % 2. */
function tiny(n: number): Dataset {
  const pixels = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) pixels.fill(i * 10, i * 4, i * 4 + 4);
  return packedDataset({
    name: "tiny",
    identity: "tiny",
    classes: ["even", "odd"],
    source: { pixels, labels: Uint8Array.from({ length: n }, (_, i) => i % 2), shape: [2, 2, 1] },
    indices: Int32Array.from({ length: n }, (_, i) => i),
  });
}

Deno.test("batches() without preprocessing keeps the native shape and scales to [0, 1]", async () => {
  const { shapes, xs, ys } = await collect(tiny(5).batches(2));
  assertEquals(shapes, [[2, 2, 2, 1], [2, 2, 2, 1], [1, 2, 2, 1]]);
  assertEquals(ys, [0, 1, 0, 1, 0]);
  assertAlmostEquals(xs[2]![0]!, 40 / 255, 1e-6);
});

Deno.test("Shuffled batches repeat for a seed, change with it, and keep every example", async () => {
  const data = tiny(20);
  const order = async (seed: number) =>
    (await collect(data.batches(6, { shuffle: true, seed }))).xs.flat().filter((_, i) =>
      i % 4 === 0
    );
  const a = await order(1);
  assertEquals(await order(1), a);
  assertNotEquals(await order(2), a);
  assertEquals(
    a.map((v) => Math.round(v * 255)).toSorted((x, y) => x - y),
    [...Array(20).keys()].map((i) => i * 10),
  );
});

Deno.test("Preprocessing repeats gray to RGB, resizes, and scales to the range", async () => {
  const { shapes, xs } = await collect(
    tiny(2).batches(2, { preprocess: { height: 5, width: 3, channels: 3, range: [-1, 1] } }),
  );
  assertEquals(shapes, [[2, 5, 3, 3]]);
  for (const v of xs[0]!.slice(0, 45)) assertAlmostEquals(v, -1, 1e-6);
  for (const v of xs[0]!.slice(45)) assertAlmostEquals(v, (10 / 255) * 2 - 1, 1e-5);
});

Deno.test("Preprocessing reduces RGB to gray by luma and applies BGR order, mean and std", async () => {
  const red = {
    data: new Uint8Array([255, 0, 0, 255, 0, 0]),
    height: 1,
    width: 2,
    channels: 3 as const,
  };
  const gray = imagesToTensor([red], { height: 1, width: 2, channels: 1, range: [0, 1] });
  assertEquals(gray.shape, [1, 1, 2, 1]);
  assertAlmostEquals((await gray.data())[0]!, 0.299, 1e-5);
  const bgr = imagesToTensor([red], {
    height: 1,
    width: 1,
    channels: 3,
    range: [0, 1],
    channelOrder: "bgr",
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.25, 0.5],
  });
  const v = Array.from(await bgr.data());
  [-1, -2, 1].forEach((want, i) => assertAlmostEquals(v[i]!, want, 1e-5));
  tf.dispose([gray, bgr]);
});

Deno.test("Scaling to the range gives the float32 multiply and add's values, 0 added or not", async () => {
  // Every byte value, as one 16x16 gray image and as a 4x4x3 one repeated 16 times over.
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const cases = [
    { im: { data: all, height: 16, width: 16, channels: 1 as const }, channels: 1 as const },
    {
      im: { data: all.subarray(0, 48), height: 4, width: 4, channels: 3 as const },
      channels: 3 as const,
    },
  ];
  for (const { im, channels } of cases) {
    for (const range of [[0, 1], [-1, 1], [0, 255], [-0.5, 2.75]] as [number, number][]) {
      const p = { height: im.height, width: im.width, channels, range };
      const got = imagesToTensor([im, im], p);
      const want = tf.tidy(() => {
        const raw = tf.tensor4d(Float32Array.from([...im.data, ...im.data]), got.shape);
        return tf.add(tf.mul(raw, (range[1] - range[0]) / 255), range[0]);
      });
      assertEquals(Array.from(await got.data()), Array.from(await want.data()), `${range}`);
      const std = imagesToTensor([im], {
        ...p,
        mean: [0.25, 0.5, 1].slice(0, channels),
        std: [2, 4, 8].slice(0, channels),
      });
      const ref = tf.tidy(() =>
        tf.div(
          tf.sub(want.slice(0, 1), tf.tensor1d([0.25, 0.5, 1].slice(0, channels))),
          tf.tensor1d([2, 4, 8].slice(0, channels)),
        )
      );
      assertEquals(Array.from(await std.data()), Array.from(await ref.data()), `${range} mean/std`);
      tf.dispose([got, want, std, ref]);
    }
  }
});

Deno.test("Images of different sizes and channels are resized into one batch", async () => {
  const small = { data: new Uint8Array(4).fill(255), height: 2, width: 2, channels: 1 as const };
  const wide = { data: new Uint8Array(3 * 8 * 3), height: 3, width: 8, channels: 3 as const };
  const x = imagesToTensor([small, wide], { height: 4, width: 4, channels: 3, range: [0, 1] });
  assertEquals(x.shape, [2, 4, 4, 3]);
  const v = await x.data();
  assertAlmostEquals(v[0]!, 1, 1e-6);
  assertAlmostEquals(v[48]!, 0, 1e-6);
  x.dispose();
});

Deno.test("batches() rejects a bad batch size or preprocessing before the first batch", () => {
  const data = tiny(2);
  assertThrows(() => data.batches(0), RangeError, 'Invalid batch size "0"');
  assertThrows(
    // @ts-expect-error: 2 channels are not supported
    () => data.batches(1, { preprocess: { height: 2, width: 2, channels: 2, range: [0, 1] } }),
    RangeError,
    'channels "2"',
  );
  assertThrows(
    () =>
      data.batches(1, {
        preprocess: { height: 2, width: 2, channels: 3, range: [0, 1], mean: [1, 2] },
      }),
    RangeError,
    "give 1 value or 3",
  );
  assertThrows(
    () => data.batches(1, { preprocess: { height: 2, width: 2, channels: 1, range: [1, 0] } }),
    RangeError,
    "min < max",
  );
});

Deno.test("Iterating many batches keeps tf.memory().numTensors flat when the consumer disposes", async () => {
  const data = await loadBuiltin("mnist", { split: "train", perClass: 160 });
  const preprocess = { height: 32, width: 32, channels: 3, range: [-1, 1] } as const;
  const before = tf.memory().numTensors;
  let batches = 0;
  for await (const { xs, ys } of data.batches(16, { shuffle: true, seed: 7, preprocess })) {
    assertEquals(tf.memory().numTensors, before + 2);
    assertEquals(xs.shape.slice(1), [32, 32, 3]);
    xs.dispose();
    ys.dispose();
    batches++;
  }
  assertEquals(batches, data.size / 16);
  assertEquals(batches, 100);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("A list of decoded images is a dataset: counts, order, resize and shuffle", async () => {
  // Two 2x2 RGB images, every value 60 and 120, then one of value 180.
  const image = (v: number) => ({
    data: new Uint8Array(12).fill(v),
    height: 2,
    width: 2,
    channels: 3 as const,
  });
  const data = memoryDataset({
    name: "uploads",
    identity: "uploads#1",
    classes: ["cat", "dog"],
    images: [image(60), image(120), image(180)],
    labels: [1, 0, 1],
  });
  assertEquals([data.size, data.imageShape, data.counts], [3, [2, 2, 3], [1, 2]]);
  const { shapes, xs, ys } = await collect(data.batches(2));
  assertEquals(shapes, [[2, 2, 2, 3], [1, 2, 2, 3]]);
  assertEquals(ys, [1, 0, 1]);
  assertAlmostEquals(xs[1]![0]!, 180 / 255, 1e-6);
  const preprocess = { height: 4, width: 4, channels: 1, range: [-1, 1] } as const;
  const resized = await collect(data.batches(3, { preprocess, shuffle: true, seed: 3 }));
  assertEquals(resized.shapes, [[3, 4, 4, 1]]);
  assertEquals(resized.ys.toSorted(), [0, 1, 1]);
  const err = assertThrows(
    () => memoryDataset({ ...data, images: [image(1)], labels: [0, 1] }),
    RangeError,
  );
  assertEquals(err.message.startsWith('Invalid dataset "uploads": 1 images but 2 labels'), true);
});
