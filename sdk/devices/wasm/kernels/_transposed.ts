/**
 * The input gradient of a convolution written as a convolution (a
 * transposed convolution): `dy` zero-upsampled by the stride and padded
 * ({@linkcode upsamplePadded}), correlated at stride 1 with the spatially
 * flipped filter ({@linkcode flippedFilter}). The 2-D and depthwise input
 * gradients run it on XNNPACK where the compiled kernels do not take them.
 *
 * @module
 */
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { checkedOutput, heap, type Info } from "../_heap.ts";
import { type ConvInfo, dims, reshape } from "../_kernel.ts";

/**
 * `dy` zero-upsampled by the stride and placed at offset (`top`, `left`) in a
 * zero buffer of `inHeight + (filterHeight − 1)·dilation` rows (and as many
 * columns): a stride-1 "valid" correlation of it with the flipped filter is
 * the input gradient.
 */
export function upsamplePadded(
  backend: BackendWasm,
  dy: Info,
  info: ConvInfo,
  top: number,
  left: number,
): Info {
  const { B, H, W, OH, OW, KH, KW, sh, sw, dh, dw } = dims(info);
  const CM = dy.shape[3]!;
  const PH = H + (KH - 1) * dh, PW = W + (KW - 1) * dw;
  if (sh === 1 && sw === 1 && top === 0 && left === 0 && PH === OH && PW === OW) {
    return reshape(backend, dy, [B, PH, PW, CM]);
  }
  const padded = checkedOutput(backend, [B, PH, PW, CM], "float32");
  const src = heap(backend, dy), dst = heap(backend, padded);
  dst.fill(0);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const ph = top + oh * sh;
      if (ph < 0 || ph >= PH) continue;
      for (let ow = 0; ow < OW; ow++) {
        const pw = left + ow * sw;
        if (pw < 0 || pw >= PW) continue;
        const s = ((b * OH + oh) * OW + ow) * CM, d = ((b * PH + ph) * PW + pw) * CM;
        if (CM >= 32) dst.set(src.subarray(s, s + CM), d);
        else for (let i = 0; i < CM; i++) dst[d + i] = src[s + i]!;
      }
    }
  }
  return padded;
}

/**
 * The filter flipped in both spatial axes. For a depthwise filter
 * `[kh, kw, c, m]` the result is `[kh, kw, c·m, 1]`; for a conv filter
 * `[kh, kw, ci, co]` (`swapChannels`) it is `[kh, kw, co, ci]`.
 */
export function flippedFilter(backend: BackendWasm, filter: Info, swapChannels: boolean): Info {
  const [KH, KW, C, M] = filter.shape as [number, number, number, number];
  const out = checkedOutput(backend, swapChannels ? [KH, KW, M, C] : [KH, KW, C * M, 1], "float32");
  const w = heap(backend, filter), f = heap(backend, out);
  const CM = C * M;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const s = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CM, d = (kh * KW + kw) * CM;
      if (!swapChannels) {
        f.set(w.subarray(s, s + CM), d);
        continue;
      }
      for (let ci = 0; ci < C; ci++) {
        for (let co = 0; co < M; co++) f[d + co * C + ci] = w[s + ci * M + co]!;
      }
    }
  }
  return out;
}
