/**
 * What every kernel family here shares: the description of a kernel
 * ({@linkcode WasmKernel}: a replacement of a shipped tfjs-backend-wasm
 * kernel or an addition), the checks run before it ({@linkcode checked}),
 * calls of the shipped kernels it falls back on ({@linkcode run}), and the
 * convolution geometry from a kernel's attributes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { checkUncheckedOutput, type Info } from "./_heap.ts";

/** A kernel's attributes. */
export type Attrs = Record<string, unknown>;
/** A kernel's inputs by name (optional ones may be absent). */
export type Inputs = Record<string, Info | undefined>;
/** A convolution's (or pooling's) geometry. */
export type ConvInfo = tf.backend_util.Conv2DInfo;

/**
 * One kernel this project registers on the wasm backend.
 */
export interface WasmKernel {
  /** The tfjs kernel name (`Conv2D`, `ZooReluGrad`, …). */
  readonly name: string;
  /**
   * `"replaced"`: tfjs-backend-wasm ships a kernel of this name, which this
   * one replaces (and may call for the cases it does not handle);
   * `"added"`: the package has none.
   */
  readonly kind: "replaced" | "added";
  /** The kernel, without the checks. */
  readonly kernelFunc: tf.KernelFunc;
  /**
   * Checks made before the kernel touches the heap: ranks, the sizes its
   * geometry implies, output shapes as the cpu backend checks them (with
   * its error). Absent for kernels that take any shape (elementwise ones)
   * or hand every call they do not handle to the shipped kernel.
   */
  readonly validate?: (inputs: Inputs, attrs: Attrs) => void;
  /**
   * The answer for a call with an empty input, for kernels whose shipped
   * versions divide by a zero size (a wasm trap); `null` for other calls.
   */
  readonly empty?: (backend: BackendWasm, inputs: Inputs, attrs: Attrs) => Info | null;
}

/**
 * The kernel function to register for `kernel`: its
 * {@linkcode WasmKernel.validate} checks, then its
 * {@linkcode WasmKernel.empty} answer, then the kernel.
 *
 * @param kernel the kernel's description
 * @returns the function to register
 */
export function checked(kernel: WasmKernel): tf.KernelFunc {
  const { validate, empty, kernelFunc } = kernel;
  if (validate === undefined && empty === undefined) return kernelFunc;
  return (args) => {
    const inputs = args.inputs as Inputs, attrs = (args.attrs ?? {}) as Attrs;
    validate?.(inputs, attrs);
    return empty?.(args.backend as BackendWasm, inputs, attrs) ?? kernelFunc(args);
  };
}

/** The shipped kernels that were replaced, by name, kept so the replacements can call them. */
export const original: Map<string, tf.KernelFunc> = new Map();

function wasmKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, "wasm");
  if (config === undefined) {
    throw new Error(`Cannot build wasm gradient kernels: kernel "${name}" is not registered`);
  }
  return config.kernelFunc;
}

/** Runs a shipped wasm kernel directly (no engine bookkeeping); the caller owns the result. */
export function run(
  backend: BackendWasm,
  name: string,
  inputs: Record<string, Info>,
  attrs: Attrs,
): Info {
  const out = (original.get(name) ?? wasmKernel(name))({
    inputs: inputs as tf.NamedTensorInfoMap,
    backend,
    attrs: attrs as tf.NamedAttrMap,
  });
  return out as Info;
}

/**
 * A reshaped view of `x` (the shipped `Reshape`: no copy).
 *
 * @param backend the wasm backend holding it
 * @param x the tensor
 * @param shape the new shape
 * @returns the reshaped tensor, owned by the caller
 */
export function reshape(backend: BackendWasm, x: Info, shape: number[]): Info {
  return run(backend, "Reshape", { x }, { shape });
}

/**
 * A kernel as the families here write it: the wasm backend, the inputs it
 * reads by name and the call's attributes (`{}` when it has none).
 */
export type KernelBody<I extends Inputs> = (
  backend: BackendWasm,
  inputs: I,
  attrs: Attrs,
) => Info;

/**
 * The tfjs kernel function that runs `body` on a call's backend, inputs and
 * attributes, so no kernel unpacks them itself.
 *
 * @param body the kernel, typed by the inputs it reads
 * @returns the function to describe in a {@linkcode WasmKernel}
 */
export function unpacked<I extends Inputs>(body: KernelBody<I>): tf.KernelFunc {
  return (args) => body(args.backend as BackendWasm, args.inputs as I, (args.attrs ?? {}) as Attrs);
}

/**
 * A replacement for the shipped kernel `name`: `fast` (on the compiled
 * kernels), or the shipped kernel where it gives `null`.
 */
export function fastOr(
  name: string,
  fast: (backend: BackendWasm, inputs: Inputs, attrs: Attrs) => Info | null,
): tf.KernelFunc {
  return unpacked((backend, inputs, attrs) =>
    fast(backend, inputs, attrs) ?? run(backend, name, inputs as Record<string, Info>, attrs)
  );
}

/** A one-input kernel on the compiled kernels for float32, the shipped `name` otherwise. */
export function unaryKernel(
  name: string,
  fast: (backend: BackendWasm, x: Info) => Info | null,
): tf.KernelFunc {
  return fastOr(name, (backend, { x }) => (x!.dtype === "float32" ? fast(backend, x!) : null));
}

/**
 * A convolution's geometry from its kernel's attributes (`strides`,
 * `dilations` (1 when absent), `pad`, `dimRoundingMode`).
 */
export function convInfo(
  inShape: unknown,
  filterShape: unknown,
  attrs: Attrs,
  depthwise = false,
): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations ?? 1) as number | [number, number],
    attrs.pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
    depthwise,
  );
}

/**
 * A convolution's (or pooling's) geometry under the short names its loops
 * use: batch `B`; input `H`×`W`×`C`; output `OH`×`OW`×`O`; filter `KH`×`KW`;
 * strides `sh`, `sw`; dilations `dh`, `dw`; the padding before the first
 * row and column, `pt` and `pl`.
 */
export interface Dims {
  /** Images in the batch. */
  readonly B: number;
  /** Input height. */
  readonly H: number;
  /** Input width. */
  readonly W: number;
  /** Input channels. */
  readonly C: number;
  /** Output height. */
  readonly OH: number;
  /** Output width. */
  readonly OW: number;
  /** Output channels. */
  readonly O: number;
  /** Filter height (undilated). */
  readonly KH: number;
  /** Filter width (undilated). */
  readonly KW: number;
  /** Stride along the height. */
  readonly sh: number;
  /** Stride along the width. */
  readonly sw: number;
  /** Dilation along the height. */
  readonly dh: number;
  /** Dilation along the width. */
  readonly dw: number;
  /** Padding rows before the first. */
  readonly pt: number;
  /** Padding columns before the first. */
  readonly pl: number;
}

/**
 * `info` under the short names of {@linkcode Dims}.
 *
 * @param info a convolution's or pooling's geometry
 * @returns its sizes, strides, dilations and leading padding
 */
export function dims(info: ConvInfo): Dims {
  return {
    B: info.batchSize,
    H: info.inHeight,
    W: info.inWidth,
    C: info.inChannels,
    OH: info.outHeight,
    OW: info.outWidth,
    O: info.outChannels,
    KH: info.filterHeight,
    KW: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
  };
}

/**
 * A convolution's geometry after the checks the cpu backend makes (an
 * output size below zero for a too-small input fails as it does there), and
 * those that keep every kernel inside its tensors: the filter's input
 * channels match x's.
 */
export function checkedConv(
  kernel: string,
  xShape: number[],
  filterShape: number[],
  attrs: Attrs,
  depthwise: boolean,
): ConvInfo {
  const info = convInfo(xShape, filterShape, attrs, depthwise);
  checkUncheckedOutput(kernel, info.outShape, "the input is smaller than the filter's window");
  if (xShape[3] !== filterShape[2]) {
    throw new Error(
      `${kernel} on wasm: the input has ${
        xShape[3]
      } channels where the filter [${filterShape}] takes ${filterShape[2]}`,
    );
  }
  return info;
}
