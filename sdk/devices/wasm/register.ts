/**
 * Registers this project's kernels on TensorFlow.js's wasm backend: those
 * that replace kernels `@tensorflow/tfjs-backend-wasm` ships
 * ({@linkcode REPLACED_KERNELS}: faster, or right where the shipped ones are
 * wrong) and those it adds ({@linkcode ADDED_KERNELS}: gradients the package
 * lacks, two fused gradients, and a convolution pooled as it is computed).
 * The kernels live by family in `kernels/`, as the package lays out its own:
 *
 * | family | replaced | added |
 * | --- | --- | --- |
 * | `conv.ts` | `Conv2D`, `FusedConv2D` | `ZooConv2DMaxPool`, `ZooConv2DMaxPoolPositions` |
 * | `conv_grad.ts` | `Conv2DBackpropInput` | `Conv2DBackpropFilter`, `ZooConv2DMaxPoolFilterGrad` |
 * | `depthwise.ts` | `DepthwiseConv2dNative`, `FusedDepthwiseConv2D` | `DepthwiseConv2dNativeBackpropFilter`, `DepthwiseConv2dNativeBackpropInput` |
 * | `pool.ts` | `MaxPool`, `AvgPool`, `MaxPoolGrad`, `AvgPoolGrad` | `ZooMaxPoolScatter` |
 * | `elementwise.ts` | `Add`, `Sub`, `Multiply`, `Square`, `Relu`, `ClipByValue`, `Cast`, `Identity` | `ZooReluGrad`, `ZooClipGrad` |
 * | `matmul.ts` | `BatchMatMul` | |
 * | `layout.ts` | `Slice`, `Tile`, `Transpose`, `PadV2` | |
 * | `batchnorm.ts` | `FusedBatchNorm` | `ZooBatchNormVariance`, `ZooBatchNormGradSums`, `ZooBatchNormGradInput` |
 * | `reduction.ts` | `Mean`, `Sum` | |
 *
 * Most run on the compiled SIMD kernels (`simd/kernels.c`) where those can
 * run, and otherwise on XNNPACK or in JavaScript on the heap. Each checks
 * shapes and sizes before it touches the heap (see `_heap.ts`), and a
 * replacement hands the cases it does not handle to the shipped kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setSimdKernelsEnabled } from "./_compiled.ts";
import { checked, original, type WasmKernel } from "./_kernel.ts";
import { BATCHNORM_KERNELS } from "./kernels/batchnorm.ts";
import { CONV_KERNELS } from "./kernels/conv.ts";
import { CONV_GRAD_KERNELS } from "./kernels/conv_grad.ts";
import { DEPTHWISE_KERNELS } from "./kernels/depthwise.ts";
import {
  CLIP_GRAD_KERNEL,
  ELEMENTWISE_KERNELS,
  installFusedGradients,
  RELU_GRAD_KERNEL,
} from "./kernels/elementwise.ts";
import { LAYOUT_KERNELS } from "./kernels/layout.ts";
import { MATMUL_KERNELS } from "./kernels/matmul.ts";
import { POOL_KERNELS } from "./kernels/pool.ts";
import { REDUCTION_KERNELS } from "./kernels/reduction.ts";
import {
  BATCH_NORM_KERNELS,
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  CONV_MAX_POOL_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  MAX_POOL_SCATTER_KERNEL,
} from "../kernels.ts";

export { CLIP_GRAD_KERNEL, RELU_GRAD_KERNEL };

/** Every kernel of every family, by family (the module doc's table, as code). */
export const KERNEL_FAMILIES: Readonly<Record<string, readonly WasmKernel[]>> = {
  "conv.ts": CONV_KERNELS,
  "conv_grad.ts": CONV_GRAD_KERNELS,
  "depthwise.ts": DEPTHWISE_KERNELS,
  "pool.ts": POOL_KERNELS,
  "elementwise.ts": ELEMENTWISE_KERNELS,
  "matmul.ts": MATMUL_KERNELS,
  "layout.ts": LAYOUT_KERNELS,
  "batchnorm.ts": BATCHNORM_KERNELS,
  "reduction.ts": REDUCTION_KERNELS,
};

/**
 * The kernels added to the wasm backend (it ships none of these names), in
 * the order they are registered.
 */
export const ADDED_KERNELS: readonly string[] = [
  "Conv2DBackpropFilter",
  "DepthwiseConv2dNativeBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
  RELU_GRAD_KERNEL,
  CLIP_GRAD_KERNEL,
  CONV_MAX_POOL_KERNEL,
  CONV_MAX_POOL_POSITIONS_KERNEL,
  MAX_POOL_SCATTER_KERNEL,
  CONV_MAX_POOL_FILTER_GRAD_KERNEL,
  BATCH_NORM_KERNELS.variance,
  BATCH_NORM_KERNELS.gradSums,
  BATCH_NORM_KERNELS.gradInput,
];

/**
 * The shipped wasm kernels replaced (registered under the same name, with
 * the shipped one kept for the cases a replacement hands back), in the
 * order they are registered.
 */
export const REPLACED_KERNELS: readonly string[] = [
  "Slice",
  "BatchMatMul",
  "Conv2DBackpropInput",
  "Conv2D",
  "Identity",
  "Mean",
  "Sum",
  "Tile",
  "MaxPoolGrad",
  "AvgPoolGrad",
  "Transpose",
  "Add",
  "Relu",
  "MaxPool",
  "AvgPool",
  "FusedBatchNorm",
  "ClipByValue",
  "PadV2",
  "FusedConv2D",
  "Sub",
  "Multiply",
  "Square",
  "Cast",
  "DepthwiseConv2dNative",
  "FusedDepthwiseConv2D",
];

/**
 * The kernel configs to register for `names`, each of kind `kind` in
 * exactly one family: a list and the families that disagree fail at
 * import, not at the first call.
 */
function configs(names: readonly string[], kind: WasmKernel["kind"]): tf.KernelConfig[] {
  const all = Object.values(KERNEL_FAMILIES).flat();
  const listed = new Set(names);
  for (const k of all) {
    if (k.kind === kind && !listed.has(k.name)) {
      throw new Error(`Kernel "${k.name}" is ${kind} by its family but not listed as such`);
    }
  }
  return names.map((name) => {
    const found = all.filter((k) => k.name === name);
    if (found.length !== 1 || found[0]!.kind !== kind) {
      throw new Error(
        `Kernel "${name}": listed as ${kind}, found ${found.length} definitions of that kind`,
      );
    }
    return { kernelName: name, backendName: "wasm", kernelFunc: checked(found[0]!) };
  });
}

const added = configs(ADDED_KERNELS, "added");
const replaced = configs(REPLACED_KERNELS, "replaced");

/** Options for {@linkcode registerWasmKernels}. */
export interface RegisterWasmKernelsOptions {
  /**
   * Also replace the shipped kernels named in {@linkcode REPLACED_KERNELS},
   * and route the gradients of `Relu` and `ClipByValue` through the fused
   * kernels; off, only {@linkcode ADDED_KERNELS} are registered.
   * @default {true}
   */
  fastKernels?: boolean;
  /**
   * Run the kernels on the compiled SIMD kernels where they are faster;
   * off, their JavaScript and XNNPACK paths run. Applies to every later
   * call in this process.
   * @default {true}
   */
  simdKernels?: boolean;
}

/**
 * Registers the added kernels and (by default) the replacements with
 * TensorFlow.js. Idempotent. Call it after importing
 * `@tensorflow/tfjs-backend-wasm`; the kernels work once the wasm backend
 * is initialized (`await tf.setBackend("wasm")`).
 *
 * @param options which kernels to register
 * @returns the names of the kernels registered by this call (empty when all were there)
 * @throws {Error} when `@tensorflow/tfjs-backend-wasm` has not registered its own kernels
 *
 * @example Register the kernels
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { assert } from "@std/assert";
 * import { ADDED_KERNELS, registerWasmKernels } from "./register.ts";
 * registerWasmKernels();
 * assert(ADDED_KERNELS.every((name) => tf.getKernel(name, "wasm") !== undefined));
 * ```
 */
export function registerWasmKernels(options: RegisterWasmKernelsOptions = {}): string[] {
  setSimdKernelsEnabled(options.simdKernels ?? true);
  const names: string[] = [];
  for (const config of added) {
    if (tf.getKernel(config.kernelName, "wasm") === undefined) {
      tf.registerKernel(config);
      names.push(config.kernelName);
    }
  }
  if (options.fastKernels ?? true) {
    installFusedGradients();
    for (const config of replaced) {
      const current = tf.getKernel(config.kernelName, "wasm");
      if (current === undefined) {
        throw new Error(
          `Cannot replace wasm kernel "${config.kernelName}": it is not registered (import "@tensorflow/tfjs-backend-wasm" first)`,
        );
      }
      if (current.kernelFunc === config.kernelFunc) continue;
      original.set(config.kernelName, current.kernelFunc);
      tf.unregisterKernel(config.kernelName, "wasm");
      tf.registerKernel({ ...current, kernelFunc: config.kernelFunc });
      names.push(config.kernelName);
    }
  }
  return names;
}
