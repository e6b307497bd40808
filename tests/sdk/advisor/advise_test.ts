import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { advise, DEFAULT_THRESHOLDS, earlyCutPoint } from "../../../sdk/advisor/advise.ts";
import { analyze } from "../../../core/arch/analyze.ts";
import { lenet5, resnetMini } from "../../../zoo/_recipes.ts";

const lenet = analyze(lenet5());
const base = {
  cutPoints: lenet.cutPoints,
  featureCut: lenet.featureCut,
  layers: lenet.layers,
  source: "mnist",
};

Deno.test("advise() picks the four scenarios of the design table", () => {
  const pick = (examplesPerClass: number, similarity: number) =>
    advise({ ...base, examplesPerClass, similarity }).strategy;
  assertEquals(pick(10, 0.98), "features-top");
  assertEquals(pick(10, 0.05), "features-early");
  assertEquals(pick(2000, 0.98), "partial");
  assertEquals(pick(2000, 0.05), "full");
});

Deno.test("advise() counts a value at a threshold as large and similar", () => {
  const { examplesPerClass, similarity } = DEFAULT_THRESHOLDS;
  assertEquals(advise({ ...base, examplesPerClass, similarity }).strategy, "partial");
  assertEquals(
    advise({ ...base, examplesPerClass: examplesPerClass - 1, similarity: similarity - 0.01 })
      .strategy,
    "features-early",
  );
});

Deno.test("advise() explains its choice with the measured figures and the thresholds", () => {
  const advice = advise({ ...base, examplesPerClass: 10, similarity: 0.214 });
  assertEquals(advice.cut, "pool1");
  assertEquals(advice.thresholds, { ...DEFAULT_THRESHOLDS });
  assertEquals(
    advice.explanation,
    `10 examples per class (< 1000) and similarity 0.21 to mnist (< 0.8): training a linear classifier on codes from the earlier cut point "pool1".`,
  );
  const custom = advise({
    ...base,
    examplesPerClass: 10,
    similarity: 0.3,
    thresholds: { similarity: 0.2 },
  });
  assertEquals(custom.strategy, "features-top");
  assertStringIncludes(custom.explanation, "similarity 0.30 to mnist (≥ 0.2)");
});

Deno.test("earlyCutPoint() takes the middle of the conv trunk's cut points", () => {
  assertEquals(earlyCutPoint(lenet.cutPoints, lenet.featureCut, lenet.layers), "pool1");
  const resnet = analyze(resnetMini());
  assertEquals(resnet.featureCut, "stage3_out");
  assertEquals(earlyCutPoint(resnet.cutPoints, resnet.featureCut, resnet.layers), "stage1_add");
  assertEquals(earlyCutPoint(["input", "top"], "top"), undefined);
});

Deno.test("advise() falls back to the top cut point when there is no earlier one", () => {
  const advice = advise({ examplesPerClass: 5, similarity: 0, cutPoints: ["input", "dense"] });
  assertEquals(advice.strategy, "features-top");
  assertEquals(advice.cut, undefined);
  assertStringIncludes(advice.explanation, "no earlier cut point");
});

Deno.test("advise() rejects a similarity outside [0, 1] and a negative size", () => {
  assertThrows(
    () => advise({ ...base, examplesPerClass: 10, similarity: 1.5 }),
    RangeError,
    `"1.5"`,
  );
  assertThrows(
    () => advise({ ...base, examplesPerClass: -1, similarity: 0.5 }),
    RangeError,
    `"-1"`,
  );
});

Deno.test("advise() flattens small early-cut codes and average-pools large ones", () => {
  const arch = analyze(lenet5());
  const small = advise({
    examplesPerClass: 10,
    similarity: 0.1,
    cutPoints: arch.cutPoints,
    featureCut: arch.featureCut,
    layers: arch.layers,
  });
  assertEquals(small.strategy, "features-early");
  assertEquals(small.codes, "flatten", `pool1 is 14x14x6 = 1176 values`);
  const big = advise({
    examplesPerClass: 10,
    similarity: 0.1,
    cutPoints: ["input", "a", "b"],
    featureCut: "b",
    layers: [{ name: "a", outputShape: [null, 112, 112, 64] }, {
      name: "b",
      outputShape: [null, 7, 7, 8],
    }],
  });
  assertEquals(big.cut, "a");
  assertEquals(big.codes, "avg");
});
