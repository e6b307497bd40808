/**
 * IDX files, the format of the original MNIST and Fashion-MNIST downloads
 * (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`).
 *
 * @module
 */
import { packedDataset } from "./_batches.ts";
import { errorMessage } from "./_image.ts";
import { resolveSplit, selectSplit, splitKey } from "./_split.ts";
import type { Dataset, Split, SplitOptions } from "./types.ts";

/** Magic number of an IDX file of unsigned bytes with 3 dimensions (images). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of an IDX file of unsigned bytes with 1 dimension (labels). */
export const IDX_LABELS_MAGIC = 0x00000801;
/** Magic number of an IDX file of unsigned bytes with 4 dimensions (`[n, h, w, c]` images). */
export const IDX_IMAGES4_MAGIC = 0x00000804;

/** Options of {@linkcode loadIdx}. */
export interface IdxOptions extends SplitOptions {
  /** Which split of the files to take. @default "all" */
  split?: Split;
  /** Class names in label order. @default "0", "1", … up to the largest label */
  classes?: string[];
}

/**
 * Loads an IDX image file and its IDX label file; names ending in `.gz` are
 * gunzipped. The images stay bytes in memory; batches are made on demand.
 *
 * @param imagesPath the images file: magic 0x00000803 (`[n, h, w]`) or 0x00000804 (`[n, h, w, c]`, c 1 or 3)
 * @param labelsPath the labels file: magic 0x00000801 (`[n]`)
 * @param opts split, perClass, seed, class names
 * @returns the dataset; its identity holds the files' SHA-256, not their paths
 * @throws {Error} when a file cannot be read, has the wrong magic or size, or the counts differ
 * @throws {RangeError} when a label has no class name or an option is invalid
 *
 * @example The original MNIST training files
 * ```ts
 * import { loadIdx } from "./idx.ts";
 * async function mnistTrain() {
 *   return await loadIdx("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
 * }
 * ```
 */
export async function loadIdx(
  imagesPath: string,
  labelsPath: string,
  opts: IdxOptions = {},
): Promise<Dataset> {
  const split = resolveSplit(opts, "all");
  const [imageFile, labelFile] = await Promise.all([
    readIdx(imagesPath, "images"),
    readIdx(labelsPath, "labels"),
  ]);
  const images = parseIdx(imageFile, imagesPath, [IDX_IMAGES_MAGIC, IDX_IMAGES4_MAGIC]);
  const labels = parseIdx(labelFile, labelsPath, [IDX_LABELS_MAGIC]);
  const [n, height, width, channels = 1] = images.dims as [number, number, number, number?];
  if (channels !== 1 && channels !== 3) {
    throw new Error(
      `Invalid IDX images file "${imagesPath}": ${channels} channels, expected 1 or 3`,
    );
  }
  if (labels.dims[0] !== n) {
    throw new Error(
      `IDX files do not match: "${imagesPath}" has ${n} images but "${labelsPath}" has ${
        labels.dims[0]
      } labels`,
    );
  }
  if (n === 0) throw new Error(`IDX images file "${imagesPath}" holds no images`);
  let maxLabel = 0;
  for (const l of labels.data) if (l > maxLabel) maxLabel = l;
  const classes = opts.classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  if (maxLabel >= classes.length) {
    throw new RangeError(
      `Label ${maxLabel} in "${labelsPath}" has no class name: ${classes.length} classes were given`,
    );
  }
  const indices = selectSplit(labels.data, classes.length, split);
  const [imagesHash, labelsHash] = await Promise.all([sha256(images.data), sha256(labels.data)]);
  return packedDataset({
    name: `idx ${basename(imagesPath)} (${split.split})`,
    identity: `idx:sha256-${imagesHash},sha256-${labelsHash}?${splitKey(split)}` +
      (opts.classes ? `&classes=${encodeURIComponent(classes.join(","))}` : ""),
    classes,
    source: { pixels: images.data, labels: labels.data, shape: [height, width, channels] },
    indices,
  });
}

async function readIdx(path: string, what: string): Promise<Uint8Array> {
  try {
    if (!path.endsWith(".gz")) return await Deno.readFile(path);
    using file = await Deno.open(path);
    const gunzipped = file.readable.pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(gunzipped).arrayBuffer());
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : errorMessage(e);
    throw new Error(`Cannot read IDX ${what} file "${path}": ${why}`);
  }
}

function parseIdx(
  bytes: Uint8Array,
  path: string,
  magics: number[],
): { dims: number[]; data: Uint8Array } {
  const expected = magics.map((m) => `0x${m.toString(16).padStart(8, "0")}`).join(" or ");
  if (bytes.length < 4) throw new Error(`Invalid IDX file "${path}": shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (!magics.includes(magic)) {
    const hint = magic === IDX_LABELS_MAGIC
      ? "; it looks like a labels file, are the arguments swapped?"
      : magic === IDX_IMAGES_MAGIC
      ? "; it looks like an images file, are the arguments swapped?"
      : "";
    throw new Error(
      `Invalid IDX file "${path}": magic 0x${
        magic.toString(16).padStart(8, "0")
      } is not ${expected} (unsigned bytes)${hint}`,
    );
  }
  const rank = magic & 0xff;
  const headerSize = 4 + 4 * rank;
  if (bytes.length < headerSize) throw new Error(`Invalid IDX file "${path}": header is truncated`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - headerSize !== size) {
    throw new Error(
      `Invalid IDX file "${path}": dimensions [${dims}] need ${size} bytes of data, found ${
        bytes.length - headerSize
      }`,
    );
  }
  return { dims, data: bytes.subarray(headerSize) };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function basename(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
