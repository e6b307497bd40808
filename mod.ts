/**
 * The model zoo SDK: fetch and verify checkpoints from a registry, check what
 * a checkpoint's architecture allows, convolutionalize fully-connected heads
 * to run on new input sizes, load datasets, and fine-tune.
 *
 * @example Load a checkpoint and check an input size
 * ```ts ignore
 * import { analyze, checkInput, convolutionalize, ZooClient } from "./mod.ts";
 * const zoo = new ZooClient({ url: "http://localhost:8000" });
 * const model = await zoo.loadModel("zoo/lenet5@1.0.0");
 * const arch = analyze(model);
 * console.log(checkInput(arch, { height: 64, width: 64, channels: 1 }).message);
 * const fcn = convolutionalize(model);
 * ```
 *
 * @module
 */
export {
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
} from "./sdk/client.ts";
export {
  IntegrityError,
  NotFoundError,
  OfflineError,
  type Problem,
  RegistryError,
} from "./sdk/errors.ts";
export {
  type CheckpointFile,
  modelToFiles,
  registerZooRouter,
  ZOO_SCHEME,
  zooIOHandler,
  type ZooRouterRegistration,
} from "./sdk/io_handler.ts";
export {
  hashFile,
  type OpenRange,
  type RetryPolicy,
  sha256,
  ZooCache,
  type ZooCacheOptions,
} from "./sdk/cache.ts";
export { formatRef, type ModelRef, parseRef } from "./sdk/names.ts";
export { analyze, type AnalyzeOptions, type LayersModelLike } from "./sdk/arch/analyze.ts";
export { checkInput, type CheckInputOptions, type InputSize } from "./sdk/arch/check_input.ts";
export type {
  Architecture,
  Finding,
  FindingKind,
  HeadKind,
  InputCheck,
  LayerInfo,
  Shape,
} from "./sdk/arch/types.ts";
export type {
  ModelJson,
  WeightQuantization,
  WeightsManifestEntry,
  WeightsManifestGroup,
} from "./sdk/model_json.ts";
export {
  convolutionalize,
  resizeInput,
  type ScoreMapGeometry,
  scoreMapGeometry,
} from "./sdk/convolutionalize.ts";
export { adaptInputChannels } from "./sdk/adapt_channels.ts";
export * from "./sdk/data/mod.ts";
export {
  initWasmBackend,
  type WasmBackendInfo,
  type WasmBackendOptions,
} from "./sdk/devices/wasm.ts";
export type * from "./sdk/finetune/types.ts";
export {
  fineTune,
  type FineTuneOptions,
  type FineTuneResult,
  type SourceInfo,
  type TrainingPlan,
} from "./sdk/finetune/fine_tune.ts";
export {
  DEVICE_NAMES,
  type DeviceChoice,
  type DeviceJob,
  selectDevice,
} from "./sdk/devices/select.ts";
export { CONVNET_TRAINING_KERNELS, kernelsUsed, missingKernels } from "./sdk/devices/kernels.ts";
export {
  accumulatedGradients,
  attachHead,
  fineTuneNetwork,
  type FineTuneNetworkOptions,
  splitBatch,
} from "./sdk/train/mod.ts";
export {
  computeCodes,
  type FeatureOutcome,
  featureStrategy,
  type FeatureStrategyOptions,
  trainLinear,
} from "./sdk/features/mod.ts";
export {
  type AdviceThresholds,
  advise,
  DEFAULT_THRESHOLDS,
  measureSimilarity,
} from "./sdk/advisor/mod.ts";
