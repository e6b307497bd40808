/**
 * The SDK modules the pages run in the browser, gathered in one place so the
 * bundle (`deno task build:web`) imports the SDK through one file, and only
 * through its public entry points (the `exports` of `deno.json`): the
 * preprocessing and in-memory dataset of `data`, the cut and codes and linear classifiers of
 * `features`, the `advisor`, the architecture analysis of `arch`, the lineage
 * card and its README of `finetune` and the checkpoint files of a model from `client`. The
 * bundler keeps only what `web/zoo.ts` uses.
 *
 * @module
 */
export * from "../core/arch/mod.ts";
export * from "../sdk/advisor/mod.ts";
export * from "../sdk/features/mod.ts";
export {
  imagesToTensor,
  memoryDataset,
  type MemoryImages,
  type RawImage,
  type Tensor4D,
} from "../sdk/data/mod.ts";
export { cardReadme, type Lineage, lineageCard, type RunFacts } from "../sdk/finetune/mod.ts";
export { type CheckpointFile, type ModelArtifacts, modelToFiles } from "../sdk/client/mod.ts";
