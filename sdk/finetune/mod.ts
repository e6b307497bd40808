/**
 * Fine-tuning as a library call: {@linkcode fineTune} loads a checkpoint,
 * checks it against the data, asks the advisor or follows the strategy given,
 * trains on the chosen device and writes a publishable folder with its
 * lineage card. The command line `sdk/finetune.ts` is a thin layer over it.
 *
 * @example Fine-tune the penultimate codes of a checkpoint (needs a registry)
 * ```ts ignore
 * import { fineTune } from "@zoo/model-zoo/finetune";
 * const run = await fineTune({
 *   modelRef: "zoo/lenet5",
 *   data: "fashion-mnist?perClass=10",
 *   strategy: "features",
 *   output: { outDir: "./finetune-out" },
 * });
 * console.log(run.testAccuracy);
 * ```
 *
 * @module
 */
export * from "./fine_tune.ts";
export { cardReadme, type Lineage, lineageCard, type RunFacts } from "./output.ts";
export type * from "./types.ts";
export type { LayersModel } from "../_tfjs_types.ts";
export type * from "../data/types.ts";
export type { DeviceChoice } from "../devices/select.ts";
export type * from "../client/mod.ts";
export type { Tensor1D, Tensor4D } from "../_tfjs_types.ts";
