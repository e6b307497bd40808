/**
 * Per-epoch checkpoints of a fine-tuning run, and reading the last one back
 * to resume. One folder per completed epoch:
 *
 * ```
 * <dir>/epoch-0003/model.json          the model, loadable by tf.loadLayersModel
 * <dir>/epoch-0003/weights.bin         its weights, in `model.weights` order
 * <dir>/epoch-0003/optimizer-<g>.bin   each optimizer's state (Adam moments, iterations)
 * <dir>/epoch-0003/state.json          epoch, phase, best so far, history, seed, options,
 *                                      each optimizer's scalar state (Adam's β powers)
 * ```

Resuming from a checkpoint gives the run an uninterrupted one would have
given, bit for bit on a deterministic backend: the weights include the
BatchNormalization moving statistics, the optimizers get back their slots,
their step count and the scalars `getWeights()` leaves out (Adam's running
powers β₁ᵗ and β₂ᵗ, which tfjs's `setWeights()` would recompute with `pow`
and so round differently from the products of the uninterrupted run), and
the data order and Dropout masks are functions of the seed, the epoch and
the step (see `_loop.ts`).
 *
 * A folder is written under a temporary name and renamed once complete, so a
 * run killed mid-write leaves the previous epoch as the last checkpoint. Only
 * the last epoch and the best one (lowest validation loss) are kept.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { EpochMetrics } from "../types.ts";
import type { LayersModel, Optimizer, Tensor } from "../_tfjs_types.ts";

/** A tensor with a name, as `optimizer.getWeights()` returns them. */
export interface NamedTensor {
  /** The weight's name. */
  name: string;
  /** Its value. */
  tensor: Tensor;
}

/** The format tag in every `state.json`. */
export const CHECKPOINT_FORMAT = "zoo-finetune-checkpoint/1";

/** Where a run stands after a completed epoch: what resuming needs besides the weights. */
export interface CheckpointState {
  /** The last completed epoch, 1-based over the whole run. */
  epoch: number;
  /** The phase the next epoch runs in. */
  phase: "head" | "all";
  /** Epochs completed in the head phase. */
  headEpochsDone: number;
  /** Epochs completed in the all phase. */
  allEpochsDone: number;
  /** Whether early stopping ended the run. */
  stopped: boolean;
  /** The epoch with the lowest validation loss so far; `null` without validation. */
  bestEpoch: number | null;
  /** That loss. */
  bestValLoss: number | null;
  /** Epochs since the best one (early stopping's counter). */
  epochsSinceBest: number;
  /** Metrics of every completed epoch. */
  history: EpochMetrics[];
  /** The run's seed: epoch `e` sees the data in the order `dataSeed(seed, e)` gives. */
  seed: number;
  /** The options a resumed run must repeat (everything that changes the result but the epoch count and patience). */
  options: Record<string, string | number | boolean | null>;
}

/** A checkpoint read back by {@linkcode readCheckpoint}. Its tensors belong to the caller. */
export interface Checkpoint {
  /** The epoch folder. */
  path: string;
  /** Where the run stood. */
  state: CheckpointState;
  /** The model's weights, in `model.weights` order. */
  weights: Tensor[];
  /** Each optimizer's weights, as `optimizer.setWeights()` takes them, by group name. */
  optimizers: Record<string, NamedTensor[]>;
  /** Each optimizer's scalar variables that `getWeights()` leaves out, by group name; see {@linkcode restoreOptimizer}. */
  optimizerScalars: Record<string, Record<string, number>>;
  /** The best epoch's weights when that is not the last epoch, else `null`. */
  bestWeights: Tensor[] | null;
}

interface StateFile {
  format: typeof CHECKPOINT_FORMAT;
  state: CheckpointState;
  optimizers: Record<string, tf.io.WeightsManifestEntry[]>;
  /** Absent in checkpoints written before it was recorded. */
  optimizerScalars?: Record<string, Record<string, number>>;
  weights: tf.io.WeightsManifestEntry[];
}

/**
 * The optimizer's own scalar variables, by property name: Adam's `accBeta1`
 * and `accBeta2` (β₁ᵗ⁺¹ and β₂ᵗ⁺¹ as the products of every step so far), which
 * `getWeights()` does not return. Float32 values survive JSON exactly.
 */
async function scalarState(optimizer: tf.Optimizer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(optimizer)) {
    if (value instanceof tf.Variable && value.rank === 0 && value.dtype === "float32") {
      out[key] = (await value.data())[0]!;
    }
  }
  return out;
}

/**
 * Puts a checkpointed optimizer state back: its weights (slots and step
 * count) through `setWeights()`, then the scalar variables that method
 * recomputes with `pow` (see {@linkcode scalarState}), so the next step is
 * the one the uninterrupted run took, bit for bit.
 *
 * @param optimizer a fresh optimizer of the kind and learning rate that wrote the checkpoint
 * @param weights its checkpointed weights ({@linkcode Checkpoint.optimizers}); not disposed
 * @param scalars its checkpointed scalars ({@linkcode Checkpoint.optimizerScalars})
 * @throws {RangeError} when a scalar names no scalar variable of `optimizer`
 *
 * @example Restore an Adam optimizer after three steps
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { readCheckpoint, restoreOptimizer, writeCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const adam = tf.train.adam(0.1);
 * const loss = () => tf.tidy(() => tf.sum(model.apply(tf.ones([1, 1])) as tf.Tensor) as tf.Scalar);
 * for (let i = 0; i < 3; i++) adam.minimize(loss);
 * await writeCheckpoint(dir, {
 *   model,
 *   optimizers: { head: adam },
 *   state: {
 *     epoch: 1, phase: "all", headEpochsDone: 0, allEpochsDone: 1, stopped: false,
 *     bestEpoch: null, bestValLoss: null, epochsSinceBest: 0, history: [], seed: 0, options: {},
 *   },
 * });
 * const back = (await readCheckpoint(dir))!;
 * const fresh = tf.train.adam(0.1);
 * await restoreOptimizer(fresh, back.optimizers.head!, back.optimizerScalars.head ?? {});
 * assertEquals(fresh.iterations, 3);
 * tf.dispose([back.weights, back.optimizers.head!.map((w) => w.tensor)]);
 * model.dispose();
 * ```
 */
export async function restoreOptimizer(
  optimizer: Optimizer,
  weights: NamedTensor[],
  scalars: Record<string, number>,
): Promise<void> {
  await optimizer.setWeights(weights);
  const own = optimizer as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(scalars)) {
    const v = own[key];
    if (!(v instanceof tf.Variable && v.rank === 0)) {
      throw new RangeError(
        `Cannot restore the optimizer's "${key}": ${optimizer.getClassName()} has no such scalar variable`,
      );
    }
    tf.tidy(() => v.assign(tf.scalar(value, v.dtype)));
  }
}

const EPOCH_DIR = /^epoch-(\d+)$/;

function epochDir(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, "0")}`;
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

function bytesOf(data: ArrayBuffer | ArrayBuffer[] | undefined): Uint8Array<ArrayBuffer> {
  return data === undefined
    ? new Uint8Array(0)
    : new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/**
 * Writes the checkpoint of a completed epoch to `<dir>/epoch-NNNN/` and
 * removes older epoch folders except the best epoch's.
 *
 * @param dir the checkpoint folder (created if missing)
 * @param checkpoint the model, the optimizers by group name, and the run's state
 * @returns the path of the epoch folder written
 * @throws {Deno.errors.PermissionDenied} or other file-system errors when `dir` cannot be written
 *
 * @example Checkpoint a tiny model and read it back
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import * as tf from "@tensorflow/tfjs";
 * import { readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
 * await writeCheckpoint(dir, {
 *   model,
 *   optimizers: { head: tf.train.sgd(0.1) },
 *   state: {
 *     epoch: 1, phase: "all", headEpochsDone: 0, allEpochsDone: 1, stopped: false,
 *     bestEpoch: null, bestValLoss: null, epochsSinceBest: 0, history: [], seed: 0, options: {},
 *   },
 * });
 * const back = await readCheckpoint(dir);
 * assertEquals([back?.state.epoch, back?.weights.length], [1, 2]);
 * tf.dispose(back?.weights);
 * model.dispose();
 * ```
 */
export async function writeCheckpoint(
  dir: string,
  checkpoint: {
    model: LayersModel;
    optimizers: Record<string, Optimizer>;
    state: CheckpointState;
  },
): Promise<string> {
  const { model, optimizers, state } = checkpoint;
  await Deno.mkdir(dir, { recursive: true });
  const final = join(dir, epochDir(state.epoch));
  const tmp = join(dir, `.${epochDir(state.epoch)}.tmp`);
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp);
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((a) => {
    artifacts = a;
    return Promise.resolve({ modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) });
  }));
  if (artifacts === undefined) throw new Error("Cannot checkpoint the model: tfjs saved nothing");
  const weights = artifacts.weightSpecs ?? [];
  await Deno.writeFile(join(tmp, "weights.bin"), bytesOf(artifacts.weightData));
  await Deno.writeTextFile(
    join(tmp, "model.json"),
    JSON.stringify({
      modelTopology: artifacts.modelTopology,
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      weightsManifest: [{ paths: ["weights.bin"], weights }],
    }),
  );
  const optimizerSpecs: Record<string, tf.io.WeightsManifestEntry[]> = {};
  const optimizerScalars: Record<string, Record<string, number>> = {};
  for (const [name, optimizer] of Object.entries(optimizers)) {
    optimizerScalars[name] = await scalarState(optimizer);
    const named = await optimizer.getWeights();
    try {
      const { data, specs } = await tf.io.encodeWeights(named);
      optimizerSpecs[name] = specs;
      await Deno.writeFile(join(tmp, `optimizer-${name}.bin`), bytesOf(data));
    } finally {
      // The first entry is a scalar getWeights() made for the iteration count; the rest are the optimizer's own variables.
      named[0]?.tensor.dispose();
    }
  }
  const file: StateFile = {
    format: CHECKPOINT_FORMAT,
    state,
    optimizers: optimizerSpecs,
    optimizerScalars,
    weights,
  };
  await Deno.writeTextFile(join(tmp, "state.json"), JSON.stringify(file, null, 1));
  await Deno.remove(final, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, final);
  const keep = new Set([epochDir(state.epoch)]);
  if (state.bestEpoch !== null) keep.add(epochDir(state.bestEpoch));
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory && EPOCH_DIR.test(entry.name) && !keep.has(entry.name)) {
      await Deno.remove(join(dir, entry.name), { recursive: true });
    }
  }
  return final;
}

async function readStateFile(path: string): Promise<StateFile> {
  const file = JSON.parse(await Deno.readTextFile(join(path, "state.json"))) as StateFile;
  if (file.format !== CHECKPOINT_FORMAT) {
    throw new SyntaxError(
      `Cannot read checkpoint "${path}": format "${
        String(file.format)
      }" is not "${CHECKPOINT_FORMAT}"`,
    );
  }
  return file;
}

async function decode(
  path: string,
  specs: tf.io.WeightsManifestEntry[],
): Promise<NamedTensor[]> {
  const bytes = await Deno.readFile(path);
  const map = tf.io.decodeWeights(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    specs,
  );
  return specs.map((s) => ({ name: s.name, tensor: map[s.name]! }));
}

/**
 * Finds the last complete epoch folder in `dir` and reads it back.
 *
 * @param dir the checkpoint folder
 * @returns the checkpoint with the best epoch's weights (its tensors belong
 *   to the caller), or `null` when `dir` is missing or holds no complete epoch
 * @throws {SyntaxError} when a `state.json` is not a checkpoint of this format
 * @throws {Deno.errors.NotFound} when the best epoch's folder is missing
 *
 * @example Resume where a run stopped, or start afresh
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readCheckpoint } from "./checkpoint.ts";
 * const last = await readCheckpoint(await Deno.makeTempDir());
 * assertEquals(last, null);
 * ```
 */
export async function readCheckpoint(dir: string): Promise<Checkpoint | null> {
  let latest: { epoch: number; name: string } | null = null;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = EPOCH_DIR.exec(entry.name);
      if (!entry.isDirectory || m === null) continue;
      const epoch = Number(m[1]);
      if (latest === null || epoch > latest.epoch) latest = { epoch, name: entry.name };
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (latest === null) return null;
  const path = join(dir, latest.name);
  const file = await readStateFile(path);
  const weights = (await decode(join(path, "weights.bin"), file.weights)).map((w) => w.tensor);
  const optimizers: Record<string, NamedTensor[]> = {};
  for (const [name, specs] of Object.entries(file.optimizers)) {
    optimizers[name] = await decode(join(path, `optimizer-${name}.bin`), specs);
  }
  let bestWeights: tf.Tensor[] | null = null;
  const best = file.state.bestEpoch;
  if (best !== null && best !== file.state.epoch) {
    const bestPath = join(dir, epochDir(best));
    const bestFile = await readStateFile(bestPath);
    bestWeights = (await decode(join(bestPath, "weights.bin"), bestFile.weights)).map((w) =>
      w.tensor
    );
  }
  return {
    path,
    state: file.state,
    weights,
    optimizers,
    optimizerScalars: file.optimizerScalars ?? {},
    bestWeights,
  };
}
