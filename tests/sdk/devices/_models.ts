/** Small ResNet- and MobileNetV2-style classifiers for the device tests (LeNet-style: zoo/_recipes.ts). */
import * as tf from "@tensorflow/tfjs";

type T = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: T | T[]) => layer.apply(x) as T;

function convBn(x: T, filters: number, kernelSize: number, strides = 1): T {
  x = apply(tf.layers.conv2d({ filters, kernelSize, strides, padding: "same", useBias: false }), x);
  return apply(tf.layers.batchNormalization(), x);
}

/** ResNet-style: a stem, one identity block and one downsampling block with a 1×1 shortcut, GAP. */
export function resnetSmall(
  inputShape: [number, number, number] = [16, 16, 3],
  classes = 5,
): tf.LayersModel {
  const inp = tf.input({ shape: inputShape });
  let x = apply(tf.layers.reLU(), convBn(inp, 8, 3));
  let y = apply(tf.layers.reLU(), convBn(x, 8, 3));
  y = convBn(y, 8, 3);
  x = apply(tf.layers.reLU(), apply(tf.layers.add(), [x, y]));
  y = apply(tf.layers.reLU(), convBn(x, 16, 3, 2));
  y = convBn(y, 16, 3);
  const shortcut = convBn(x, 16, 1, 2);
  x = apply(tf.layers.reLU(), apply(tf.layers.add(), [shortcut, y]));
  x = apply(tf.layers.globalAveragePooling2d({}), x);
  const out = apply(tf.layers.dense({ units: classes, activation: "softmax" }), x);
  return tf.model({ inputs: inp, outputs: out });
}

function relu6(x: T): T {
  return apply(tf.layers.reLU({ maxValue: 6 }), x);
}

/** MobileNetV2-style: stem, an inverted-residual block with a skip, a stride-2 block with ZeroPadding, GAP. */
export function mobilenetV2Small(
  inputShape: [number, number, number] = [16, 16, 3],
  classes = 5,
): tf.LayersModel {
  const inp = tf.input({ shape: inputShape });
  let x = relu6(convBn(inp, 8, 3, 2));
  let y = relu6(convBn(x, 24, 1));
  y = apply(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false }), y);
  y = relu6(apply(tf.layers.batchNormalization(), y));
  y = convBn(y, 8, 1);
  x = apply(tf.layers.add(), [x, y]);
  y = relu6(convBn(x, 24, 1));
  y = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }), y);
  y = apply(
    tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: "valid", useBias: false }),
    y,
  );
  y = relu6(apply(tf.layers.batchNormalization(), y));
  x = convBn(y, 12, 1);
  x = apply(tf.layers.globalAveragePooling2d({}), x);
  const out = apply(tf.layers.dense({ units: classes, activation: "softmax" }), x);
  return tf.model({ inputs: inp, outputs: out });
}
