/**
 * Image decoding (PNG through pngjs, JPEG through jpeg-js), cheap header
 * reads, and turning raw pixels into a preprocessed batch tensor. Private to
 * `sdk/data/`, but `imagesToTensor` and `RawImage`, which `mod.ts` makes public.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import * as tf from "@tensorflow/tfjs";
import pngjs from "pngjs";
import * as jpeg from "jpeg-js";
import type { Tensor4D } from "../_tfjs_types.ts";
import type { Preprocessing } from "./types.ts";

/** Decoded pixels, row-major `[height, width, channels]`, values 0..255. */
export interface RawImage {
  /** `height * width * channels` bytes, row by row. */
  data: Uint8Array;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** 1 for grayscale, 3 for RGB. */
  channels: 1 | 3;
}

/** What a header says about an image, without decoding its pixels. */
export interface ImageHeader {
  format: "png" | "jpeg";
  height: number;
  width: number;
  channels: 1 | 3;
}

// pngjs ships no types; this is the part of PNG.sync.read we use.
interface PngSync {
  PNG: {
    sync: {
      read(
        data: Uint8Array,
      ): { width: number; height: number; data: Uint8Array; color: boolean; palette: boolean };
    };
  };
}
const PNG = (pngjs as unknown as PngSync).PNG;

/** Tells the format from the first bytes; the extension is not trusted. */
export function sniffFormat(bytes: Uint8Array): "png" | "jpeg" | undefined {
  if (
    bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47
  ) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  return undefined;
}

/**
 * Reads dimensions and color from a PNG IHDR or a JPEG SOF segment.
 *
 * @throws {SyntaxError} when the bytes are neither or the header is cut short
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  const format = sniffFormat(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "png") {
    // IHDR is the first chunk: length(4) type(4) width(4) height(4) depth(1) colorType(1).
    if (bytes.length < 26 || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") {
      throw new SyntaxError("PNG header is truncated or has no IHDR chunk");
    }
    const width = view.getUint32(16);
    const height = view.getUint32(20);
    const colorType = bytes[25]!;
    checkDims(width, height);
    // Color types 0 and 4 are gray (with alpha); 2, 3 and 6 are color.
    return { format, width, height, channels: colorType === 0 || colorType === 4 ? 1 : 3 };
  }
  if (format === "jpeg") {
    let i = 2;
    while (i + 4 <= bytes.length) {
      if (bytes[i] !== 0xff) throw new SyntaxError(`JPEG marker expected at byte ${i}`);
      const marker = bytes[i + 1]!;
      if (marker === 0xff) {
        i++;
        continue;
      }
      const length = view.getUint16(i + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
        marker !== 0xcc;
      if (isSof) {
        if (i + 10 > bytes.length) break;
        const height = view.getUint16(i + 5);
        const width = view.getUint16(i + 7);
        checkDims(width, height);
        return { format, width, height, channels: bytes[i + 9] === 1 ? 1 : 3 };
      }
      i += 2 + length;
    }
    throw new SyntaxError("JPEG header is truncated or has no frame (SOF) segment");
  }
  throw new SyntaxError("Not a PNG or JPEG file: unknown signature");
}

function checkDims(width: number, height: number): void {
  if (width < 1 || height < 1) throw new SyntaxError(`Image has zero size ${width}x${height}`);
  if (width * height > 100e6) {
    throw new SyntaxError(`Image is too large: ${width}x${height} exceeds 100 megapixels`);
  }
}

/**
 * Decodes a PNG or JPEG into gray or RGB pixels; alpha is dropped.
 *
 * @throws {SyntaxError} when the bytes cannot be decoded
 */
export function decodeImage(bytes: Uint8Array): RawImage {
  const header = readImageHeader(bytes);
  let rgba: Uint8Array;
  let width: number;
  let height: number;
  let stride: number;
  // Both decoders are Node packages that call Buffer methods on their input.
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (header.format === "png") {
      const png = PNG.sync.read(buffer);
      ({ width, height } = png);
      rgba = png.data;
      stride = 4;
    } else {
      const img = jpeg.decode(buffer, { useTArray: true, formatAsRGBA: false });
      ({ width, height } = img);
      rgba = img.data;
      stride = 3;
    }
  } catch (e) {
    throw new SyntaxError(`Cannot decode ${header.format.toUpperCase()}: ${errorMessage(e)}`);
  }
  if (rgba.length < width * height * stride) {
    throw new SyntaxError(`Cannot decode ${header.format.toUpperCase()}: pixel data is truncated`);
  }
  const channels = header.channels;
  const n = width * height;
  const data = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < channels; c++) data[p * channels + c] = rgba[p * stride + c]!;
  }
  return { data, width, height, channels };
}

/** The message of an unknown thrown value. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Checks a preprocessing description.
 *
 * @throws {RangeError} naming the bad field and its value
 */
export function checkPreprocessing(p: Preprocessing): void {
  for (const key of ["height", "width"] as const) {
    if (!(Number.isInteger(p[key]) && p[key] > 0)) {
      throw new RangeError(`Invalid preprocessing ${key} "${p[key]}": use a positive integer`);
    }
  }
  if (p.channels !== 1 && p.channels !== 3) {
    throw new RangeError(`Invalid preprocessing channels "${p.channels}": use 1 or 3`);
  }
  const [min, max] = p.range;
  if (!(Number.isFinite(min) && Number.isFinite(max) && min < max)) {
    throw new RangeError(
      `Invalid preprocessing range "[${p.range}]": use [min, max] with min < max`,
    );
  }
  for (const key of ["mean", "std"] as const) {
    const v = p[key];
    if (v === undefined) continue;
    if (v.length !== 1 && v.length !== p.channels) {
      throw new RangeError(
        `Invalid preprocessing ${key} "[${v}]": give 1 value or ${p.channels} (one per channel)`,
      );
    }
    if (!v.every(Number.isFinite) || (key === "std" && v.some((s) => s === 0))) {
      throw new RangeError(
        `Invalid preprocessing ${key} "[${v}]": use finite numbers${
          key === "std" ? ", not 0" : ""
        }`,
      );
    }
  }
  if (p.channelOrder !== undefined && p.channelOrder !== "rgb" && p.channelOrder !== "bgr") {
    throw new RangeError(
      `Invalid preprocessing channelOrder "${p.channelOrder}": use "rgb" or "bgr"`,
    );
  }
}

/** The preprocessing used when a consumer gives none: native shape, range [0, 1]. */
export function nativePreprocessing(shape: readonly [number, number, number]): Preprocessing {
  return { height: shape[0], width: shape[1], channels: shape[2] === 1 ? 1 : 3, range: [0, 1] };
}

const LUMA = [0.299, 0.587, 0.114];

/** Resizes and converts channels of `[b, h, w, c]` pixels in 0..255; call inside tf.tidy. */
function adapt(x: tf.Tensor4D, p: Preprocessing): tf.Tensor4D {
  const c = x.shape[3];
  if (c === 3 && p.channels === 1) x = tf.sum(tf.mul(x, tf.tensor1d(LUMA)), -1, true);
  if (x.shape[1] !== p.height || x.shape[2] !== p.width) {
    x = p.alignCorners
      ? tf.image.resizeBilinear(x, [p.height, p.width], true)
      : tf.image.resizeBilinear(x, [p.height, p.width], false, true);
  }
  if (c === 1 && p.channels === 3) x = tf.tile(x, [1, 1, 1, 3]);
  return x;
}

/**
 * Builds one preprocessed batch from raw images of any sizes and channel
 * counts: resize, channel conversion, channel order, range, mean/std.
 *
 * @returns a float32 `[images.length, height, width, channels]` tensor the caller owns
 */
export function imagesToTensor(images: readonly RawImage[], p: Preprocessing): Tensor4D {
  return tf.tidy(() => {
    const first = images[0];
    if (first === undefined) return tf.zeros([0, p.height, p.width, p.channels]);
    const uniform = images.every((im) =>
      im.height === first.height && im.width === first.width && im.channels === first.channels
    );
    let x: tf.Tensor4D;
    if (uniform) {
      const per = first.height * first.width * first.channels;
      const buf = new Float32Array(images.length * per);
      images.forEach((im, i) => buf.set(im.data, i * per));
      x = adapt(tf.tensor4d(buf, [images.length, first.height, first.width, first.channels]), p);
    } else {
      x = tf.concat(images.map((im) =>
        adapt(
          tf.tensor4d(Float32Array.from(im.data), [1, im.height, im.width, im.channels]),
          p,
        )
      ));
    }
    if (p.channels === 3 && p.channelOrder === "bgr") x = tf.reverse(x, -1);
    const [min, max] = p.range;
    x = tf.mul(x, (max - min) / 255);
    // Adding 0 would change no value (the products of pixels are never -0), only cost a pass.
    if (min !== 0) x = tf.add(x, min);
    if (p.mean) x = tf.sub(x, tf.tensor1d([...p.mean]));
    if (p.std) x = tf.div(x, tf.tensor1d([...p.std]));
    return x;
  });
}
