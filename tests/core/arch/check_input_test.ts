import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { analyze } from "../../../core/arch/analyze.ts";
import { checkInput } from "../../../core/arch/check_input.ts";
import { readNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";

const mobilenet = analyze((await readNsfwjsModel("mobilenet_v2")).modelJson);

const lenet = analyze(tf.sequential({
  name: "lenet",
  layers: [
    tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5, name: "c1" }),
    tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }),
    tf.layers.conv2d({ filters: 16, kernelSize: 5, name: "c2" }),
    tf.layers.maxPooling2d({ poolSize: 2, name: "p2" }),
    tf.layers.flatten({ name: "flat" }),
    tf.layers.dense({ units: 10, name: "fc" }),
  ],
}));

Deno.test("checkInput() accepts the size a model was trained at", () => {
  const check = checkInput(mobilenet, { height: 224, width: 224, channels: 3 });
  assertEquals(check.findings, []);
  assert(check.ok);
  assertEquals(check.message, 'Can run "model_1" on 224x224x3: its output is [5]');
});

Deno.test("checkInput() explains a too-small grayscale input: channels and the layer that collapses", () => {
  const check = checkInput(mobilenet, { height: 30, width: 30, channels: 1 });
  assert(!check.ok);
  assertEquals(check.findings.map((f) => f.kind), ["channel-mismatch", "too-small"]);
  assertStringIncludes(check.message, 'Cannot run "model_1" on 30x30x1: ');
  assertStringIncludes(check.message, "adaptInputChannels(model, 1)");
  const small = check.findings[1];
  assertEquals(small?.layer, "block_13_depthwise");
  assertEquals(small?.minInputSize, [224, 224]);
  assertEquals(small?.nearestSizes, [{ height: 224, width: 224 }]);
  assertStringIncludes(small?.message ?? "", "the smallest input it accepts is 224x224");
});

Deno.test("checkInput() says a Flatten-Dense head fixes the size and suggests convolutionalize", () => {
  const check = checkInput(lenet, { height: 32, width: 32, channels: 1 });
  assert(!check.ok);
  const [head] = check.findings;
  assertEquals(head?.kind, "fixed-by-head");
  assertStringIncludes(head?.message ?? "", "flattens a 5x5 map");
  assertStringIncludes(head?.message ?? "", "trained on 4x4");
  assertStringIncludes(head?.message ?? "", "convolutionalize(model)");
  // Only 28 gives the 4x4 map without dropping pixels: 28 -> 24 -> 12 -> 8 -> 4.
  assertEquals(head?.nearestSizes, [{ height: 28, width: 28 }]);
  const big = checkInput(mobilenet, { height: 448, width: 448, channels: 3 });
  assertEquals(big.findings.map((f) => f.kind), ["fixed-by-head"]);
  assertStringIncludes(big.message, 'cut the network at "out_relu"');
});

Deno.test("checkInput() warns when a 'valid' stride drops border pixels and gives the nearest even sizes", () => {
  const check = checkInput(mobilenet, { height: 230, width: 230, channels: 3 }, {
    dropLayer: "out_relu",
  });
  assert(check.ok);
  const [f] = check.findings;
  assertEquals(f?.kind, "stride-mismatch");
  assertEquals(f?.severity, "warning");
  assertEquals(f?.layer, "block_1_depthwise");
  assertEquals(f?.nearestSizes, [{ height: 224, width: 224 }, { height: 256, width: 256 }]);
  assertStringIncludes(check.message, "ignores the last 1 row and 1 column");
  // Cut at the features, the head no longer fixes the size: 256 gives an 8x8 map.
  const cut = checkInput(mobilenet, { height: 256, width: 320, channels: 3 }, {
    dropLayer: "out_relu",
  });
  assertEquals(cut.findings, []);
  assertStringIncludes(cut.message, "it gives a 8x10 map");
});

Deno.test("checkInput() names the nearest valid sizes below and above for the whole network", () => {
  const check = checkInput(mobilenet, { height: 230, width: 230, channels: 3 });
  assert(check.ok);
  const [f] = check.findings;
  assertEquals(f?.kind, "stride-mismatch");
  assertEquals(f?.layer, "block_1_depthwise");
  // The pooling head takes 7x7 of the 8x8 map at 256 and still fits its Dense weights.
  assertEquals(f?.nearestSizes, [{ height: 224, width: 224 }, { height: 256, width: 256 }]);
  assertStringIncludes(check.message, "are 224x224 or 256x256");
  assert(checkInput(mobilenet, { height: 256, width: 256, channels: 3 }).ok);
  // A head that gets the wrong map points back to the size it was trained at.
  const big = checkInput(mobilenet, { height: 448, width: 448, channels: 3 });
  assertEquals(big.findings[0]?.nearestSizes, [{ height: 224, width: 224 }]);
});

Deno.test("checkInput() notes the score-map alignment of a 'same' stride on an odd size", () => {
  const arch = analyze(tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [32, 32, 3],
        filters: 2,
        kernelSize: 3,
        strides: 2,
        padding: "same",
      }),
      tf.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: "same" }),
    ],
  }));
  assertEquals(checkInput(arch, { height: 36, width: 36, channels: 3 }).findings, []);
  const odd = checkInput(arch, { height: 33, width: 36, channels: 3 });
  assert(odd.ok);
  assertEquals(odd.findings[0]?.kind, "stride-mismatch");
  assertStringIncludes(odd.message, "no longer aligns with steps of the total stride 4");
  assertEquals(odd.findings[0]?.nearestSizes, [{ height: 32, width: 32 }, {
    height: 36,
    width: 40,
  }]);
});

Deno.test("checkInput() refuses to cut inside a residual block and names the nearest cut points", () => {
  const check = checkInput(mobilenet, { height: 224, width: 224, channels: 3 }, {
    dropLayer: "block_4_project",
  });
  assert(!check.ok);
  const [f] = check.findings;
  assertEquals(f?.kind, "not-a-cut-point");
  assertEquals(f?.nearestCutPoints, ["block_3_project_BN", "block_4_add"]);
  assertStringIncludes(check.message, 'cut after "block_3_project_BN" or "block_4_add" instead');
  assertStringIncludes(check.message, "pretrained filters");
  const missing = checkInput(lenet, { height: 28, width: 28, channels: 1 }, { dropLayer: "nope" });
  assertStringIncludes(missing.message, 'there is no layer "nope"');
});

Deno.test("checkInput() rejects sizes that are not positive integers", () => {
  assertThrows(
    () => checkInput(lenet, { height: 0, width: 28, channels: 1 }),
    RangeError,
    "height must be a positive integer",
  );
});
