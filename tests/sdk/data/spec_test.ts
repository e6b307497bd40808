import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "node:path";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from "../../../sdk/data/idx.ts";
import type { ImageFolderDataset } from "../../../sdk/data/image_folder.ts";
import { openDataset, parseDataSpec } from "../../../sdk/data/spec.ts";
import { idxBytes, petsFiles, useCpu, writeTree } from "./_fixtures.ts";

await useCpu();

Deno.test("parseDataSpec() reads every form with typed options", () => {
  assertEquals(parseDataSpec("fashion-mnist"), {
    kind: "builtin",
    name: "fashion-mnist",
    options: {},
  });
  assertEquals(parseDataSpec("mnist?perClass=10&seed=1&split=validation&testFraction=0.25"), {
    kind: "builtin",
    name: "mnist",
    options: { perClass: 10, seed: 1, split: "validation", testFraction: 0.25 },
  });
  assertEquals(
    parseDataSpec("dir:data/my%20pets?skipBad=1&validate=header&extensions=.png,.webp"),
    {
      kind: "dir",
      path: "data/my%20pets",
      options: { skipBad: true, validate: "header", extensions: [".png", ".webp"] },
    },
  );
  assertEquals(parseDataSpec("dir:/d?skipBad"), {
    kind: "dir",
    path: "/d",
    options: { skipBad: true },
  });
  assertEquals(parseDataSpec("idx:a.gz,b.gz?classes=x,y"), {
    kind: "idx",
    images: "a.gz",
    labels: "b.gz",
    options: { classes: ["x", "y"] },
  });
});

/** Specs parseDataSpec() rejects, each with a part of the message that says why. */
const REJECTED: [spec: string, says: string][] = [
  ["cifar10", 'unknown dataset "cifar10"'],
  ["mnist?skipBad=1", 'unknown option "skipBad" for mnist; valid options: split, perClass'],
  ["mnist?perClass=ten", 'option "perClass" needs a number, got "ten"'],
  ["mnist?split=dev", 'split "dev" is not one of'],
  ["mnist?seed=1&seed=2", 'option "seed" is given twice'],
  ["idx:only-images", "needs two paths"],
  ["dir:", "needs a folder path"],
];

Deno.test("parseDataSpec() rejects unknown schemes and options, listing the valid forms", () => {
  for (const [spec, says] of REJECTED) {
    assertThrows(() => parseDataSpec(spec), SyntaxError, says);
  }
  assertStringIncludes(
    assertThrows(() => parseDataSpec("cifar10"), SyntaxError).message,
    "mnist[?OPTIONS], fashion-mnist[?OPTIONS], dir:PATH[?OPTIONS], idx:IMAGES,LABELS[?OPTIONS]",
  );
});

Deno.test("openDataset() opens each scheme, with spec options over defaults", async () => {
  const mnist = await openDataset("mnist?perClass=3", {
    split: "test",
    perClass: 10,
    skipBad: true,
  });
  assertEquals([mnist.name, mnist.size], ["mnist (test)", 30]);
  const root = await writeTree({ ...petsFiles(), "cat/bad.png": "corrupt" });
  const pets = await openDataset(`dir:${root}?skipBad=1`) as ImageFolderDataset;
  assertEquals([pets.size, pets.skipped], [7, 1]);
  const idx = await writeTree({
    images: idxBytes(IDX_IMAGES_MAGIC, [4, 1, 1], new Uint8Array(4)),
    labels: idxBytes(IDX_LABELS_MAGIC, [4], new Uint8Array([0, 1, 0, 1])),
  });
  const data = await openDataset(
    `idx:${join(idx, "images")},${join(idx, "labels")}?classes=no,yes`,
  );
  assertEquals([data.classes, data.counts], [["no", "yes"], [2, 2]]);
});

/** Misspelt specs, each with the message that names what it meant. */
const MISSPELT: [spec: string, says: string][] = [
  [
    "fashion-mnst",
    'Invalid data spec "fashion-mnst": unknown dataset "fashion-mnst" (did you mean "fashion-mnist"?). Valid forms:',
  ],
  [
    "mnist?perclass=10",
    'unknown option "perclass" for mnist (did you mean "perClass"?); valid options: split, perClass',
  ],
];

Deno.test("parseDataSpec() suggests the dataset or option a misspelt spec meant", () => {
  for (const [spec, says] of MISSPELT) {
    assertThrows(() => parseDataSpec(spec), SyntaxError, says);
  }
  // Nothing close: no guess.
  const far = assertThrows(() => parseDataSpec("cifar10"), SyntaxError);
  assert(!far.message.includes("did you mean"), far.message);
});
