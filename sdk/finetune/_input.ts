/**
 * The network against the data, a step of `fineTune()`: the image size the
 * model runs on, its channels, the preprocessing the card asks for, and the
 * cut asked for, all checked before any training.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { analyze } from "../../core/arch/analyze.ts";
import type { Architecture } from "../../core/arch/types.ts";
import { checkInput } from "../../core/arch/check_input.ts";
import type { Dataset, Preprocessing } from "../data/types.ts";
import { adaptInputChannels } from "../surgery/adapt_channels.ts";
import { resizeInput } from "../surgery/convolutionalize.ts";
import type { FineTuneOptions } from "./options.ts";

/**
 * The network fitted to `train`'s images, its notes logged, and the cut
 * asked for checked against it.
 */
export function fitInput(
  model: tf.LayersModel,
  train: Dataset,
  opts: FineTuneOptions,
  card: Record<string, unknown> | undefined,
  log: (line: string) => void,
): InputPlan {
  const plan = planInput(model, analyze(model), train, opts, card);
  for (const note of plan.notes) log(note);
  if (opts.cut !== undefined) {
    const { height, width, channels } = plan.preprocess;
    const cutCheck = checkInput(analyze(plan.model), { height, width, channels }, {
      dropLayer: opts.cut,
    });
    if (!cutCheck.ok) {
      if (plan.model !== model) plan.model.dispose();
      throw new RangeError(cutCheck.message);
    }
  }
  return plan;
}

/** The network fitted to the data: the model to train and how images become its input. */
export interface InputPlan {
  /** The checkpoint itself, or a resized or channel-adapted copy (then the run disposes it). */
  model: tf.LayersModel;
  /** How images become the model's input: size, channels and the card's normalization. */
  preprocess: Preprocessing;
  /** Lines for the log, one per decision. */
  notes: string[];
  /** How the input size was handled, for the card. */
  inputNote?: string;
  /** How the channels were adapted, for the card. */
  channelNote?: string;
}

/** The preprocessing a checkpoint's card records, as far as it is well-formed. */
function cardPreprocessing(card: Record<string, unknown> | undefined): Partial<Preprocessing> {
  const p = card?.preprocessing;
  if (typeof p !== "object" || p === null) return {};
  const r = p as Record<string, unknown>;
  const out: Partial<Preprocessing> = {};
  const nums = (v: unknown) =>
    Array.isArray(v) && v.every((x) => typeof x === "number") ? v as number[] : undefined;
  const range = nums(r.range);
  if (range?.length === 2) out.range = [range[0]!, range[1]!];
  const mean = nums(r.mean);
  if (mean) out.mean = mean;
  const std = nums(r.std);
  if (std) out.std = std;
  if (r.channelOrder === "rgb" || r.channelOrder === "bgr") out.channelOrder = r.channelOrder;
  if (r.alignCorners === true) out.alignCorners = true;
  return out;
}

/** One value per channel for `channels`, from a card's per-channel list. */
function perChannel(v: readonly number[] | undefined, channels: number): number[] | undefined {
  if (v === undefined || v.length === channels || v.length === 1) return v?.slice();
  const avg = v.reduce((a, b) => a + b, 0) / v.length;
  return Array.from({ length: channels }, () => avg);
}

/**
 * Fits the checkpoint to the data's images: their size (resized in
 * preprocessing with `resize` or `inputSize`, else the network through
 * `resizeInput`, refused with what would work when the strides do not fit),
 * their channels (`adaptInputChannels`) and the card's preprocessing.
 */
export function planInput(
  model: tf.LayersModel,
  arch: Architecture,
  train: Dataset,
  opts: Pick<FineTuneOptions, "inputSize" | "resize">,
  card: Record<string, unknown> | undefined,
): InputPlan {
  const native = arch.nativeInputShape;
  const [nh, nw, nc] = [native[1], native[2], native[3]];
  if (typeof nh !== "number" || typeof nw !== "number" || typeof nc !== "number") {
    throw new RangeError(
      `Cannot fine-tune "${arch.name}": its input shape [${
        native.join(", ")
      }] is not a fixed image size`,
    );
  }
  const [dh, dw, dc] = train.imageShape;
  const notes: string[] = [];
  const plan: InputPlan = {
    model,
    notes,
    preprocess: { height: nh, width: nw, channels: nc as 1 | 3, range: [0, 1] },
  };
  const fromCard = cardPreprocessing(card);
  let height = dh, width = dw;
  if (opts.inputSize !== undefined) {
    ({ height, width } = opts.inputSize);
  } else if (opts.resize) {
    [height, width] = [nh, nw];
  }
  if (height !== dh || width !== dw) {
    plan.inputNote = `images resized from ${dh}x${dw} to ${height}x${width} in preprocessing${
      opts.resize ? " (resize)" : ""
    }`;
  }
  if (height !== nh || width !== nw) {
    const check = checkInput(analyze(plan.model), { height, width, channels: nc });
    const blocking = check.findings.filter((f) =>
      f.severity === "error" && f.kind !== "fixed-by-head" && f.kind !== "channel-mismatch"
    );
    const hint = opts.resize ? "" : `; or resize the images to the native ${nh}x${nw} (--resize)`;
    if (blocking.length > 0) {
      throw new RangeError(
        `Cannot run "${arch.name}" on ${height}x${width}x${nc}: ${
          blocking.map((f) => f.message).join("; ")
        }${hint}`,
      );
    }
    try {
      const resized = resizeInput(plan.model, { height, width });
      if (plan.model !== model) plan.model.dispose();
      plan.model = resized;
    } catch (e) {
      if (e instanceof RangeError) throw new RangeError(`${e.message}${hint}`);
      throw e;
    }
    const how = arch.headKind === "flatten-dense" || arch.headKind === "pool-flatten-dense"
      ? `resizeInput: the flatten head is convolutionalized and its score map averaged`
      : `resizeInput: the ${arch.headKind} head takes any size`;
    plan.inputNote = `${
      plan.inputNote ? `${plan.inputNote}; ` : ""
    }model runs on ${height}x${width} instead of its native ${nh}x${nw} (${how})`;
  }
  if (plan.inputNote) notes.push(`input size: ${plan.inputNote}`);
  let channels = nc;
  if (dc !== nc) {
    if (dc !== 1 && dc !== 3) {
      throw new RangeError(
        `Cannot fine-tune "${arch.name}" on "${train.name}": its images have ${dc} channels; use 1 or 3`,
      );
    }
    const adapted = adaptInputChannels(plan.model, dc);
    if (plan.model !== model) plan.model.dispose();
    plan.model = adapted;
    channels = dc;
    plan.channelNote =
      `the data has ${dc} channel${dc === 1 ? "" : "s"} and "${arch.name}" ${nc}: ` +
      `adaptInputChannels(model, ${dc}) ${
        dc === 1 ? "summed the first conv's kernels over RGB" : "repeated its kernels"
      }`;
    notes.push(`channels: ${plan.channelNote}`);
  }
  plan.preprocess = {
    height,
    width,
    channels: channels as 1 | 3,
    range: fromCard.range ?? [0, 1],
    ...(fromCard.mean ? { mean: perChannel(fromCard.mean, channels)! } : {}),
    ...(fromCard.std ? { std: perChannel(fromCard.std, channels)! } : {}),
    ...(fromCard.channelOrder ? { channelOrder: fromCard.channelOrder } : {}),
    ...(fromCard.alignCorners ? { alignCorners: true } : {}),
  };
  return plan;
}
