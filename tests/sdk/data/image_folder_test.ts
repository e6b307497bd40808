import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertInstanceOf,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { BadImagesError, loadImageFolder } from "../../../sdk/data/image_folder.ts";
import { collect, encodeJpeg, encodePng, petsFiles, useCpu, writeTree } from "./_fixtures.ts";

await useCpu();

const preprocess = { height: 4, width: 4, channels: 3, range: [0, 1] } as const;

Deno.test("loadImageFolder() reads PNG and JPEG classes from sorted subfolders", async () => {
  const root = await writeTree(petsFiles());
  const pets = await loadImageFolder(root);
  assertEquals(pets.classes, ["cat", "dog"]);
  assertEquals(pets.counts, [4, 3]);
  assertEquals(pets.size, 7);
  assertEquals(pets.imageShape, [8, 8, 3]);
  assertEquals(pets.skipped, 0);
  const { shapes, xs, ys } = await collect(pets.batches(7, { preprocess }));
  assertEquals(shapes, [[7, 4, 4, 3]]);
  const pixel = (i: number) => xs[0]!.slice(i * 48, i * 48 + 3);
  ys.forEach((label, i) => {
    const [r, g, b] = pixel(i) as [number, number, number];
    if (label === 1) {
      assert(b > 0.9 && r < 0.1, `dog ${i} should be blue, got ${[r, g, b]}`);
    } else if (Math.abs(r - g) < 0.01) {
      assertAlmostEquals(r, 128 / 255, 1e-5); // the gray PNG, repeated to RGB
    } else {
      assert(r > 0.99 && g < 0.01, `cat ${i} should be red, got ${[r, g, b]}`);
    }
  });
});

Deno.test("A corrupt image fails loading before training with its path listed", async () => {
  const root = await writeTree({
    ...petsFiles(),
    "cat/bad.png": "this is not a png",
    "dog/cut.png": encodePng(8, 8, [0, 0, 255]).slice(0, 60),
  });
  const error = await assertRejects(() => loadImageFolder(root), BadImagesError);
  assertInstanceOf(error, BadImagesError);
  assertEquals(error.badImages.map((b) => b.path), [
    join(root, "cat/bad.png"),
    join(root, "dog/cut.png"),
  ]);
  assertStringIncludes(error.message, `${join(root, "cat/bad.png")}: Not a PNG or JPEG file`);
  assertStringIncludes(error.message, "skipBad");
});

Deno.test("skipBad skips and counts unreadable images", async () => {
  const root = await writeTree({ ...petsFiles(), "cat/bad.jpg": "garbage" });
  const pets = await loadImageFolder(root, { skipBad: true });
  assertEquals(pets.skipped, 1);
  assertEquals(pets.badImages[0]?.path, join(root, "cat/bad.jpg"));
  assertEquals(pets.counts, [4, 3]);
  assertEquals((await collect(pets.batches(3))).ys.length, 7);
});

Deno.test("validate: header leaves truncated pixels to the batch that reads them", async () => {
  const root = await writeTree({
    ...petsFiles(),
    "dog/cut.png": encodePng(8, 8, [0, 0, 255]).slice(0, 60),
  });
  const pets = await loadImageFolder(root, { validate: "header" });
  assertEquals(pets.size, 8);
  await assertRejects(
    () => collect(pets.batches(8)),
    Error,
    `Cannot read image "${join(root, "dog/cut.png")}"`,
  );
});

Deno.test("loadImageFolder() explains a missing folder, no classes, one class and an empty class", async () => {
  await assertRejects(
    () => loadImageFolder("/no/such/folder"),
    Error,
    'Image folder "/no/such/folder" does not exist',
  );
  const flat = await writeTree({ "1.png": encodePng(2, 2, [0, 0, 0]) });
  await assertRejects(() => loadImageFolder(flat), Error, "has no class subfolders");
  const one = await writeTree({ "cat/1.png": encodePng(2, 2, [0, 0, 0]) });
  await assertRejects(() => loadImageFolder(one), Error, 'has only one class "cat"');
  const empty = await writeTree({ "cat/1.png": encodePng(2, 2, [0, 0, 0]), "dog/readme.txt": "" });
  await assertRejects(
    () => loadImageFolder(empty),
    Error,
    `Class folder "${join(empty, "dog")}" has no images`,
  );
  await assertRejects(
    () => loadImageFolder(join(one, "cat", "1.png")),
    Error,
    "is a file, not a folder",
  );
});

Deno.test("Symbolic links are followed only inside the folder", async () => {
  const outside = await writeTree({
    "secret.png": encodePng(2, 2, [1, 2, 3]),
    "cls/1.png": encodePng(2, 2, [1, 2, 3]),
  });
  const root = await writeTree(petsFiles());
  await Deno.symlink(join(root, "cat/1.png"), join(root, "dog/link.png"));
  assertEquals((await loadImageFolder(root)).counts, [4, 4]);
  await Deno.symlink(join(outside, "secret.png"), join(root, "cat/escape.png"));
  const error = await assertRejects(() => loadImageFolder(root), BadImagesError);
  assertStringIncludes(error.message, "outside the image folder");
  await Deno.remove(join(root, "cat/escape.png"));
  await Deno.symlink(join(outside, "cls"), join(root, "bird"));
  await assertRejects(
    () => loadImageFolder(root),
    Error,
    `Class folder "${join(root, "bird")}" is a symbolic link`,
  );
});

Deno.test("The identity is stable and changes when an image changes", async () => {
  const root = await writeTree(petsFiles());
  const a = await loadImageFolder(root);
  assertEquals((await loadImageFolder(root)).identity, a.identity);
  assertNotEquals((await loadImageFolder(root, { split: "train" })).identity, a.identity);
  await Deno.writeFile(join(root, "cat/1.png"), encodePng(9, 9, [255, 0, 0]));
  assertNotEquals((await loadImageFolder(root)).identity, a.identity);
});

Deno.test("Splits of a folder are disjoint and cover it", async () => {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 10; i++) {
    files[`a/${i}.png`] = encodePng(2, 2, [i, 0, 0]);
    files[`b/${i}.png`] = encodePng(2, 2, [100 + i, 0, 0]);
  }
  const root = await writeTree(files);
  const reds = async (split: "train" | "validation" | "test") =>
    (await collect((await loadImageFolder(root, { split, seed: 5 })).batches(20))).xs.flat()
      .filter((_, i) => i % 12 === 0).map((v) => Math.round(v * 255));
  const [train, val, test] = [await reds("train"), await reds("validation"), await reds("test")];
  assertEquals([train.length, val.length, test.length], [14, 2, 4]);
  assertEquals(
    [...train, ...val, ...test].toSorted((x, y) => x - y),
    Object.keys(files).map((_, i) => i).map((i) => i % 2 === 0 ? i / 2 : 100 + (i - 1) / 2)
      .toSorted((x, y) => x - y),
  );
});

Deno.test("Image folder batches are read from disk one batch at a time with tf.memory() flat", async () => {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 40; i++) {
    files[`a/${String(i).padStart(2, "0")}.png`] = encodePng(16, 16, [200, 0, 0]);
    files[`b/${String(i).padStart(2, "0")}.jpg`] = encodeJpeg(16, 16, [0, 0, 200]);
  }
  const root = await writeTree(files);
  const folder = await loadImageFolder(root);
  assertEquals(folder.size, 80);
  // Changed after opening: a batch that shows the new pixels read the file then, not a copy.
  await Deno.writeFile(join(root, "a/07.png"), encodePng(16, 16, [0, 200, 0]));
  const before = tf.memory().numTensors;
  let batches = 0;
  let green = 0;
  for await (const { xs, ys } of folder.batches(8, { preprocess })) {
    assertEquals(tf.memory().numTensors, before + 2);
    assertEquals(xs.shape, [8, 4, 4, 3]);
    const values = await xs.data();
    for (let i = 0; i < 8; i++) if (values[i * 48 + 1]! > 0.7) green++;
    tf.dispose([xs, ys]);
    batches++;
  }
  assertEquals([batches, green], [10, 1]);
  assertEquals(tf.memory().numTensors, before);
  // A file gone after opening fails the batch that needs it, naming the file.
  await Deno.remove(join(root, "b/39.jpg"));
  await assertRejects(
    () => collect(folder.batches(8)),
    Error,
    `Cannot read image "${join(root, "b/39.jpg")}"`,
  );
});
