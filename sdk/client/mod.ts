/**
 * The registry client and what it is built from: {@linkcode ZooClient}
 * (resolve, pull, load, publish), the download cache, the `zoo://` IOHandler
 * for `tf.loadLayersModel`, model references, the `model.json` types and the
 * errors a caller catches.
 *
 * Inside this folder the modules import one way only: `types.ts` (the wire
 * documents and options) and the helpers (`fs.ts`, `hash.ts`, `pool.ts`) at
 * the bottom; `download.ts` and `cache.ts` above them; `http.ts`,
 * `io_handler.ts`, `pull.ts` and `publish.ts` next; `zoo_client.ts`, which
 * holds the {@linkcode ZooClient} class, on top.
 *
 * @example Configure a client without touching the network
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ZooClient } from "./mod.ts";
 * const zoo = new ZooClient({ url: "http://localhost:8000/", offline: true });
 * assertEquals(zoo.url, "http://localhost:8000");
 * ```
 *
 * @module
 */
export * from "./zoo_client.ts";
export * from "./types.ts";
export * from "./cache.ts";
export { hashFile, readFileHashed, sha256 } from "./hash.ts";
export * from "./io_handler.ts";
export * from "../errors.ts";
export * from "../../core/names.ts";
export * from "../../core/model_json.ts";
export { checkLayerWeights, tfjsLayers } from "../model_layers.ts";
export type { IOHandler, LayersModel, ModelArtifacts } from "../_tfjs_types.ts";
