/**
 * Child process of wasm_threads_test.ts: starts the wasm backend with the
 * default thread count (ZOO_WASM_THREADS decides), trains a small CNN for two
 * steps and prints the threads and the weights' sum as JSON. It does not call
 * `Deno.exit`: the test checks that the pthreads let the process end.
 */
import * as tf from "@tensorflow/tfjs";
import { initWasmBackend } from "../../../sdk/devices/wasm/backend.ts";
import { seeded } from "./_compare.ts";

const info = await initWasmBackend();
const model = tf.sequential({
  layers: [
    tf.layers.conv2d({
      inputShape: [12, 12, 3],
      filters: 8,
      kernelSize: 3,
      activation: "relu",
      kernelInitializer: "ones",
    }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 4, activation: "softmax", kernelInitializer: "ones" }),
  ],
});
model.compile({ optimizer: tf.train.sgd(0.01), loss: "categoricalCrossentropy" });
const x = tf.tensor(seeded([16, 12, 12, 3], 3), [16, 12, 12, 3]);
const y = tf.oneHot(tf.tensor1d([...Array(16).keys()].map((i) => i % 4), "int32"), 4);
for (let i = 0; i < 2; i++) await model.trainOnBatch(x, y);
const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
console.log(
  JSON.stringify({
    threads: info.threads,
    xnnpackThreads: info.xnnpackThreads,
    fallback: info.threadsFallback,
    weights,
  }),
);
