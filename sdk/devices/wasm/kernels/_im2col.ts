/**
 * im2col for the wasm kernels that run convolution gradients as XNNPACK
 * matrix products: the windows a convolution reads, one row per output
 * position ({@linkcode im2col}) or one row per filter tap
 * ({@linkcode im2colT}), written on the heap a chunk of images at a time so
 * that one buffer stays under 64 MiB.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { checkedOutput, dispose, heap, type Info } from "../_heap.ts";
import { type ConvInfo, dims, reshape } from "../_kernel.ts";

/**
 * Writes the im2col rows of images `[b0, b0 + nb)` of `x` into `cols`:
 * row `(b, oh, ow)` holds the `filterHeight × filterWidth × inChannels`
 * window the convolution reads for that output position (zeros where the
 * window hangs over the padding).
 */
export function im2col(
  x: Float32Array,
  cols: Float32Array,
  info: ConvInfo,
  b0: number,
  nb: number,
): void {
  const { H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl } = dims(info);
  const rowLen = KH * KW * C;
  let row = 0;
  for (let b = b0; b < b0 + nb; b++) {
    const xb = b * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, row += rowLen) {
        const iw0 = ow * sw - pl;
        // The kw range whose input column lies inside the image.
        const kwLo = iw0 >= 0 ? 0 : Math.min(KW, Math.ceil(-iw0 / dw));
        const kwHi = Math.max(kwLo, Math.min(KW, Math.floor((W - 1 - iw0) / dw) + 1));
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - pt;
          const dst = row + kh * KW * C;
          if (ih < 0 || ih >= H || kwLo >= kwHi) {
            cols.fill(0, dst, dst + KW * C);
            continue;
          }
          if (kwLo > 0) cols.fill(0, dst, dst + kwLo * C);
          if (kwHi < KW) cols.fill(0, dst + kwHi * C, dst + KW * C);
          const src = xb + (ih * W + iw0) * C;
          if (dw === 1) {
            const s = src + kwLo * C, n = (kwHi - kwLo) * C, d = dst + kwLo * C;
            if (n >= 32) cols.set(x.subarray(s, s + n), d);
            else for (let i = 0; i < n; i++) cols[d + i] = x[s + i]!;
          } else {
            for (let kw = kwLo; kw < kwHi; kw++) {
              const s = src + kw * dw * C, d = dst + kw * C;
              for (let i = 0; i < C; i++) cols[d + i] = x[s + i]!;
            }
          }
        }
      }
    }
  }
}

/** The most floats one im2col buffer may hold (64 MiB); larger jobs run in chunks of images. */
const MAX_COLS_FLOATS = 16 * 1024 * 1024;

/**
 * Writes the transposed im2col matrix of images `[b0, b0 + nb)` of `x` into
 * `colsT`: row `(kh, kw, c)` holds, for every output position `(b, oh, ow)`
 * in order, the input value the convolution multiplies by filter tap
 * `(kh, kw, c)` there (zero over the padding). Writing this layout directly
 * is what makes the filter gradient one product `colsT · dy` with the big
 * operand on the left: the wasm `Transpose` of a tall matrix, or a product
 * that packs the big operand, costs many times the product itself.
 */
export function im2colT(
  x: Float32Array,
  colsT: Float32Array,
  info: ConvInfo,
  b0: number,
  nb: number,
): void {
  const { H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl } = dims(info);
  const P = nb * OH * OW, step = sw * C;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      // The ow range whose input column ow·sw + kw·dw − pl lies inside the image.
      const off = kw * dw - pl;
      const owLo = Math.min(OW, Math.max(0, Math.ceil(-off / sw)));
      const owHi = Math.max(owLo, Math.min(OW, Math.floor((W - 1 - off) / sw) + 1));
      // One input row at a time, all channels: the row stays in cache while
      // each channel's values are gathered into its own output row.
      const rowBase = (kh * KW + kw) * C * P;
      for (let b = b0; b < b0 + nb; b++) {
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh + kh * dh - pt;
          const p0 = rowBase + ((b - b0) * OH + oh) * OW;
          const inside = ih >= 0 && ih < H;
          const s0 = ((b * H + ih) * W + owLo * sw + off) * C;
          for (let c = 0; c < C; c++) {
            const d = p0 + c * P;
            if (!inside) {
              for (let ow = 0; ow < OW; ow++) colsT[d + ow] = 0;
              continue;
            }
            for (let ow = 0; ow < owLo; ow++) colsT[d + ow] = 0;
            for (let ow = owHi; ow < OW; ow++) colsT[d + ow] = 0;
            let s = s0 + c;
            for (let ow = owLo; ow < owHi; ow++, s += step) colsT[d + ow] = x[s]!;
          }
        }
      }
    }
  }
}

/** How many images one im2col chunk holds. */
export function imagesPerChunk(info: ConvInfo): number {
  const perImage = info.outHeight * info.outWidth * info.filterHeight * info.filterWidth *
    info.inChannels;
  return Math.max(1, Math.min(info.batchSize, Math.floor(MAX_COLS_FLOATS / Math.max(1, perImage))));
}

/** A copy of images `[b0, b0 + nb)` of an NHWC tensor, as `[nb * rest]` rows of `cols` floats. */
export function batchRows(
  backend: BackendWasm,
  x: Info,
  b0: number,
  nb: number,
  cols: number,
): Info {
  const batch = x.shape[0]!;
  if (b0 === 0 && nb === batch) return reshape(backend, x, [-1, cols]);
  const perImage = tf.util.sizeFromShape(x.shape) / batch;
  const out = checkedOutput(backend, [(nb * perImage) / cols, cols], "float32");
  heap(backend, out).set(heap(backend, x).subarray(b0 * perImage, (b0 + nb) * perImage));
  return out;
}

/** Adds `b` into `a` on the heap (both small); disposes `b`. */
export function accumulate(backend: BackendWasm, a: Info | null, b: Info): Info {
  if (a === null) return b;
  const av = heap(backend, a), bv = heap(backend, b);
  for (let i = 0; i < av.length; i++) av[i] = av[i]! + bv[i]!;
  dispose(backend, b);
  return a;
}
