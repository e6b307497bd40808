/**
 * The SDK modules the pages run in the browser, gathered in one place so the
 * bundle (`deno task build:web`) imports the SDK through one file. Everything
 * here is the SDK's own code: the preprocessing of `sdk/data`, the cut and
 * codes and linear classifiers of `sdk/features`, the advisor, the
 * architecture analysis, the lineage card and the checkpoint files of a model.
 * The bundler keeps only what `web/zoo.ts` uses.
 *
 * @module
 */
export * from "../core/arch/mod.ts";
export * from "../sdk/advisor/mod.ts";
export * from "../sdk/features/mod.ts";
export { imagesToTensor } from "../sdk/data/_image.ts";
export { lineageCard } from "../sdk/finetune/output.ts";
export { modelToFiles } from "../sdk/client/io_handler.ts";
export type { ModelArtifacts, Tensor4D } from "../sdk/_tfjs_types.ts";
