import { assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { mulberry32, resolveSplit, selectSplit } from "../../../sdk/data/_split.ts";

const labels = Uint8Array.from({ length: 300 }, (_, i) => i % 3);
const pick = (split: "train" | "validation" | "test" | "all", seed = 0, perClass?: number) =>
  Array.from(
    selectSplit(labels, 3, resolveSplit({ split, seed, ...(perClass ? { perClass } : {}) }, "all")),
  );

Deno.test("mulberry32() gives the same stream for the same seed", () => {
  const [a, b, c] = [mulberry32(9), mulberry32(9), mulberry32(10)];
  const first = [a(), a(), a()];
  assertEquals([b(), b(), b()], first);
  assertNotEquals([c(), c(), c()], first);
});

Deno.test("selectSplit() partitions every class into test, validation and train", () => {
  const [test, val, train] = [pick("test"), pick("validation"), pick("train")];
  assertEquals([test.length, val.length, train.length], [60, 30, 210]);
  assertEquals([...test, ...val, ...train].toSorted((a, b) => a - b), [...labels.keys()]);
  assertEquals(pick("all").toSorted((a, b) => a - b), [...labels.keys()]);
  assertNotEquals(pick("train", 1), train);
});

Deno.test("selectSplit() takes perClass from the head of the split, leaving test alone", () => {
  const train = pick("train", 4);
  const ten = pick("train", 4, 10);
  assertEquals(ten.length, 30);
  assertEquals(ten.every((i) => train.includes(i)), true);
  assertEquals(pick("train", 4, 20).filter((i) => ten.includes(i)).length, 30);
  assertEquals(pick("test", 4), pick("test", 4));
});

Deno.test("resolveSplit() rejects bad values with the value named", () => {
  assertThrows(() => resolveSplit({ seed: 1.5 }, "all"), RangeError, 'Invalid seed "1.5"');
  assertThrows(
    () => resolveSplit({ testFraction: 1 }, "all"),
    RangeError,
    'Invalid testFraction "1"',
  );
  // @ts-expect-error: not a split
  assertThrows(() => resolveSplit({ split: "dev" }, "all"), RangeError, 'Invalid split "dev"');
});
