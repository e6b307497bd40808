/**
 * The registry client and what it is built from: {@linkcode ZooClient}
 * (resolve, pull, load, publish), the download cache, the `zoo://` IOHandler
 * for `tf.loadLayersModel`, model references, the `model.json` types and the
 * errors a caller catches.
 *
 * @example Resolve a reference without downloading anything
 * ```ts ignore
 * import { ZooClient } from "@zoo/model-zoo/client";
 * const zoo = new ZooClient({ url: "http://localhost:8000" });
 * const version = await zoo.resolve("zoo/lenet5");
 * console.log(version.version, version.files.length);
 * ```
 *
 * @module
 */
export * from "./client.ts";
export * from "./errors.ts";
export * from "./cache.ts";
export * from "./io_handler.ts";
export * from "../core/names.ts";
export * from "../core/model_json.ts";
export { checkLayerWeights, tfjsLayers } from "./model_layers.ts";
export type { IOHandler, LayersModel, ModelArtifacts } from "./_tfjs_types.ts";
