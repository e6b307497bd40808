/**
 * The model zoo SDK, task by task: load a pretrained checkpoint from a
 * registry, see what its architecture allows, run it on other input sizes or
 * channels, cut it for its CNN codes or freeze its early layers, fine-tune it
 * on new images, and publish the result.
 *
 * - Load: {@linkcode ZooClient} (`loadModel`, `pull`, `resolve`, `publish`).
 * - Check: {@linkcode analyze} and {@linkcode checkInput}.
 * - Change: {@linkcode convolutionalize}, {@linkcode resizeInput},
 *   {@linkcode adaptInputChannels}, {@linkcode cutAt} (cut at a layer),
 *   {@linkcode codeExtractor} (cut for CNN codes), {@linkcode freeze}.
 * - Predict faster: {@linkcode foldForInference} (BatchNormalization folded
 *   into the convolutions).
 * - Train: {@linkcode fineTune}, on the device {@linkcode selectDevice} picks.
 *
 * Importing the SDK starts no tfjs backend, so every op works from the start
 * on tfjs's cpu backend; `await selectDevice("auto", { training: false })`
 * moves to the fastest device of the machine (WebGPU on a GPU, else wasm).
 * The lower-level parts live at the package's subpaths: `./client`, `./arch`,
 * `./surgery`, `./data`, `./devices`, `./finetune`, `./features`, `./train`
 * and `./advisor`.
 *
 * @example Load a checkpoint, check an input size, get a score map
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs";
 * import { analyze, checkInput, convolutionalize, selectDevice, ZooClient } from "@zoo/model-zoo";
 *
 * await selectDevice("auto", { training: false });
 * const zoo = new ZooClient({ url: "http://localhost:8000" });
 * const model = await zoo.loadModel("zoo/lenet5");
 * const check = checkInput(analyze(model), { height: 56, width: 56, channels: 1 });
 * console.log(check.findings.map((f) => f.kind)); // ["fixed-by-head"]
 * const scores = convolutionalize(model).predict(tf.zeros([1, 56, 56, 1])) as tf.Tensor;
 * console.log(scores.shape); // [1, 8, 8, 10]
 * ```
 *
 * @module
 */
export {
  type components,
  DEFAULT_URL,
  type FileDocument,
  type ModelDocument,
  type PublishOptions,
  type PublishResult,
  type PulledFile,
  type PulledModel,
  type TransferOptions,
  type VersionDocument,
  ZooClient,
  type ZooClientOptions,
} from "./sdk/client/mod.ts";
export {
  IntegrityError,
  NotFoundError,
  OfflineError,
  type Problem,
  RegistryError,
} from "./sdk/errors.ts";
export type { OpenRange, RetryPolicy, ZooCache, ZooCacheOptions } from "./sdk/client/mod.ts";
export { analyze, type AnalyzeOptions, type LayersModelLike } from "./core/arch/analyze.ts";
export { checkInput, type CheckInputOptions, type InputSize } from "./core/arch/check_input.ts";
export type * from "./core/arch/types.ts";
export type {
  ModelJson,
  WeightQuantization,
  WeightsManifestEntry,
  WeightsManifestGroup,
} from "./core/model_json.ts";
export { convolutionalize, resizeInput } from "./sdk/surgery/convolutionalize.ts";
export { adaptInputChannels } from "./sdk/surgery/adapt_channels.ts";
export { cutAt, type CutModel } from "./sdk/surgery/cut.ts";
export { type CodeExtractor, codeExtractor, type CodePooling } from "./sdk/features/extract.ts";
export { freeze, type FreezeOptions, type FrozenLayers } from "./sdk/surgery/freeze.ts";
export { type FoldedModel, foldForInference } from "./sdk/surgery/fold.ts";
export {
  fineTune,
  type FineTuneCallbacks,
  type FineTuneOptions,
  type FineTuneOutput,
  type FineTuneResult,
  type FineTuneTraining,
  type SourceInfo,
  type TrainingPlan,
} from "./sdk/finetune/fine_tune.ts";
export type * from "./sdk/types.ts";
export type { DeviceName } from "./sdk/devices/types.ts";
export type { Batch, BatchOptions, Dataset, Preprocessing, Split } from "./sdk/data/types.ts";
export {
  DEVICE_NAMES,
  type DeviceChoice,
  type DeviceJob,
  selectDevice,
} from "./sdk/devices/select.ts";
export type { LayersModel, Tensor, Tensor1D, Tensor4D } from "./sdk/_tfjs_types.ts";
