/**
 * The SDK modules the pages run in the browser, gathered in one place so the
 * bundle (`deno task build:web`) imports the SDK through one file. Everything
 * here is the SDK's own code: the preprocessing of `sdk/data`, the cut and
 * codes and linear classifiers of `sdk/features`, the advisor, the
 * architecture analysis, the lineage card and the checkpoint files of a model.
 *
 * @module
 */
export { analyze } from "../sdk/arch/mod.ts";
export { advise, measureSimilarity } from "../sdk/advisor/mod.ts";
export { featureStrategy } from "../sdk/features/mod.ts";
export { imagesToTensor, type RawImage } from "../sdk/data/_image.ts";
export { PackedDataset } from "../sdk/data/_batches.ts";
export { lineageCard } from "../sdk/finetune/output.ts";
export { artifactsToFiles, modelToFiles } from "../sdk/io_handler.ts";
export type { Preprocessing } from "../sdk/data/types.ts";
export type { EpochMetrics } from "../sdk/finetune/types.ts";
