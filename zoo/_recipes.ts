/**
 * The architectures of the checkpoints the zoo trains itself on MNIST digits:
 * a classic LeNet-5 with a Flatten→Dense head (the textbook case for
 * convolutionalization), a VGG-style net with more conv blocks and an FC head,
 * and a small ResNet with BatchNormalization and a global-average-pool head.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A seeded Glorot initializer, so a recipe builds the same net every time. */
function glorot(seed: number) {
  return tf.initializers.glorotUniform({ seed });
}

/** The input of every net here: one 28×28 gray digit. */
const MNIST_INPUT: [number, number, number] = [28, 28, 1];

/** A ReLU conv layer with a seeded Glorot kernel; the first layer of a net takes `inputShape`. */
function conv(
  name: string,
  filters: number,
  kernelSize: number,
  padding: "same" | "valid",
  seed: number,
  inputShape?: [number, number, number],
) {
  return tf.layers.conv2d({
    name,
    filters,
    kernelSize,
    padding,
    activation: "relu",
    kernelInitializer: glorot(seed),
    ...(inputShape ? { inputShape } : {}),
  });
}

/** A Dense layer with a seeded Glorot kernel. */
function dense(name: string, units: number, activation: "relu" | "softmax", seed: number) {
  return tf.layers.dense({ name, units, activation, kernelInitializer: glorot(seed) });
}

/**
 * LeNet-5 on 28×28×1: conv(6,5×5,same)-pool-conv(16,5×5)-pool-Flatten-Dense(120)-Dense(84)-Dense(10).
 *
 * @param seed weight initialization seed
 * @returns an untrained model
 */
export function lenet5(seed = 1): tf.Sequential {
  let s = seed * 100;
  return tf.sequential({
    name: "lenet5",
    layers: [
      conv("conv1", 6, 5, "same", s++, MNIST_INPUT),
      tf.layers.maxPooling2d({ name: "pool1", poolSize: 2 }),
      conv("conv2", 16, 5, "valid", s++),
      tf.layers.maxPooling2d({ name: "pool2", poolSize: 2 }),
      tf.layers.flatten({ name: "flatten" }),
      dense("fc1", 120, "relu", s++),
      dense("fc2", 84, "relu", s++),
      dense("logits", 10, "softmax", s++),
    ],
  });
}

/**
 * A VGG-style net on 28×28×1: two blocks of two 3×3 convs, one block of one,
 * each followed by 2×2 max pooling, then Flatten-Dense(128)-Dropout-Dense(10).
 *
 * @param seed weight initialization seed
 * @returns an untrained model
 */
export function vggish(seed = 1): tf.Sequential {
  let s = seed * 100;
  const conv3 = (name: string, filters: number, inputShape?: [number, number, number]) =>
    conv(name, filters, 3, "same", s++, inputShape);
  return tf.sequential({
    name: "vggish",
    layers: [
      conv3("block1_conv1", 16, MNIST_INPUT),
      conv3("block1_conv2", 16),
      tf.layers.maxPooling2d({ name: "block1_pool", poolSize: 2 }),
      conv3("block2_conv1", 32),
      conv3("block2_conv2", 32),
      tf.layers.maxPooling2d({ name: "block2_pool", poolSize: 2 }),
      conv3("block3_conv1", 64),
      tf.layers.maxPooling2d({ name: "block3_pool", poolSize: 2 }),
      tf.layers.flatten({ name: "flatten" }),
      dense("fc1", 128, "relu", s++),
      tf.layers.dropout({ name: "dropout", rate: 0.3, seed: s++ }),
      dense("logits", 10, "softmax", s++),
    ],
  });
}

/**
 * A small ResNet on 28×28×1: a 3×3 stem, three residual stages (16, 32, 64
 * channels; the last two downsample by 2 with a 1×1 projection shortcut),
 * BatchNormalization after every conv, global average pooling and Dense(10).
 *
 * @param seed weight initialization seed
 * @returns an untrained model
 */
export function resnetMini(seed = 1): tf.LayersModel {
  let s = seed * 100;
  const convBn = (
    x: tf.SymbolicTensor,
    name: string,
    filters: number,
    strides: number,
    relu: boolean,
  ) => {
    let y = tf.layers.conv2d({
      name: `${name}_conv`,
      filters,
      kernelSize: 3,
      strides,
      padding: "same",
      useBias: false,
      kernelInitializer: tf.initializers.heNormal({ seed: s++ }),
    }).apply(x) as tf.SymbolicTensor;
    y = tf.layers.batchNormalization({ name: `${name}_bn` }).apply(y) as tf.SymbolicTensor;
    return relu ? tf.layers.reLU({ name: `${name}_relu` }).apply(y) as tf.SymbolicTensor : y;
  };
  const block = (x: tf.SymbolicTensor, name: string, filters: number, strides: number) => {
    let shortcut = x;
    if (strides !== 1) {
      shortcut = tf.layers.conv2d({
        name: `${name}_proj`,
        filters,
        kernelSize: 1,
        strides,
        useBias: false,
        kernelInitializer: tf.initializers.heNormal({ seed: s++ }),
      }).apply(x) as tf.SymbolicTensor;
      shortcut = tf.layers.batchNormalization({ name: `${name}_proj_bn` }).apply(
        shortcut,
      ) as tf.SymbolicTensor;
    }
    const y = convBn(
      convBn(x, `${name}_a`, filters, strides, true),
      `${name}_b`,
      filters,
      1,
      false,
    );
    const sum = tf.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as tf.SymbolicTensor;
    return tf.layers.reLU({ name: `${name}_out` }).apply(sum) as tf.SymbolicTensor;
  };
  const input = tf.input({ name: "input", shape: MNIST_INPUT });
  let x = convBn(input, "stem", 16, 1, true);
  x = block(x, "stage1", 16, 1);
  x = block(x, "stage2", 32, 2);
  x = block(x, "stage3", 64, 2);
  x = tf.layers.globalAveragePooling2d({ name: "pool" }).apply(x) as tf.SymbolicTensor;
  const out = dense("logits", 10, "softmax", s++).apply(x) as tf.SymbolicTensor;
  return tf.model({ name: "resnet_mini", inputs: input, outputs: out });
}
