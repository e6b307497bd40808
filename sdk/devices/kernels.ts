/**
 * Which TensorFlow.js kernels a job runs, and which of them a backend lacks:
 * the check the fine-tuning code runs before it picks a device, so a job
 * fails up front with the kernel names instead of midway through an epoch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Kernels the wasm backend adds for BatchNormalization in training mode,
 * which the training loop runs where the active backend has them (on
 * others it computes the same with tfjs's ops). All take NHWC float32
 * tensors normalized over every axis but the last (`C` channels, `N` values
 * each) and per-channel float32 vectors:
 * - `variance`: `{x, mean}` → the biased variance `Σ (x − mean)² / N`, `[C]`;
 * - `gradSums`: `{x, dy, mean}` → `[Σ dy, Σ dy · (x − mean)]`, `[2, C]`;
 * - `gradInput`: `{x, dy, mean, coef}` with `coef` `[3, C]` holding a, b and
 *   c → `a · dy + b · (x − mean) + c`, shaped as x.
 */
export const BATCH_NORM_KERNELS = {
  variance: "ZooBatchNormVariance",
  gradSums: "ZooBatchNormGradSums",
  gradInput: "ZooBatchNormGradInput",
} as const;

/**
 * The kernel the wasm backend adds for the gradient of a clip, `lo ≤ x ≤ hi
 * ? dy : 0` in one pass (`{x, dy}`, attributes `clipValueMin` and
 * `clipValueMax`); the training loop runs a bounded ReLU's gradient on it
 * where the active backend has it.
 */
export const CLIP_GRAD_KERNEL = "ZooClipGrad";

/**
 * The kernel the wasm backend adds for the gradient of a ReLU, `dy · step(x)`
 * in one pass (`{x, dy}`); the ReLU's registered gradient runs it on wasm,
 * and so does the training loop's fused convolution where the active
 * backend has it.
 */
export const RELU_GRAD_KERNEL = "ZooReluGrad";

/**
 * The kernel the wasm backend adds for a convolution followed by 2×2
 * stride-2 unpadded max pooling: `FusedConv2D`'s inputs (`{x, filter,
 * bias?}`) and attributes, the pooled output. For a one-channel input at
 * stride 1 (a first layer on grey images) it pools as it convolves, without
 * storing the convolution's output; other calls run the two kernels in turn.
 * The inference walk of `sdk/surgery/fold.ts` runs such a pair on it where
 * the active backend has it.
 */
export const CONV_MAX_POOL_KERNEL = "ZooConv2DMaxPool";

/**
 * {@linkcode CONV_MAX_POOL_KERNEL} that also says where each maximum was,
 * for training: the same inputs and attributes, and two outputs, the pooled
 * values and int32 positions `[B, PH, PW, ⌈channels / 16⌉]`, each channel's
 * window position (0 to 3, row-major) of its first maximum in 2 bits
 * (channel `c` in word `⌊c / 16⌋`, at bit `2·(c mod 16)`). The training
 * walk of `sdk/train/` runs a Conv2D and the 2×2 max pooling after it on it
 * where the active backend has it, with {@linkcode MAX_POOL_SCATTER_KERNEL}
 * in the gradient.
 */
export const CONV_MAX_POOL_POSITIONS_KERNEL = "ZooConv2DMaxPoolPositions";

/**
 * The kernel the wasm backend adds for the gradient of 2×2 stride-2
 * unpadded max pooling from where its maxima were (`{dy, y, indices}`, the
 * attribute `inputShape`): `dy` at each window's position in `indices`
 * (the layout of {@linkcode CONV_MAX_POOL_POSITIONS_KERNEL}) where the
 * pooled value `y` is above -Infinity, 0 everywhere else; `MaxPoolGrad`'s
 * values without reading the pooling's input.
 */
export const MAX_POOL_SCATTER_KERNEL = "ZooMaxPoolScatter";

/**
 * The kernel the wasm backend adds for the filter gradient of a
 * convolution whose output a 2×2 max pooling read, from the pooling's
 * gradient (`{x, dy, y, indices}`: the convolution's input, the pooled
 * gradient through the activation, the pooled values and positions as
 * {@linkcode CONV_MAX_POOL_POSITIONS_KERNEL} gives them; `Conv2DBackpropFilter`'s
 * attributes): `Conv2DBackpropFilter` of what {@linkcode MAX_POOL_SCATTER_KERNEL}
 * makes of them. A one-channel, stride-1 convolution's (a first layer on
 * grey images) makes that gradient a row at a time as it reads it, and
 * never stores it.
 */
export const CONV_MAX_POOL_FILTER_GRAD_KERNEL = "ZooConv2DMaxPoolFilterGrad";

/**
 * The kernels one training step of a convolutional classifier runs
 * (Conv2D and depthwise layers, BatchNormalization, ReLU/ReLU6, max and
 * average pooling, zero padding, residual Add, global average pooling, Dense
 * with softmax and cross-entropy, SGD/Adam updates), as recorded on the cpu
 * backend for LeNet-, ResNet- and MobileNetV2-style models.
 */
export const CONVNET_TRAINING_KERNELS: readonly string[] = [
  "Add",
  "AvgPool",
  "AvgPoolGrad",
  "BatchMatMul",
  "Cast",
  "ClipByValue",
  "Conv2D",
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "DepthwiseConv2dNative",
  "DepthwiseConv2dNativeBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
  "FusedBatchNorm",
  "FusedConv2D",
  "GreaterEqual",
  "Identity",
  "LessEqual",
  "Log",
  "LogicalAnd",
  "MaxPool",
  "MaxPoolGrad",
  "Mean",
  "Multiply",
  "Neg",
  "PadV2",
  "RealDiv",
  "Relu",
  "Reshape",
  "Rsqrt",
  "Select",
  "Slice",
  "Softmax",
  "Sqrt",
  "Square",
  "Step",
  "Sub",
  "Sum",
  "Tile",
  "ZerosLike",
  "_FusedMatMul",
];

/**
 * Lists the kernels in `kernelNames` that `backend` has not registered.
 * Names tfjs records for op-level gradient scopes (`fusedConv2d__op`) are
 * not kernels and are skipped.
 *
 * @param backend a backend name: `"wasm"`, `"webgpu"`, `"cpu"`, …
 * @param kernelNames the kernels a job needs, e.g. {@linkcode CONVNET_TRAINING_KERNELS} or {@linkcode kernelsUsed}'s result
 * @returns the missing kernel names, sorted; empty when the backend can run the job
 * @throws {RangeError} for an empty backend name
 *
 * @example Check that the cpu backend can train a convnet
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CONVNET_TRAINING_KERNELS, missingKernels } from "./kernels.ts";
 * assertEquals(missingKernels("cpu", CONVNET_TRAINING_KERNELS), []);
 * ```
 */
export function missingKernels(backend: string, kernelNames: Iterable<string>): string[] {
  if (backend === "") throw new RangeError(`Cannot check kernels: backend name "" is empty`);
  const missing = new Set<string>();
  for (const name of kernelNames) {
    if (name.endsWith("__op")) continue;
    if (tf.getKernel(name, backend) === undefined) missing.add(name);
  }
  return [...missing].sort();
}

/**
 * Runs `job` once on the active backend under `tf.profile` and returns the
 * kernels it ran: run one small training step on the cpu backend (which has
 * every kernel), then pass the result to {@linkcode missingKernels}.
 *
 * @param job the work to record, e.g. one `model.trainOnBatch` on a tiny batch
 * @returns the kernel names, sorted, without duplicates
 * @throws {Error} whatever `job` throws
 *
 * @example Record the kernels of a matrix product
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assert } from "@std/assert";
 * import { kernelsUsed } from "./kernels.ts";
 * await tf.setBackend("cpu");
 * const names = await kernelsUsed(() => tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])));
 * assert(names.includes("BatchMatMul"));
 * ```
 */
export async function kernelsUsed(job: () => unknown): Promise<string[]> {
  const info = await tf.profile(async () => {
    const result = await job();
    if (result instanceof tf.Tensor) result.dispose();
  });
  return [...new Set(info.kernelNames.filter((n) => !n.endsWith("__op")))].sort();
}
