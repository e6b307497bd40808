/**
 * The batching loop every loader shares, and the datasets over images held in
 * memory: packed pixels (the npm packages and IDX files) and a list of
 * decoded images (what the browser page builds from uploads). Private to the
 * SDK: `sdk/data/` and the page's bundle use it.
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

/**
 * A dataset over decoded images held in memory, such as a browser page's
 * uploads, in the order given; its image shape is the first image's (all
 * should share it unless the batches resize them).
 */
export function imageListDataset(
  args: {
    name: string;
    identity: string;
    classes: string[];
    images: readonly RawImage[];
    labels: readonly number[];
  },
): Dataset {
  const { images, labels } = args;
  if (images.length !== labels.length) {
    throw new RangeError(
      `Invalid dataset "${args.name}": ${images.length} images but ${labels.length} labels; give one label per image`,
    );
  }
  const first = images[0];
  return indexedDataset({
    ...args,
    imageShape: first ? [first.height, first.width, first.channels] : [0, 0, 3],
    indices: Int32Array.from(images, (_, i) => i),
  }, (idx) =>
    Promise.resolve({
      images: Array.from(idx, (i) => images[i]!),
      labels: Int32Array.from(idx, (i) => labels[i]!),
    }));
}
