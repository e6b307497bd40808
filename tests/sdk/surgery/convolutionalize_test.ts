/** convolutionalize() and resizeInput(): score maps and any-size predictions match the original network numerically. */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals, assertLess, assertThrows } from "@std/assert";
import {
  convolutionalize,
  resizeInput,
  scoreMapGeometry,
} from "../../../sdk/surgery/convolutionalize.ts";
import { loadNsfwjsModel } from "../../../zoo/nsfwjs/source.ts";

if (Deno.env.get("XDG_RUNTIME_DIR") === undefined) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
const hasWebgpu = "gpu" in navigator && (await navigator.gpu.requestAdapter()) !== null;
const BACKENDS = hasWebgpu ? ["cpu", "webgpu"] : ["cpu"];

/** LeNet-style: conv-pool-conv-pool-flatten-dense-dense-dense, 'valid' padding, total stride 4. */
function lenet(): tf.Sequential {
  return tf.sequential({
    name: "lenet",
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: "relu" }),
      tf.layers.averagePooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 24, activation: "relu" }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: 16, activation: "tanh" }),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
}

/**
 * A functional net with the layers MobileNetV2 and InceptionV3 are made of
 * (ZeroPadding2D, BatchNormalization, DepthwiseConv2D, Add, Concatenate) and a
 * global-average-pool head.
 */
function gapNet(): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3], name: "image" });
  const pad = tf.layers.zeroPadding2d({ padding: 1 }).apply(input);
  const c1 = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2 }).apply(pad);
  const bn = tf.layers.batchNormalization().apply(c1);
  const dw = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same" }).apply(bn);
  const sum = tf.layers.add().apply([bn, dw] as tf.SymbolicTensor[]);
  const branch = tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: "relu" }).apply(sum);
  const cat = tf.layers.concatenate().apply([sum, branch] as tf.SymbolicTensor[]);
  const pooled = tf.layers.globalAveragePooling2d({}).apply(cat);
  const out = tf.layers.dense({ units: 5, activation: "softmax" }).apply(pooled);
  return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor, name: "gapnet" });
}

const POOL_NAMES = { averagePooling2d: "an AveragePooling2D", maxPooling2d: "a MaxPooling2D" };

/**
 * A 'valid'-padded net whose head is a pooling window covering the whole 6×6
 * native feature map, then Flatten and Dense (MobileNetV2's head in nsfwjs, without
 * its 'same' padding, so the crop equality is exact). Total stride 2.
 */
function poolHeadNet(pool: "averagePooling2d" | "maxPooling2d"): tf.Sequential {
  return tf.sequential({
    name: `${pool}_head`,
    layers: [
      tf.layers.conv2d({ inputShape: [18, 18, 2], filters: 4, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, activation: "relu" }),
      tf.layers[pool]({ poolSize: 6 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 12, activation: "relu" }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: 5, activation: "softmax" }),
    ],
  });
}

/** Randomizes BatchNormalization statistics so that they matter. */
function randomizeBatchNorm(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    tf.tidy(() =>
      layer.setWeights(
        layer.getWeights().map((w, i) => tf.randomUniform(w.shape, i === 3 ? 0.5 : -1, 1.5)),
      )
    );
  }
}

/** max |a - b|, `a` reshaped to `b`'s shape. */
async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.abs(tf.sub(a.reshape(b.shape), b)).max());
  const [v] = await d.data();
  d.dispose();
  return v!;
}

function predict(model: tf.LayersModel, x: tf.Tensor): tf.Tensor {
  return model.predict(x) as tf.Tensor;
}

/** The original net on every native-size crop at `stride`, as `[1, rows, cols, classes]`. */
function cropScores(
  net: tf.LayersModel,
  x: tf.Tensor4D,
  size: number,
  stride: number,
  rows: number,
  cols: number,
): tf.Tensor {
  return tf.tidy(() => {
    const crops: tf.Tensor4D[] = [];
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        crops.push(x.slice([0, i * stride, j * stride, 0], [1, size, size, -1]));
      }
    }
    const y = predict(net, tf.concat(crops));
    return y.reshape([1, rows, cols, y.shape[1]!]);
  });
}

/**
 * Runs `fcn` on a random `[1, input, input, channels]` image and checks its
 * score map: `cells`×`cells`, cell (i, j) equal to `net` on the `size`×`size`
 * crop at (`stride`·i, `stride`·j).
 */
async function assertScoreMapIsCrops(
  net: tf.LayersModel,
  fcn: tf.LayersModel,
  { input, size, stride, cells }: { input: number; size: number; stride: number; cells: number },
): Promise<void> {
  const [channels, classes] = [net.inputs[0]!.shape[3]!, net.outputs[0]!.shape[1]!];
  const x = tf.randomUniform([1, input, input, channels]) as tf.Tensor4D;
  const map = predict(fcn, x);
  assertEquals(map.shape, [1, cells, cells, classes]);
  const expected = cropScores(net, x, size, stride, cells, cells);
  assertLess(await maxAbsDiff(map, expected), 1e-4);
  tf.dispose([x, map, expected]);
}

for (const backend of BACKENDS) {
  Deno.test(`convolutionalize() matches LeNet at its native size and turns its head into convolutions (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = lenet();
    const start = tf.memory().numTensors;
    const fcn = convolutionalize(net);
    try {
      assertEquals(fcn.inputs[0]?.shape, [null, null, null, 1]);
      assertEquals(fcn.outputs[0]?.shape, [null, null, null, 10]);
      const convs = fcn.layers.filter((l) => l.getClassName() === "Conv2D").map((l) =>
        l.getConfig().kernelSize
      );
      assertEquals(convs, [[5, 5], [5, 5], [4, 4], [1, 1], [1, 1]]);
      // The head's Dropout stays (the identity at inference), and no Dense is left.
      const classes = fcn.layers.map((l) => l.getClassName());
      assertEquals(classes.filter((c) => c === "Dropout" || c === "Dense"), ["Dropout"]);
      const x = tf.randomUniform([3, 28, 28, 1]);
      const y = predict(net, x);
      const map = predict(fcn, x);
      assertEquals(map.shape, [3, 1, 1, 10]);
      assertLess(await maxAbsDiff(map, y), 1e-4);
      tf.dispose([x, y, map]);
    } finally {
      fcn.dispose();
    }
    assertEquals(tf.memory().numTensors, start);
    net.dispose();
  });

  Deno.test(`convolutionalize() gives LeNet's score map: each cell is the original on the crop at a stride of 4 (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = lenet();
    const fcn = convolutionalize(net);
    assertEquals(scoreMapGeometry(net), { inputSize: [28, 28], totalStride: [4, 4] });
    // 44 = 28 + 4 × 4: a 5×5 map, cell (i, j) is the crop at (4i, 4j).
    await assertScoreMapIsCrops(net, fcn, { input: 44, size: 28, stride: 4, cells: 5 });
    fcn.dispose();
    net.dispose();
  });

  Deno.test(`resizeInput() averages LeNet's logit map: exact at the native size, [batch, classes] at 44×48 (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = lenet();
    const start = tf.memory().numTensors;
    const native = resizeInput(net, { height: 28, width: 28 });
    const big = resizeInput(net, { height: 44, width: 48 });
    const fcn = convolutionalize(net);
    const lastDense = net.layers[net.layers.length - 1]!.name;
    const logits = tf.model({ inputs: fcn.inputs, outputs: fcn.getLayer(lastDense).output });
    const x = tf.randomUniform([2, 28, 28, 1]);
    const xBig = tf.randomUniform([2, 44, 48, 1]);
    const [a, b, c, expected] = [
      predict(native, x),
      predict(net, x),
      predict(big, xBig),
      tf.tidy(() => tf.softmax(predict(logits, xBig).mean([1, 2]))),
    ];
    assertEquals(big.inputs[0]?.shape, [null, 44, 48, 1]);
    assertEquals(c.shape, [2, 10]);
    assertLess(await maxAbsDiff(a, b), 1e-4);
    assertLess(await maxAbsDiff(c, expected), 1e-5);
    tf.dispose([x, xBig, a, b, c, expected]);
    for (const m of [native, big, fcn]) m.dispose();
    assertEquals(tf.memory().numTensors, start);
    net.dispose();
  });
}

for (const backend of BACKENDS) {
  for (const pool of ["averagePooling2d", "maxPooling2d"] as const) {
    Deno.test(`convolutionalize() slides ${POOL_NAMES[pool]} window fixed at the native map with stride 1: each cell is the original on the crop at a stride of 2 (${backend})`, async () => {
      await tf.setBackend(backend);
      const net = poolHeadNet(pool);
      const start = tf.memory().numTensors;
      const fcn = convolutionalize(net);
      const native = resizeInput(net, { height: 18, width: 18 });
      try {
        // The window's own stride (6) must not count: one cell per 2 input pixels, not per 12.
        assertEquals(scoreMapGeometry(net), { inputSize: [18, 18], totalStride: [2, 2] });
        const window = fcn.layers.find((l) =>
          /Pooling2D$/.test(l.getClassName()) &&
          (l.getConfig().poolSize as number[])[0] === 6
        )!;
        assertEquals(window.getConfig().strides, [1, 1]);
        const x = tf.randomUniform([2, 18, 18, 2]) as tf.Tensor4D;
        const [y, map, pooled] = [predict(net, x), predict(fcn, x), predict(native, x)];
        assertEquals(map.shape, [2, 1, 1, 5]);
        assertLess(await maxAbsDiff(map, y), 1e-4);
        assertLess(await maxAbsDiff(pooled, y), 1e-4);
        tf.dispose([x, y, map, pooled]);
        // 26 = 18 + 4 × 2: a 5×5 map, cell (i, j) is the crop at (2i, 2j).
        await assertScoreMapIsCrops(net, fcn, { input: 26, size: 18, stride: 2, cells: 5 });
      } finally {
        fcn.dispose();
        native.dispose();
      }
      assertEquals(tf.memory().numTensors, start);
      net.dispose();
    });
  }
}

Deno.test("resizeInput() refuses sizes that do not fit and names the nearest valid ones", () => {
  const net = lenet();
  const start = tf.memory().numTensors;
  let e = assertThrows(() => resizeInput(net, { height: 45, width: 44 }), RangeError);
  assertEquals(
    e.message,
    'Cannot resize the input of model "lenet" to 45×44: height "45" is not the native 28 plus a multiple of the total stride 4: nearest valid heights are 44 and 48',
  );
  e = assertThrows(() => resizeInput(net, { height: 28, width: 20 }), RangeError);
  assert(
    e.message.includes('width "20" is smaller than the native width 28: nearest valid width is 28'),
  );
  assertEquals(tf.memory().numTensors, start);
  net.dispose();
});

for (const backend of BACKENDS) {
  Deno.test(`convolutionalize() keeps ZeroPadding2D, BatchNormalization, DepthwiseConv2D, Add and Concatenate, and puts a global-pool head's Dense before the pooling (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = gapNet();
    randomizeBatchNorm(net);
    const start = tf.memory().numTensors;
    const fcn = convolutionalize(net);
    const resized = resizeInput(net, { height: 40, width: 40 });
    const logits = tf.model({
      inputs: fcn.inputs,
      outputs: fcn.getLayer(net.layers[net.layers.length - 1]!.name).output,
    });
    const classes = fcn.layers.map((l) => l.getClassName());
    for (
      const c of ["ZeroPadding2D", "BatchNormalization", "DepthwiseConv2D", "Add", "Concatenate"]
    ) {
      assert(classes.includes(c), `${c} is missing from ${classes.join(", ")}`);
    }
    assert(!classes.includes("GlobalAveragePooling2D"));
    for (const size of [16, 40]) {
      const x = tf.randomUniform([2, size, size, 3]);
      const map = predict(fcn, x);
      assertEquals(map.shape, [2, size / 2, size / 2, 5]);
      // A single Dense commutes with the average: softmax(mean of the logit map) is the original's output.
      const pooled = tf.tidy(() => tf.softmax(predict(logits, x).mean([1, 2])));
      const y = size === 16 ? predict(net, x) : predict(resized, x);
      assertLess(await maxAbsDiff(pooled, y), 1e-5);
      tf.dispose([x, map, pooled, y]);
    }
    fcn.dispose();
    resized.dispose();
    assertEquals(tf.memory().numTensors, start);
    const x = tf.ones([1, 16, 16, 3]);
    const y = predict(net, x);
    assertEquals(
      y.shape,
      [1, 5],
      "the original still runs after the converted models are disposed",
    );
    tf.dispose([x, y]);
    net.dispose();
  });
}

Deno.test("convolutionalize() refuses a model without a Flatten or global-pool head", () => {
  const net = tf.sequential({
    name: "headless",
    layers: [tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3 })],
  });
  const e = assertThrows(() => convolutionalize(net), TypeError);
  assertEquals(
    e.message,
    'Cannot convolutionalize model "headless": layer "' + net.layers[0]!.name +
      '" (Conv2D) sits between the output and the Flatten or global pooling layer: a head may hold only Dense, Dropout and activation layers',
  );
  net.dispose();
});

for (const backend of BACKENDS) {
  Deno.test(`convolutionalize() matches nsfwjs MobileNetV2 at 224×224 and slides its head over every 7×7 window at 256×256 (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = await loadNsfwjsModel("mobilenet_v2");
    const start = tf.memory().numTensors;
    const fcn = convolutionalize(net);
    const resized = resizeInput(net, { height: 224, width: 224 });
    try {
      assertEquals(scoreMapGeometry(net), { inputSize: [224, 224], totalStride: [32, 32] });
      const pool = fcn.layers.find((l) => l.getClassName() === "AveragePooling2D")!;
      assertEquals(pool.getConfig().strides, [1, 1]);
      const x = tf.randomUniform([1, 224, 224, 3], 0, 1, "float32", 7);
      const [y, map, pooled] = [predict(net, x), predict(fcn, x), predict(resized, x)];
      assertEquals(map.shape, [1, 1, 1, 5]);
      assertLess(await maxAbsDiff(map, y), 1e-4);
      assertLess(await maxAbsDiff(pooled, y), 1e-4);
      tf.dispose([x, y, map, pooled]);

      // MobileNetV2 pads with 'same', so a crop's border sees zeros where the big image has pixels:
      // the cells equal the original's head on each 7×7 window of the features, not the original on crops.
      const features = tf.model({ inputs: fcn.inputs, outputs: fcn.getLayer("out_relu").output });
      const big = tf.randomUniform([1, 256, 256, 3], 0, 1, "float32", 8);
      const [f, bigMap] = [predict(features, big), predict(fcn, big)];
      assertEquals(bigMap.shape, [1, 2, 2, 5]);
      const expected = tf.tidy(() => {
        const dense = ["dense_1", "dense_2", "dense_3"].map((n) => net.getLayer(n).getWeights());
        const cells: tf.Tensor[] = [];
        for (let i = 0; i < 2; i++) {
          for (let j = 0; j < 2; j++) {
            let h: tf.Tensor = f.slice([0, i, j, 0], [1, 7, 7, -1]).mean([1, 2]);
            dense.forEach(([k, b], n) => {
              h = tf.add(tf.matMul(h as tf.Tensor2D, k as tf.Tensor2D), b!);
              h = n < 2 ? tf.relu(h) : tf.softmax(h);
            });
            cells.push(h);
          }
        }
        return tf.concat(cells).reshape([1, 2, 2, 5]);
      });
      assertLess(await maxAbsDiff(bigMap, expected), 1e-4);
      tf.dispose([big, f, bigMap, expected]);
    } finally {
      fcn.dispose();
      resized.dispose();
    }
    assertEquals(tf.memory().numTensors, start);
    net.dispose();
  });
}
