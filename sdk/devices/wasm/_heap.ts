/**
 * The wasm heap as the kernels here see it: tensors' byte offsets (always
 * unsigned: a heap past 2 GiB has offsets that read as negative int32),
 * typed views of their data, new outputs checked for room, scratch
 * allocations, and the shape checks every kernel makes before it touches
 * the heap (a compiled kernel reads and writes as many elements as its
 * geometry says, with no bounds of its own).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { SimdKernels } from "./simd/module.ts";

/** What to do when a tensor does not fit on the heap. */
const ADVICE = "use a smaller batch or micro-batch, or dispose tensors no longer needed";

/** A tensor as kernels see it: its data id, shape and dtype. */
export type Info = tf.TensorInfo;

/**
 * The byte offset of a tensor's data on the heap, as an unsigned number: a
 * heap past 2 GiB has offsets that read as negative int32.
 */
export function offset(backend: BackendWasm, info: Info): number {
  const data = (backend as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } })
    .dataIdMap.get(info.dataId);
  return data.memoryOffset >>> 0;
}

/** The heap's current buffer (a `malloc` that grows the heap replaces it: take views after allocating). */
function buffer(backend: BackendWasm): ArrayBufferLike {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
}

/**
 * A typed view of a tensor's data where it lies on the heap, at its unsigned
 * offset (`typedArrayFromHeap`'s view, for numeric dtypes).
 *
 * @param backend the wasm backend holding the tensor
 * @param info a float32, int32 or bool tensor
 * @returns a view of its elements; writes go to the tensor
 * @throws {Error} for another dtype
 */
export function view(backend: BackendWasm, info: Info): Float32Array | Int32Array | Uint8Array {
  const at = offset(backend, info), size = tf.util.sizeFromShape(info.shape);
  switch (info.dtype) {
    case "float32":
      return new Float32Array(buffer(backend), at, size);
    case "int32":
      return new Int32Array(buffer(backend), at, size);
    case "bool":
      return new Uint8Array(buffer(backend), at, size);
    default:
      throw new Error(`Unknown dtype ${info.dtype}`);
  }
}

/**
 * A float view of a float32 tensor's data on the heap.
 *
 * @param backend the wasm backend holding the tensor
 * @param info a float32 tensor
 * @returns a view of its elements
 */
export function heap(backend: BackendWasm, info: Info): Float32Array {
  return new Float32Array(
    buffer(backend),
    offset(backend, info),
    tf.util.sizeFromShape(info.shape),
  );
}

/**
 * A new tensor on the heap, after the checks the cpu backend makes of an
 * output shape (a too-small input gives a negative size, which the cpu
 * backend rejects with this same error), placed by the backend under
 * {@linkcode guardAllocations}, which refuses it when the heap has no room.
 *
 * @param backend the wasm backend
 * @param shape the output's shape
 * @param dtype its dtype
 * @returns the output, owned by the caller
 * @throws {Error} for a shape with a negative or fractional size (cpu's message)
 * @throws {RangeError} when the heap has no room for it
 */
export function checkedOutput(
  backend: BackendWasm,
  shape: number[],
  dtype: tf.DataType = "float32",
): Info {
  tf.util.assertNonNegativeIntegerDimensions(shape);
  // initWasmBackend guards the backend; this covers kernels registered on one set up otherwise.
  guardAllocations(backend);
  return backend.makeOutput(shape, dtype);
}

/** Backends whose tensor allocations {@linkcode guardAllocations} checks. */
const guarded = new WeakSet<BackendWasm>();

/** The members of the wasm backend that place a tensor's data on the heap. */
interface Placing {
  move(
    dataId: object,
    values: unknown,
    shape: number[],
    dtype: tf.DataType,
    refCount: number,
  ): void;
  dataIdMap: { get(id: object): { memoryOffset: number | null } | undefined };
  disposeData(dataId: object, force?: boolean): boolean;
  wasm: { HEAPU8: Uint8Array };
}

/**
 * Makes every tensor the backend places on its heap (uploads, and the
 * outputs of every kernel, shipped ones included) fail with a RangeError
 * when the heap has no room, instead of being placed at address 0: the
 * backend's allocator answers 0 when it has none, and the shipped backend
 * uses that as an address, so a kernel's output overwrites the heap's own
 * bookkeeping (a MobileNetV2 micro-batch of 16 hung that way in XNNPACK's
 * depthwise convolution). Uploads are copied only after the check.
 *
 * @param backend the wasm backend; guarding it twice is harmless
 */
export function guardAllocations(backend: BackendWasm): void {
  if (guarded.has(backend)) return;
  guarded.add(backend);
  const b = backend as unknown as Placing;
  const move = b.move;
  b.move = function (this: Placing, dataId, values, shape, dtype, refCount) {
    if (dtype === "string") return move.call(this, dataId, values, shape, dtype, refCount);
    const bytes = tf.util.sizeFromShape(shape) * tf.util.bytesPerElement(dtype);
    const what = `Cannot allocate a tensor of shape [${shape}] (${bytes} bytes)`;
    if (bytes >= 2 ** 32) {
      throw new RangeError(`${what}: the wasm heap holds at most 4 GiB; ${ADVICE}`);
    }
    move.call(this, dataId, null, shape, dtype, refCount);
    const at = (this.dataIdMap.get(dataId)?.memoryOffset ?? 0) >>> 0;
    if (bytes > 0 && at === 0) {
      this.disposeData(dataId, true);
      throw new RangeError(`${what}: the wasm heap is full; ${ADVICE}`);
    }
    if (values !== null && values !== undefined) {
      const v = values as ArrayBufferView;
      this.wasm.HEAPU8.set(new Uint8Array(v.buffer, v.byteOffset, bytes), at);
    }
  };
}

/**
 * A zero-filled float32 tensor: the gradient of anything with no elements to sum over.
 *
 * @param backend the wasm backend
 * @param shape the output's shape
 * @returns the zeros, owned by the caller
 */
export function zeros(backend: BackendWasm, shape: number[]): Info {
  const out = checkedOutput(backend, shape, "float32");
  heap(backend, out).fill(0);
  return out;
}

/**
 * Frees tensors a kernel made for itself.
 *
 * @param backend the wasm backend holding them
 * @param infos the tensors
 */
export function dispose(backend: BackendWasm, ...infos: Info[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * Whether any of the tensors has no elements.
 *
 * @param infos the tensors
 * @returns true when one has a zero in its shape
 */
export function anyEmpty(...infos: Info[]): boolean {
  return infos.some((t) => tf.util.sizeFromShape(t.shape) === 0);
}

/** Scratch allocations on the heap, freed together. */
export class Scratch {
  #ptrs: number[] = [];
  /** Scratch on the heap of the backend these kernels are bound to. */
  constructor(private readonly k: SimdKernels) {}
  /**
   * Allocates `elements` floats (16-byte aligned).
   *
   * @param elements how many floats
   * @returns the unsigned byte offset
   * @throws {RangeError} when the heap has no room
   */
  alloc(elements: number): number {
    const ptr = this.k.malloc(Math.max(1, elements) * 4);
    if (ptr === 0) throw new RangeError(`Cannot allocate ${elements * 4} bytes on the wasm heap`);
    this.#ptrs.push(ptr);
    return ptr;
  }
  /** Frees every allocation made so far. */
  free(): void {
    for (const p of this.#ptrs) this.k.free(p);
    this.#ptrs = [];
  }
}

/**
 * Throws unless `info` has `shape`: a compiled kernel reads and writes as
 * many elements as its geometry says, with no bounds of its own.
 */
export function expectShape(
  kernel: string,
  what: string,
  info: Info,
  shape: readonly number[],
): void {
  if (!tf.util.arraysEqual(info.shape, shape as number[])) {
    throw new RangeError(
      `${kernel}: ${what} has shape [${info.shape}]: its geometry needs [${shape}]`,
    );
  }
}

/**
 * Throws unless every tensor is float32.
 *
 * @param kernel the kernel's name, for the message
 * @param infos the tensors
 * @throws {TypeError} naming the first other dtype
 */
export function checkFloat(kernel: string, ...infos: Info[]): void {
  for (const info of infos) {
    if (info.dtype !== "float32") {
      throw new TypeError(`${kernel} on wasm needs float32 tensors: got "${info.dtype}"`);
    }
  }
}

/**
 * Throws unless a kernel's data format is NHWC (or not given).
 *
 * @param kernel the kernel's name, for the message
 * @param dataFormat the `dataFormat` attribute
 * @throws {RangeError} for any other format
 */
export function checkNhwc(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== "NHWC") {
    throw new RangeError(`${kernel} on wasm supports data format "NHWC" only: got "${dataFormat}"`);
  }
}

/** Throws unless every tensor in `infos` has rank 4 (NHWC). */
export function checkRank4(kernel: string, infos: Record<string, Info | undefined>): void {
  for (const [name, info] of Object.entries(infos)) {
    if (info !== undefined && info.shape.length !== 4) {
      throw new Error(`${kernel} on wasm needs a rank-4 ${name}: got shape [${info.shape}]`);
    }
  }
}

/** Throws unless `shape` is a list of 4 whole numbers >= 0 (an attribute such as filterShape). */
export function shape4(
  kernel: string,
  name: string,
  shape: unknown,
): [number, number, number, number] {
  if (
    !Array.isArray(shape) || shape.length !== 4 ||
    !shape.every((d) => Number.isInteger(d) && d >= 0)
  ) {
    throw new Error(
      `${kernel} on wasm needs ${name} of 4 whole sizes >= 0: got ${JSON.stringify(shape)}`,
    );
  }
  return shape as [number, number, number, number];
}

/** Throws unless `info` has `shape` (what the geometry of the call implies). */
export function checkShapeIs(kernel: string, name: string, info: Info, shape: number[]): void {
  if (!tf.util.arraysEqual(info.shape, shape)) {
    throw new Error(
      `${kernel} on wasm: ${name} has shape [${info.shape}] where the geometry needs [${shape}]`,
    );
  }
}

/**
 * Throws for an output shape with a negative size, as the cpu backend does
 * for kernels that allocate their output unchecked: a negative element count
 * fails there as an invalid typed array length (a RangeError); other negative
 * sizes fail tfjs's shape check (an Error).
 */
export function checkUncheckedOutput(kernel: string, shape: number[], why: string): void {
  if (tf.util.sizeFromShape(shape) < 0) {
    throw new RangeError(`${kernel}: the output shape [${shape}] has a negative size: ${why}`);
  }
  tf.util.assertNonNegativeIntegerDimensions(shape);
}
