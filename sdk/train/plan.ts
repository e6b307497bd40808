/**
 * What a fine-tuning step costs before it runs: memory per image (from the
 * activations the gradient tape keeps) and floating-point operations per
 * image, the micro-batch that fits a memory budget, and a rough duration.
 * Big checkpoints need this: a whole-network MobileNetV2 step keeps about
 * 440 MiB per 224x224 image on the wasm backend, whose heap ends at 4 GiB,
 * and a batch of 32 in one piece never finishes.
 *
 * @module
 */
import type { LayersModel } from "../_tfjs_types.ts";
import { analyze } from "../../core/arch/analyze.ts";

/**
 * Heap bytes per activation value the tape keeps for a training step:
 * measured on MobileNetV2 at 224x224 on wasm (its layers output 22.0 M
 * values per image): the heap grew by 0.87, 1.72 and 2.55 GiB for one
 * step of 4, 8 and 12 images, 214.5 MiB per image, 10.2 bytes per value;
 * 12 leaves a sixth to spare. (Before the training loop ran
 * BatchNormalization itself, as one operation, it was 22.)
 */
export const TAPE_BYTES_PER_VALUE = 12;

/**
 * Bytes per trainable parameter beyond the activations: the weight, its
 * gradient, the accumulated sum, Adam's two moments and a temporary.
 */
export const BYTES_PER_PARAM = 24;

/** The default memory budget of one step: the wasm backend's heap ends at 4 GiB. */
export const DEFAULT_MEMORY_BUDGET = 3.5 * 2 ** 30;

/**
 * Training FLOPs per second by backend, for the up-front estimate: measured
 * from the CPU time of whole-network MobileNetV2 steps on wasm (about 2.5
 * GFLOP/s per thread); cpu and a software WebGPU adapter are slower. The
 * first batch's measured time replaces the estimate.
 */
export const TRAINING_FLOPS_PER_SECOND: Readonly<Record<string, number>> = Object.freeze({
  wasm: 2.5e9,
  cpu: 0.3e9,
  webgpu: 1e9,
});

/** What one image costs a training step. */
export interface StepCost {
  /** Heap bytes the step keeps per image (the trainable part's activations on the tape). */
  bytesPerImage: number;
  /** Bytes that do not grow with the batch (trainable weights, gradients, optimizer state). */
  fixedBytes: number;
  /** FLOPs per image: the frozen part's forward pass, 3× the trainable part's (forward and backward). */
  flopsPerImage: number;
}

/**
 * The cost of a training step of `model` with the layers in `trainable`
 * running on the tape and the rest frozen (inference only).
 *
 * @param model the model being trained (the new head attached)
 * @param trainable names of the layers that run in training mode
 * @param trainableParams values that train
 * @returns bytes per image, fixed bytes and FLOPs per image
 *
 * @example A small convnet, all of it trained
 * ```ts
 * import { assert } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { stepCost } from "./plan.ts";
 * const net = tf.sequential({ layers: [
 *   tf.layers.conv2d({ name: "conv", inputShape: [8, 8, 1], filters: 2, kernelSize: 3 }),
 *   tf.layers.flatten({ name: "flat" }),
 *   tf.layers.dense({ name: "out", units: 2 }),
 * ] });
 * const cost = stepCost(net, ["conv", "flat", "out"], net.countParams());
 * assert(cost.bytesPerImage > 0 && cost.flopsPerImage > 0);
 * ```
 */
export function stepCost(
  model: LayersModel,
  trainable: readonly string[],
  trainableParams: number,
): StepCost {
  const onTape = new Set(trainable);
  let values = 0;
  let flops = 0;
  for (const layer of analyze(model).layers) {
    const size = layer.outputShape.slice(1).reduce<number>((p, d) => p * (d ?? 1), 1);
    if (onTape.has(layer.name)) {
      values += size;
      flops += 3 * (layer.flops ?? 0);
    } else {
      flops += layer.flops ?? 0;
    }
  }
  return {
    bytesPerImage: values * TAPE_BYTES_PER_VALUE,
    fixedBytes: trainableParams * BYTES_PER_PARAM,
    flopsPerImage: flops,
  };
}

/** What {@linkcode planMicroBatch} decided. */
export interface MicroBatchPlan {
  /** Images per micro-batch (the whole batch when it fits). */
  microBatch: number;
  /** Estimated heap bytes of one step at that micro-batch. */
  bytes: number;
  /** Whether the micro-batch was chosen here (none was asked for). */
  chosen: boolean;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * The micro-batch of a step: the one asked for, else the whole batch when it
 * fits `budget`, else the largest that does.
 *
 * @param cost the step's cost per image
 * @param batchSize images per optimization step
 * @param microBatch the micro-batch asked for, if any
 * @param budget heap bytes a step may use @default {DEFAULT_MEMORY_BUDGET}
 * @returns the micro-batch, its estimated bytes, and whether it was chosen here
 * @throws {RangeError} when even one image, or the micro-batch asked for, does not fit, saying what to change
 *
 * @example 440 MiB per image in 3.5 GiB
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { planMicroBatch } from "./plan.ts";
 * const plan = planMicroBatch({ bytesPerImage: 440 * 2 ** 20, fixedBytes: 0, flopsPerImage: 0 }, 32);
 * assertEquals([plan.microBatch, plan.chosen], [8, true]);
 * ```
 */
export function planMicroBatch(
  cost: StepCost,
  batchSize: number,
  microBatch?: number,
  budget: number = DEFAULT_MEMORY_BUDGET,
): MicroBatchPlan {
  const bytes = (n: number) => cost.fixedBytes + n * cost.bytesPerImage;
  const fits = Math.floor((budget - cost.fixedBytes) / cost.bytesPerImage);
  const per = `about ${Math.round(cost.bytesPerImage / 2 ** 20)} MiB per image`;
  if (fits < 1) {
    throw new RangeError(
      `Cannot train: one image needs ${gib(bytes(1))} (${per}), more than the ${
        gib(budget)
      } a step may use: freeze more layers (--strategy partial with a later --freeze-until), use --strategy features, or a smaller --input-size`,
    );
  }
  const asked = microBatch === undefined ? undefined : Math.min(microBatch, batchSize);
  if (asked !== undefined) {
    if (asked > fits) {
      throw new RangeError(
        `Cannot train with micro-batches of ${asked}: a step would need about ${
          gib(bytes(asked))
        } (${per}), more than the ${gib(budget)} it may use: pass --micro-batch ${fits} or less${
          asked === batchSize ? ` (or --batch-size ${fits})` : ""
        }`,
      );
    }
    return { microBatch: asked, bytes: bytes(asked), chosen: false };
  }
  const n = Math.min(batchSize, fits);
  return { microBatch: n, bytes: bytes(n), chosen: n < batchSize };
}

/**
 * A duration for a person: `40 s`, `3 min`, `1 h 20 min`.
 *
 * @param seconds the duration
 * @returns the text
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { formatDuration } from "./plan.ts";
 * assertEquals(formatDuration(200), "3 min");
 * ```
 */
export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
