/**
 * Fixtures the data tests write at run time: image folders (PNG and JPEG,
 * through the same packages the loaders decode with) and IDX files.
 *
 * @module
 */
import { join } from "node:path";
import pngjs from "pngjs";
import * as jpeg from "jpeg-js";
import * as tf from "@tensorflow/tfjs";

// pngjs ships no types; this is the part the fixtures use.
interface PngModule {
  PNG: {
    new (opts: { width: number; height: number }): {
      width: number;
      height: number;
      data: Uint8Array;
    };
    sync: { write(png: unknown, opts?: { colorType?: number }): Uint8Array };
  };
}
const { PNG } = pngjs as unknown as PngModule;

/** Runs the data tests on the cpu backend. */
export async function useCpu(): Promise<void> {
  await tf.setBackend("cpu");
  await tf.ready();
}

/** RGBA pixels filled with one color. */
function rgba(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([...rgb, 255], p * 4);
  return data;
}

/** A PNG of one color; `gray` writes color type 0 (grayscale) from the red channel. */
export function encodePng(
  width: number,
  height: number,
  rgb: [number, number, number],
  gray = false,
): Uint8Array {
  const png = new PNG({ width, height });
  png.data.set(rgba(width, height, rgb));
  return PNG.sync.write(png, gray ? { colorType: 0 } : {});
}

/** A JPEG of one color. */
export function encodeJpeg(
  width: number,
  height: number,
  rgb: [number, number, number],
): Uint8Array {
  return new Uint8Array(jpeg.encode({ width, height, data: rgba(width, height, rgb) }, 95).data);
}

/** Writes files given as relative path → bytes under a new temp folder; returns the folder. */
export async function writeTree(files: Record<string, Uint8Array | string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "data_test_" });
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
  }
  return root;
}

/** A folder of two classes: red PNGs and blue JPEGs of varied sizes, and one gray PNG. */
export function petsFiles(): Record<string, Uint8Array | string> {
  return {
    "cat/1.png": encodePng(8, 8, [255, 0, 0]),
    "cat/2.png": encodePng(8, 8, [255, 0, 0]),
    "cat/3.png": encodePng(12, 6, [255, 0, 0]),
    "cat/gray.png": encodePng(8, 8, [128, 128, 128], true),
    "dog/1.jpg": encodeJpeg(8, 8, [0, 0, 255]),
    "dog/2.JPEG": encodeJpeg(16, 16, [0, 0, 255]),
    "dog/nested/3.jpg": encodeJpeg(8, 8, [0, 0, 255]),
    "dog/notes.txt": "not an image, ignored",
  };
}

/** IDX bytes: magic, big-endian dimensions, data. */
export function idxBytes(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Gzips bytes. */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Collects every batch's values (and disposes the tensors). */
export async function collect(
  batches: AsyncIterable<{ xs: tf.Tensor4D; ys: tf.Tensor1D }>,
): Promise<{ shapes: number[][]; xs: number[][]; ys: number[] }> {
  const shapes: number[][] = [];
  const xs: number[][] = [];
  const ys: number[] = [];
  for await (const b of batches) {
    shapes.push(b.xs.shape);
    xs.push(Array.from(await b.xs.data()));
    ys.push(...await b.ys.data());
    tf.dispose([b.xs, b.ys]);
  }
  return { shapes, xs, ys };
}
