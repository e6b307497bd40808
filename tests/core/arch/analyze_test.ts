import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { analyze, type Architecture } from "../../../core/arch/analyze.ts";
import { loadNsfwjsModel, readNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";

await tf.setBackend("cpu");

/** Every layer tfjs knows has the output shape and parameter count tfjs reports. */
function assertMatchesTfjs(arch: Architecture, model: tf.LayersModel): void {
  assertEquals(arch.totalParams, model.countParams());
  const trainable = model.trainableWeights.reduce(
    (n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 0), 1),
    0,
  );
  assertEquals(arch.trainableParams, trainable);
  const byName = new Map(arch.layers.map((l) => [l.name, l]));
  for (const layer of model.layers) {
    const mine = byName.get(layer.name);
    assert(mine, `layer "${layer.name}" is missing from the analysis`);
    assertEquals(mine.outputShape, layer.outputShape, `output shape of "${layer.name}"`);
    assertEquals(mine.params, layer.countParams(), `params of "${layer.name}"`);
  }
  assertEquals(arch.outputShape, model.outputs[0]?.shape);
}

/**
 * Analyzes a model built for one test: no tensor is left behind, the analysis
 * matches tfjs, and the model is disposed (the analysis is plain data).
 */
function analyzeBuilt(model: tf.LayersModel): Architecture {
  const start = tf.memory().numTensors;
  const arch = analyze(model);
  assertEquals(tf.memory().numTensors, start);
  assertMatchesTfjs(arch, model);
  model.dispose();
  return arch;
}

/**
 * Analyzes an nsfwjs checkpoint's model.json, checks the analysis against the
 * loaded LayersModel, and checks that analyzing the LayersModel itself (its
 * topology only, no tensor left behind) gives the same shapes and cut points.
 */
async function analyzeNsfwjs(name: "mobilenet_v2" | "inception_v3"): Promise<Architecture> {
  const { modelJson } = await readNsfwjsModel(name);
  const arch = analyze(modelJson);
  const model = await loadNsfwjsModel(name);
  try {
    assertMatchesTfjs(arch, model);
    const tensorsBefore = tf.memory().numTensors;
    const fromModel = analyze(model);
    assertEquals(tf.memory().numTensors, tensorsBefore);
    assertEquals(fromModel.layers.map((l) => l.outputShape), arch.layers.map((l) => l.outputShape));
    assertEquals(fromModel.cutPoints, arch.cutPoints);
  } finally {
    model.dispose();
  }
  return arch;
}

Deno.test("analyze() reports nsfwjs MobileNetV2 as a 7x7x1280 map at stride 32 with tfjs's shapes and params", async () => {
  const arch = await analyzeNsfwjs("mobilenet_v2");
  assertEquals(arch.totalParams, 2619461);
  assertEquals(arch.featureCut, "out_relu");
  assertEquals(arch.featureShape, [null, 7, 7, 1280]);
  assertEquals(arch.totalStride, 32);
  assertEquals(arch.headKind, "pool-flatten-dense");
  assertEquals(arch.headInputSize, [1, 1]);
  assertEquals(arch.headLayers, [
    "average_pooling2d_1",
    "flatten_1",
    "dense_1",
    "dropout_2",
    "dense_2",
    "dropout_3",
    "dense_3",
  ]);
  // Halving with ZeroPadding(0,1) and a 'valid' 3x3 stride-2 window floors: 224 / 2^5 = 7, 223 gives 6.
  assertEquals(arch.minInputSize, [224, 224]);
  assertEquals(arch.warnings, []);
  // Residual blocks: the Add output is a cut point, the layers inside the block are not.
  assert(arch.cutPoints.includes("block_4_add"));
  assert(!arch.cutPoints.includes("block_4_project"));
  assert(arch.cutPoints.includes("block_3_project_BN"));
  const pos = new Map(arch.layers.map((l, i) => [l.name, i]));
  const cutPos = arch.cutPoints.map((n) => pos.get(n) ?? -1);
  assertEquals(cutPos, [...cutPos].sort((a, b) => a - b), "cut points in topological order");
  assert(JSON.parse(JSON.stringify(arch)).layers.length === 162, "plain JSON");
});

Deno.test("analyze() reports nsfwjs InceptionV3 as an 8x8x2048 map at stride 32 with tfjs's shapes and params", async () => {
  const arch = await analyzeNsfwjs("inception_v3");
  assertEquals(arch.featureCut, "mixed10");
  assertEquals(arch.featureShape, [null, 8, 8, 2048]);
  assertEquals(arch.totalStride, 32);
  assertEquals(arch.headKind, "pool-flatten-dense");
  assertEquals(arch.minInputSize, [299, 299]);
  // After the plain stem, only the module outputs carry the whole graph.
  const stemEnd = arch.cutPoints.indexOf("max_pooling2d_2");
  assertEquals(stemEnd, 17);
  assertEquals(
    arch.cutPoints.slice(stemEnd + 1, stemEnd + 12),
    Array.from({ length: 11 }, (_, i) => `mixed${i}`),
  );
});

Deno.test("analyze() with an inputShape says what MobileNetV2 does at 448x448", async () => {
  const { modelJson } = await readNsfwjsModel("mobilenet_v2");
  const arch = analyze(modelJson, { inputShape: [448, 448, 3] });
  assertEquals(arch.inputShape, [null, 448, 448, 3]);
  assertEquals(arch.nativeInputShape, [null, 224, 224, 3]);
  assertEquals(arch.featureShape, [null, 14, 14, 1280]);
  assertEquals(arch.totalParams, 2619461, "weights do not change with the input");
  assertEquals(arch.layers.find((l) => l.name === "flatten_1")?.outputShape, [null, 5120]);
  assertEquals(arch.warnings.length, 1);
  assertStringIncludes(arch.warnings[0] ?? "", 'Layer "dense_1" (Dense) has weights for 1280');
  assertStringIncludes(arch.warnings[0] ?? "", "convolutionalize");
});

Deno.test("analyze() matches tfjs on a Sequential LeNet and computes its receptive field and FLOPs by hand", () => {
  const arch = analyzeBuilt(tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [32, 32, 1], filters: 6, kernelSize: 5, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 120, activation: "relu" }),
      tf.layers.dense({ units: 84, activation: "relu" }),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  }));
  assertEquals(arch.totalParams, 61706);
  assertEquals(arch.headKind, "flatten-dense");
  assertEquals(arch.featureShape, [null, 5, 5, 16]);
  assertEquals(arch.headInputSize, [5, 5]);
  // 5x5 conv: 5; pool 2: 5+1=6, jump 2; 5x5 conv: 6+4*2=14; pool 2: 14+2=16, jump 4.
  assertEquals(arch.receptiveField, 16);
  assertEquals(arch.totalStride, 4);
  // 28*28*6*25*1 + 10*10*16*25*6 + 400*120 + 120*84 + 84*10 multiply-adds, times 2.
  assertEquals(arch.flops, 2 * (117600 + 240000 + 48000 + 10080 + 840));
  // 4 -> conv 0: the smallest input keeps every layer at >= 1: 16 -> 12 -> 6 -> 2 -> 1.
  assertEquals(arch.minInputSize, [16, 16]);
});

Deno.test("analyze() reports each layer's window, stride, dilation, padding, pads and frozen params as computed by hand", () => {
  const arch = analyzeBuilt(tf.sequential({
    name: "fields",
    layers: [
      tf.layers.zeroPadding2d({ inputShape: [20, 20, 3], padding: [[1, 2], [0, 3]], name: "pad" }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, name: "c1", trainable: false }),
      tf.layers.conv2d({
        filters: 8,
        kernelSize: 3,
        dilationRate: 2,
        padding: "same",
        name: "dil",
      }),
      tf.layers.batchNormalization({ name: "bn" }),
      tf.layers.maxPooling2d({ poolSize: 2, padding: "same", name: "pool" }),
      tf.layers.cropping2D({ cropping: [[1, 0], [0, 1]], name: "crop" }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({ units: 4, name: "fc" }),
    ],
  }));
  const pick = (name: string) => {
    const l = arch.layers.find((x) => x.name === name)!;
    return [l.kernel, l.stride, l.dilation, l.padding, l.pads, l.receptiveField, l.jump];
  };
  // 20x20 padded by 1 + 2 rows and 0 + 3 columns: 23x23, receptive field unchanged.
  assertEquals(pick("pad"), [null, [1, 1], null, null, [1, 2, 0, 3], [1, 1], [1, 1]]);
  // 3x3 'valid' stride 2: (23 - 3) / 2 + 1 = 11; field 3, jump 2.
  assertEquals(pick("c1"), [[3, 3], [2, 2], [1, 1], "valid", null, [3, 3], [2, 2]]);
  // Dilation 2 spreads the 3x3 taps over 5 pixels of the map, 2 input pixels apart: 3 + 4 * 2.
  assertEquals(pick("dil"), [[3, 3], [1, 1], [2, 2], "same", null, [11, 11], [2, 2]]);
  // 2x2 pool: 11 + 1 * 2 = 13, jump 4; 'same' rounds 11 / 2 up to 6.
  assertEquals(pick("pool"), [[2, 2], [2, 2], [1, 1], "same", null, [13, 13], [4, 4]]);
  // Cropping is a negative pad.
  assertEquals(pick("crop"), [null, [1, 1], null, null, [-1, 0, 0, -1], [13, 13], [4, 4]]);
  assertEquals(arch.layers.find((l) => l.name === "crop")?.outputShape, [null, 5, 5, 8]);
  // Flatten sees the whole 5x5 map: 13 + 4 * 4.
  assertEquals(arch.layers.find((l) => l.name === "flat")?.receptiveField, [29, 29]);
  // The frozen conv and BatchNormalization's moving statistics do not train.
  const c1 = arch.layers.find((l) => l.name === "c1")!;
  assertEquals([c1.trainable, c1.params, c1.trainableParams], [false, 224, 0]);
  assertEquals([arch.trainableParams, arch.nonTrainableParams], [584 + 16 + 804, 224 + 16]);
  assertEquals([arch.totalStride, arch.receptiveField], [4, 13]);
  // 2 x multiply-adds: 11*11*8 outputs of 27 taps, 11*11*8 of 72, 200 * 4.
  assertEquals(arch.flops, 2 * (11 * 11 * 8 * 27 + 11 * 11 * 8 * 72 + 200 * 4));
  // The crop needs a 2x2 pooled map: 3x3 before the pool, 3 = (h + 3 - 3) / 2 + 1 gives h = 4.
  assertEquals(arch.minInputSize, [4, 4]);
});

Deno.test("analyze() gives receptive fields of simple stacks as computed by hand", () => {
  const stack = (layers: tf.layers.Layer[]) => analyze(tf.sequential({ layers }));
  const two3x3 = stack([
    tf.layers.conv2d({ inputShape: [16, 16, 1], filters: 1, kernelSize: 3, padding: "same" }),
    tf.layers.conv2d({ filters: 1, kernelSize: 3, padding: "same" }),
  ]);
  assertEquals(two3x3.layers.map((l) => l.receptiveField), [[1, 1], [3, 3], [5, 5]]);
  assertEquals(two3x3.headKind, "fully-convolutional");
  assertEquals(two3x3.minInputSize, [1, 1]);
  const strided = stack([
    tf.layers.conv2d({ inputShape: [16, 16, 1], filters: 1, kernelSize: 3, strides: 2 }),
    tf.layers.conv2d({ filters: 1, kernelSize: 3 }),
  ]);
  assertEquals(strided.layers.at(-1)?.receptiveField, [7, 7]);
  assertEquals(strided.layers.at(-1)?.jump, [2, 2]);
  assertEquals(strided.layers.at(-1)?.outputShape, [null, 5, 5, 1]);
  // 'valid' 3x3 s2 then 3x3: 7 -> 3 -> 1.
  assertEquals(strided.minInputSize, [7, 7]);
  const dilated = stack([
    tf.layers.conv2d({ inputShape: [16, 16, 1], filters: 1, kernelSize: 3, dilationRate: 2 }),
  ]);
  assertEquals(dilated.layers.at(-1)?.receptiveField, [5, 5]);
  const nonSquare = stack([
    tf.layers.conv2d({ inputShape: [16, 16, 1], filters: 1, kernelSize: [1, 7], padding: "same" }),
    tf.layers.conv2d({ filters: 1, kernelSize: [7, 1], padding: "same" }),
  ]);
  assertEquals(nonSquare.layers.map((l) => l.receptiveField), [[1, 1], [1, 7], [7, 7]]);
});

Deno.test("analyze() follows a ResNet-style block: shapes match tfjs and the Add is the only cut inside", () => {
  const input = tf.input({ shape: [32, 32, 3] });
  const stem = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", name: "stem" })
    .apply(input) as tf.SymbolicTensor;
  const a = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", name: "a" })
    .apply(stem) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: "bn" }).apply(a) as tf.SymbolicTensor;
  const b = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", name: "b" })
    .apply(bn) as tf.SymbolicTensor;
  const add = tf.layers.add({ name: "add" }).apply([stem, b]) as tf.SymbolicTensor;
  const relu = tf.layers.reLU({ name: "relu" }).apply(add) as tf.SymbolicTensor;
  const pool = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(relu) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4, name: "fc" }).apply(pool) as tf.SymbolicTensor;
  const arch = analyzeBuilt(tf.model({ inputs: input, outputs: out }));
  assertEquals(arch.cutPoints.slice(1), ["stem", "add", "relu", "gap", "fc"]);
  assertEquals(arch.headKind, "global-pool-dense");
  assertEquals(arch.featureCut, "relu");
  assertEquals(arch.headInputSize, null);
  // The longer branch wins: 3 (stem) + 2 + 2.
  assertEquals(arch.receptiveField, 7);
  assertEquals(arch.layers.find((l) => l.name === "add")?.inbound, ["stem", "b"]);
  // BatchNormalization: gamma and beta train, the moving statistics do not.
  const bnInfo = arch.layers.find((l) => l.name === "bn");
  assertEquals([bnInfo?.params, bnInfo?.trainableParams], [32, 16]);
});

Deno.test("analyze() follows an Inception-style Concatenate block with pooling and 'valid' branches", () => {
  const input = tf.input({ shape: [35, 35, 16] });
  const b1 = tf.layers.conv2d({ filters: 8, kernelSize: 1, name: "b1" }).apply(
    input,
  ) as tf.SymbolicTensor;
  const b2a = tf.layers.conv2d({ filters: 8, kernelSize: 1, name: "b2a" })
    .apply(input) as tf.SymbolicTensor;
  const b2 = tf.layers.conv2d({ filters: 12, kernelSize: 5, padding: "same", name: "b2" })
    .apply(b2a) as tf.SymbolicTensor;
  const b3 = tf.layers.separableConv2d({ filters: 6, kernelSize: 3, padding: "same", name: "b3" })
    .apply(input) as tf.SymbolicTensor;
  const b4 = tf.layers.maxPooling2d({ poolSize: 3, strides: 1, padding: "same", name: "b4" })
    .apply(input) as tf.SymbolicTensor;
  const mixed = tf.layers.concatenate({ name: "mixed" }).apply([
    b1,
    b2,
    b3,
    b4,
  ]) as tf.SymbolicTensor;
  const reduce = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, name: "reduce" })
    .apply(mixed) as tf.SymbolicTensor;
  const pad = tf.layers.zeroPadding2d({ padding: [[0, 1], [2, 0]], name: "pad" })
    .apply(reduce) as tf.SymbolicTensor;
  const crop = tf.layers.cropping2D({ cropping: [[1, 0], [0, 1]], name: "crop" })
    .apply(pad) as tf.SymbolicTensor;
  const flat = tf.layers.flatten({ name: "flat" }).apply(crop) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, name: "fc" }).apply(flat) as tf.SymbolicTensor;
  const arch = analyzeBuilt(tf.model({ inputs: input, outputs: out }));
  assertEquals(arch.layers.find((l) => l.name === "mixed")?.outputShape, [null, 35, 35, 42]);
  assertEquals(arch.cutPoints.slice(1), ["mixed", "reduce", "pad", "crop", "flat", "fc"]);
  assertEquals(arch.layers.find((l) => l.name === "mixed")?.receptiveField, [5, 5]);
  assertEquals(arch.headKind, "flatten-dense");
  assertEquals(arch.featureCut, "crop");
  // 35 -> 3x3 stride 2 -> 17; padded to 18x19, cropped to 17x18.
  assertEquals(arch.headInputSize, [17, 18]);
});

Deno.test("analyze() treats a nested Sequential as one layer with its inner analysis", () => {
  const inner = tf.sequential({
    name: "trunk",
    layers: [
      tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 4, kernelSize: 3, strides: 2 }),
      tf.layers.conv2d({ filters: 4, kernelSize: 3 }),
    ],
  });
  const input = tf.input({ shape: [16, 16, 3] });
  const features = inner.apply(input) as tf.SymbolicTensor;
  const gap = tf.layers.globalMaxPooling2d({ name: "gap" }).apply(features) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: "fc" }).apply(gap) as tf.SymbolicTensor;
  const arch = analyzeBuilt(tf.model({ inputs: input, outputs: out }));
  const trunk = arch.layers.find((l) => l.name === "trunk");
  assertEquals(trunk?.outputShape, [null, 5, 5, 4]);
  assertEquals(trunk?.receptiveField, [7, 7]);
  assertEquals(trunk?.inner?.layers.length, 3);
  assertEquals(arch.totalStride, 2);
  assertEquals(arch.minInputSize, [7, 7]);
});

Deno.test("analyze() passes unknown layers through with a warning and rejects non-Keras input", () => {
  const topology = {
    class_name: "Sequential",
    config: {
      name: "custom",
      layers: [
        {
          class_name: "Conv2D",
          config: {
            name: "c",
            filters: 2,
            kernel_size: [3, 3],
            batch_input_shape: [null, 8, 8, 1],
          },
        },
        { class_name: "MyNorm", config: { name: "n" } },
        { class_name: "Flatten", config: { name: "f" } },
      ],
    },
  };
  const arch = analyze({ modelTopology: topology, weightsManifest: [] });
  assertEquals(arch.layers.map((l) => l.outputShape), [
    [null, 8, 8, 1],
    [null, 6, 6, 2],
    [null, 6, 6, 2],
    [null, 72],
  ]);
  assertEquals(arch.warnings.length, 1);
  assertStringIncludes(arch.warnings[0] ?? "", 'class "MyNorm"');
  assertThrows(() => analyze({ class_name: "Dense", config: {} }), TypeError, "Cannot analyze");
});
