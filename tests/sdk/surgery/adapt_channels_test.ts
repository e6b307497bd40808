/** adaptInputChannels(): a 1- or 3-channel network on the other channel count gives the predictions it should. */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { assertEquals, assertLess, assertThrows } from "@std/assert";
import { adaptInputChannels } from "../../../sdk/surgery/adapt_channels.ts";

if (Deno.env.get("XDG_RUNTIME_DIR") === undefined) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
const hasWebgpu = "gpu" in navigator && (await navigator.gpu.requestAdapter()) !== null;
const BACKENDS = hasWebgpu ? ["cpu", "webgpu"] : ["cpu"];

/** A functional RGB net whose first conv comes after a weightless ZeroPadding2D. */
function rgbNet(): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 3], name: "rgb" });
  const pad = tf.layers.zeroPadding2d({ padding: 1 }).apply(input);
  const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: "relu" }).apply(
    pad,
  );
  const bn = tf.layers.batchNormalization().apply(c1);
  const flat = tf.layers.flatten().apply(bn);
  const out = tf.layers.dense({ units: 3, activation: "softmax" }).apply(flat);
  return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor, name: "rgbnet" });
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.abs(tf.sub(a, b)).max());
  const [v] = await d.data();
  d.dispose();
  return v!;
}

for (const backend of BACKENDS) {
  Deno.test(`adaptInputChannels() to 1 channel: a gray image x gives what the RGB image (x, x, x) gave (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = rgbNet();
    const start = tf.memory().numTensors;
    const gray = adaptInputChannels(net, 1);
    assertEquals(gray.inputs[0]?.shape, [null, 12, 12, 1]);
    const x = tf.randomUniform([2, 12, 12, 1]);
    const rgb = tf.concat([x, x, x], 3);
    const [a, b] = [gray.predict(x) as tf.Tensor, net.predict(rgb) as tf.Tensor];
    assertLess(await maxAbsDiff(a, b), 1e-5);
    tf.dispose([x, rgb, a, b]);
    gray.dispose();
    assertEquals(tf.memory().numTensors, start);
    net.dispose();
  });
}

for (const backend of BACKENDS) {
  Deno.test(`adaptInputChannels() to 6 channels: repeated kernels scaled by 3/6 give the RGB output on (r, g, b, r, g, b) (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = rgbNet();
    const six = adaptInputChannels(net, 6);
    assertEquals(six.inputs[0]?.shape, [null, 12, 12, 6]);
    const x = tf.randomUniform([2, 12, 12, 3]);
    const x6 = tf.concat([x, x], 3);
    const [a, b] = [six.predict(x6) as tf.Tensor, net.predict(x) as tf.Tensor];
    assertLess(await maxAbsDiff(a, b), 1e-5);
    tf.dispose([x, x6, a, b]);
    six.dispose();
    net.dispose();
  });
}

for (const backend of BACKENDS) {
  Deno.test(`adaptInputChannels() to 4 channels repeats the RGB kernels, truncates to 4 and scales by 3/4 (${backend})`, async () => {
    await tf.setBackend(backend);
    const net = rgbNet();
    const four = adaptInputChannels(net, 4);
    const conv = (m: tf.LayersModel) => m.layers.find((l) => l.getClassName() === "Conv2D")!;
    const [k3] = conv(net).getWeights();
    const [k4] = conv(four).getWeights();
    assertEquals(k4!.shape, [3, 3, 4, 4]);
    const expected = tf.tidy(() =>
      tf.concat([k3!, k3!.slice([0, 0, 0, 0], [-1, -1, 1, -1])], 2).mul(0.75)
    );
    assertLess(await maxAbsDiff(k4!, expected), 1e-7);
    expected.dispose();
    four.dispose();
    net.dispose();
  });
}

Deno.test("adaptInputChannels() refuses a bad channel count and a model whose first weights are not a Conv2D", () => {
  const net = rgbNet();
  assertThrows(
    () => adaptInputChannels(net, 0),
    RangeError,
    'Cannot adapt the input channels of model "rgbnet" to "0": use a positive integer',
  );
  net.dispose();
  const dense = tf.sequential({
    name: "mlp",
    layers: [tf.layers.flatten({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 2 })],
  });
  assertThrows(() => adaptInputChannels(dense, 1), TypeError, "is a Dense, not a Conv2D");
  dense.dispose();
});
