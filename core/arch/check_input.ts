/**
 * Checks whether an analyzed network can run on an input of a given size, or
 * be cut at a given layer, and explains what fails and what to do instead.
 *
 * @module
 */
import { replay, type ReplayedLayer, WINDOW_LAYERS, windowRemainder } from "./_geometry.ts";
import type { Architecture, Finding, InputCheck, LayerInfo } from "./types.ts";

export type { Finding, FindingKind, InputCheck } from "./types.ts";

/** Options of {@linkcode checkInput}. */
export interface CheckInputOptions {
  /**
   * Cut the network after this layer for feature extraction: it becomes the
   * output and every layer after it is dropped, the head included.
   *
   * @default no cut: the whole network
   */
  dropLayer?: string;
}

/** An input image size. */
export interface InputSize {
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** Channels: 1 for grayscale, 3 for RGB. */
  channels: number;
}

type Axis = 0 | 1;

/**
 * Checks an input size (and optionally a cut) against an analyzed network:
 * whether every layer still gets at least a 1×1 map, whether a Flatten→Dense
 * head gets the map size its weights were trained on, whether strides divide
 * the input evenly, whether the channels match, and whether the cut layer is a
 * cut point. Each finding says what to do: the nearest sizes that work,
 * `convolutionalize` for a fixed head, `adaptInputChannels` for channels, the
 * nearest cut points.
 *
 * @param arch the network, from `analyze()`
 * @param input the input size
 * @param options `dropLayer` to check a network cut after that layer
 * @returns `ok` (no error finding), the findings (errors first) and one message
 * @throws {RangeError} when a size is not a positive integer
 *
 * @example A 5×5 input is too small for a 3×3 conv, a 2×2 pool and a 3×3 conv
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { analyze } from "./analyze.ts";
 * import { checkInput } from "./check_input.ts";
 * const model = tf.sequential({
 *   layers: [
 *     tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3 }),
 *     tf.layers.maxPooling2d({ poolSize: 2 }),
 *     tf.layers.conv2d({ filters: 4, kernelSize: 3 }),
 *   ],
 * });
 * const check = checkInput(analyze(model), { height: 5, width: 5, channels: 1 });
 * assertEquals([check.ok, check.findings[0]?.kind], [false, "too-small"]);
 * ```
 */
export function checkInput(
  arch: Architecture,
  input: InputSize,
  options: CheckInputOptions = {},
): InputCheck {
  for (const [key, value] of Object.entries(input)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `Cannot check the input: ${key} must be a positive integer, got ${value}`,
      );
    }
  }
  const { height, width, channels } = input;
  const findings: Finding[] = [];
  const pos = new Map(arch.layers.map((l, i) => [l.name, i]));
  let keep: Set<string> | undefined;
  const cut = options.dropLayer;
  if (cut !== undefined) {
    const at = pos.get(cut);
    if (at === undefined) {
      findings.push({
        kind: "not-a-cut-point",
        severity: "error",
        message: `there is no layer "${cut}": cut after one of ${
          quoteList(arch.cutPoints.slice(-5))
        } (the last cut points)`,
        layer: cut,
        nearestCutPoints: arch.cutPoints.slice(-2),
      });
    } else {
      keep = new Set(arch.layers.slice(0, at + 1).map((l) => l.name));
      if (!arch.cutPoints.includes(cut)) findings.push(notACutPoint(arch, cut, at, pos));
    }
  }
  const layers = keep ? arch.layers.filter((l) => keep.has(l.name)) : arch.layers;

  const nativeChannels = arch.nativeInputShape.at(-1);
  if (typeof nativeChannels === "number" && nativeChannels !== channels) {
    findings.push({
      kind: "channel-mismatch",
      severity: "error",
      message: `the input has ${plural(channels, "channel")} but the first layer expects ${
        plural(nativeChannels, "channel")
      }: call adaptInputChannels(model, ${channels}) to fold the pretrained first-layer filters over ${channels} ${
        channels === 1 ? "channel" : "channels"
      }, or convert the images to ${nativeChannels} channels`,
      layer: layers[1]?.name ?? arch.layers[0]?.name ?? "",
    });
  }

  if (arch.nativeInputShape.length === 4) {
    const spatial = spatialFindings(arch, layers, keep, [height, width]);
    findings.push(...spatial);
  }

  findings.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1));
  const ok = findings.every((f) => f.severity !== "error");
  const size = `${height}x${width}x${channels}`;
  const what = cut === undefined ? `"${arch.name}"` : `"${arch.name}" cut after "${cut}"`;
  let message: string;
  if (!ok) {
    message = `Cannot run ${what} on ${size}: ${
      findings.filter((f) => f.severity === "error").map((f) => f.message).join("; ")
    }`;
  } else if (findings.length > 0) {
    message = `Can run ${what} on ${size}, but: ${findings.map((f) => f.message).join("; ")}`;
  } else {
    const last = layers.at(-1);
    const out = last ? replay(layers, [height, width]).get(last.name)?.output : null;
    message = `Can run ${what} on ${size}: ${
      out ? `it gives a ${out[0]}x${out[1]} map` : `its output is [${arch.outputShape.slice(1)}]`
    }`;
  }
  return { ok, findings, message };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function quoteList(names: string[]): string {
  return names.map((n) => `"${n}"`).join(", ");
}

function notACutPoint(
  arch: Architecture,
  cut: string,
  at: number,
  pos: Map<string, number>,
): Finding {
  const before = arch.cutPoints.findLast((n) => (pos.get(n) ?? 0) < at);
  const after = arch.cutPoints.find((n) => (pos.get(n) ?? 0) > at);
  const nearest = [before, after].filter((n): n is string => n !== undefined);
  return {
    kind: "not-a-cut-point",
    severity: "error",
    message:
      `"${cut}" is not a cut point: another branch of its block bypasses it, so its output ` +
      `alone does not carry what the rest of the network reads; cut after ${
        nearest.length > 0 ? quoteList(nearest).replace(", ", " or ") : "another layer"
      } instead (dropping a single conv layer is no way around it either: the next layer's ` +
      `pretrained filters were learned on that layer's output, not on its input)`,
    layer: cut,
    nearestCutPoints: nearest,
  };
}

function describeWindow(l: LayerInfo): string {
  const k = l.kernel ?? [1, 1];
  const s = l.stride ?? [1, 1];
  return `${l.className} ${k[0]}x${k[1]} stride ${s[0] === s[1] ? s[0] : `${s[0]}x${s[1]}`} ${
    l.padding ?? ""
  }`.trimEnd();
}

interface AxisVerdict {
  fits: boolean;
  exact: boolean;
  headFits: boolean;
}

/**
 * Everything about one candidate size along one axis, from one replay.
 * `exactOver` names the layers whose strides must divide evenly; `null` for all.
 */
function verdict(
  layers: readonly LayerInfo[],
  replayed: Map<string, ReplayedLayer>,
  axis: Axis,
  headSource: string | null,
  headSize: number | null,
  exactOver: ReadonlySet<string> | null,
): AxisVerdict {
  let fits = true;
  let exact = true;
  for (const l of layers) {
    const r = replayed.get(l.name);
    if (!r) continue;
    if (r.output && r.output[axis] < 1) fits = false;
    if (
      r.input && WINDOW_LAYERS.has(l.className) && l.kernel && l.stride && l.dilation &&
      l.padding && (exactOver === null || exactOver.has(l.name))
    ) {
      const rem = windowRemainder(
        r.input[axis],
        l.kernel[axis],
        l.stride[axis],
        l.dilation[axis],
        l.padding,
      );
      if (rem !== 0) exact = false;
    }
  }
  const src = headSource === null ? undefined : replayed.get(headSource)?.output;
  const headFits = headSize === null ||
    (src !== null && src !== undefined && src[axis] === headSize);
  return { fits, exact, headFits };
}

function spatialFindings(
  arch: Architecture,
  layers: LayerInfo[],
  keep: Set<string> | undefined,
  size: [number, number],
): Finding[] {
  const findings: Finding[] = [];
  const replayed = replay(arch.layers, size, keep);
  const flatten = (arch.headKind === "flatten-dense" || arch.headKind === "pool-flatten-dense")
    ? layers.find((l) => l.className === "Flatten")
    : undefined;
  const headSource = flatten?.inbound[0] ?? null;
  const headSize = flatten && arch.headInputSize ? arch.headInputSize : null;
  // A fixed head checks the map it gets by its own size, so the strides that
  // must divide evenly are those of the layers before it (a pooling head of
  // MobileNetV2 takes 7x7 of the 8x8 map of a 256x256 input and still fits).
  const head = new Set(headSize !== null ? arch.headLayers : []);
  const body = new Set(layers.filter((l) => !head.has(l.name)).map((l) => l.name));
  const good = (
    n: number,
    axis: Axis,
    withHead: boolean,
    exactOver: ReadonlySet<string> | null,
  ): boolean => {
    const v = verdict(
      layers,
      replay(arch.layers, [n, n], keep),
      axis,
      headSource,
      withHead && headSize ? headSize[axis] : null,
      exactOver,
    );
    return v.fits && v.exact && v.headFits;
  };
  const nearest = (
    withHead: boolean,
    exactOver: ReadonlySet<string> | null = body,
  ): { height: number; width: number }[] => {
    const per = ([0, 1] as const).map((axis) => {
      const n = size[axis];
      const limit = Math.max(4 * n, 4 * (arch.nativeInputShape[axis + 1] ?? 0), 1024);
      let below: number | undefined;
      for (let c = n - 1; c >= 1; c--) {
        if (good(c, axis, withHead, exactOver)) {
          below = c;
          break;
        }
      }
      let above: number | undefined;
      for (let c = n + 1; c <= limit; c++) {
        if (good(c, axis, withHead, exactOver)) {
          above = c;
          break;
        }
      }
      return [below, above];
    });
    const out: { height: number; width: number }[] = [];
    for (const i of [0, 1]) {
      const h = per[0]?.[i];
      const w = per[1]?.[i];
      if (h !== undefined && w !== undefined) out.push({ height: h, width: w });
    }
    return out;
  };
  const sizes = (list: { height: number; width: number }[]) =>
    list.map((s) => `${s.height}x${s.width}`).join(" or ");

  // Too small: the first layer whose output has no rows or columns left.
  const broken = layers.find((l) => {
    const out = replayed.get(l.name)?.output;
    return out !== null && out !== undefined && (out[0] < 1 || out[1] < 1);
  });
  if (broken) {
    const r = replayed.get(broken.name) as ReplayedLayer;
    const min = minFitting(arch.layers, keep);
    const near = nearest(headSize !== null).filter((s) => s.height >= min[0] && s.width >= min[1]);
    const inSize = r.input ? `${r.input[0]}x${r.input[1]}` : "no";
    findings.push({
      kind: "too-small",
      severity: "error",
      message:
        `${size[0]}x${size[1]} is too small: layer "${broken.name}" (${
          describeWindow(broken)
        }) gets a ${inSize} map and would output ${r.output?.[0]}x${r.output?.[1]}; ` +
        `the smallest input it accepts is ${min[0]}x${min[1]}${
          near.length > 0 ? `, the nearest size that fits every stride is ${sizes(near)}` : ""
        }: resize or pad the images`,
      layer: broken.name,
      minInputSize: min,
      nearestSizes: near,
    });
    return findings;
  }

  if (flatten && headSize && headSource) {
    const got = replayed.get(headSource)?.output;
    if (got && (got[0] !== headSize[0] || got[1] !== headSize[1])) {
      const near = nearest(true, null);
      const native = arch.nativeInputShape;
      findings.push({
        kind: "fixed-by-head",
        severity: "error",
        message: `the head flattens a ${got[0]}x${got[1]} map at "${flatten.name}" but its Dense ` +
          `weights were trained on ${headSize[0]}x${headSize[1]} (a ${native[1]}x${native[2]} ` +
          `input): resize to ${
            near.length > 0 ? sizes(near) : `${native[1]}x${native[2]}`
          }, or call convolutionalize(model) to turn the Dense layers into convolutions that ` +
          `give a map of class scores at any size that fits, or cut the network at "${
            arch.featureCut ?? "its feature layer"
          }" for features`,
        layer: flatten.name,
        nearestSizes: near,
      });
      return findings;
    }
  }

  const lastJump = layers.findLast((l) => l.jump !== null)?.jump;
  const outputStride = lastJump ? Math.max(...lastJump) : arch.totalStride;
  // Stride mismatch: a window layer that drops border pixels ('valid') or pads
  // to a multiple of its stride ('same'), shifting the score map.
  for (const l of layers) {
    const r = replayed.get(l.name);
    if (!r?.input || !WINDOW_LAYERS.has(l.className)) continue;
    if (!l.kernel || !l.stride || !l.dilation || !l.padding) continue;
    const rem = ([0, 1] as const).map((a) =>
      windowRemainder(
        r.input?.[a] ?? 0,
        l.kernel?.[a] ?? 1,
        l.stride?.[a] ?? 1,
        l.dilation?.[a] ?? 1,
        l.padding ?? "valid",
      )
    );
    if (rem[0] === 0 && rem[1] === 0) continue;
    const near = nearest(headSize !== null, head.has(l.name) ? null : body);
    const where = `layer "${l.name}" (${describeWindow(l)}) on its ${r.input[0]}x${
      r.input[1]
    } input`;
    const what = l.padding === "valid"
      ? `${where} ignores the last ${plural(Math.max(rem[0] ?? 0, 0), "row")} and ${
        plural(Math.max(rem[1] ?? 0, 0), "column")
      }`
      : `${where} pads to a multiple of its stride, so the output grid no longer aligns with ` +
        `steps of the total stride ${outputStride ?? "?"}`;
    findings.push({
      kind: "stride-mismatch",
      severity: "warning",
      message: `${what}${
        near.length > 0
          ? `: the nearest sizes where every stride divides evenly are ${sizes(near)}`
          : ""
      }`,
      layer: l.name,
      nearestSizes: near,
    });
    break;
  }
  return findings;
}

/** Smallest `[h, w]` for which every kept layer outputs at least 1×1 (outputs grow with the input). */
function minFitting(layers: readonly LayerInfo[], keep: Set<string> | undefined): [number, number] {
  const fits = (n: number, axis: Axis) => {
    for (const r of replay(layers, [n, n], keep).values()) {
      if (r.output && r.output[axis] < 1) return false;
    }
    return true;
  };
  return ([0, 1] as const).map((axis) => {
    let lo = 1;
    let hi = 1 << 16;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(mid, axis)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }) as [number, number];
}
