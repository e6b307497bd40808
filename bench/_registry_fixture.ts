/**
 * The checkpoint `bench/registry.ts` measures: a weights blob read from a
 * file and a small model.json, published straight into a store (not through
 * the HTTP publish route, so the bench does not depend on model.json
 * validation), with a card and an architecture record of realistic size.
 *
 * @module
 */
import type { BlobInfo, Store } from "../registry/storage/store.ts";

/** Where the bench checkpoint is published. */
export const BENCH_MODEL = {
  namespace: "zoo",
  name: "bench-mobilenet",
  version: "1.0.0",
} as const;

async function storeBytes(store: Store, bytes: Uint8Array): Promise<BlobInfo> {
  const w = await store.blobs.writer();
  await w.write(bytes);
  return await w.commit();
}

async function storeFile(store: Store, path: string): Promise<BlobInfo> {
  const w = await store.blobs.writer();
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) await w.write(chunk);
  return await w.commit();
}

/**
 * An architecture record shaped like the SDK's analysis of a small
 * MobileNet-like network, so the metadata documents have a realistic size.
 */
function syntheticArchitecture(): Record<string, unknown> {
  const layers = Array.from({ length: 28 }, (_, i) => {
    const stride = 2 ** Math.min(5, Math.floor(i / 5));
    return {
      name: `block_${i}_conv`,
      className: i % 2 === 0 ? "Conv2D" : "DepthwiseConv2D",
      outputShape: [null, 224 / stride, 224 / stride, 32 * (1 + Math.floor(i / 5))],
      params: 1024 * (i + 1),
      stride,
      receptiveField: 3 + 4 * i,
      cutPoint: i % 3 === 0,
    };
  });
  return {
    inputShape: [null, 224, 224, 3],
    totalStride: 32,
    receptiveField: 115,
    minInputSize: 32,
    head: "global-pool",
    params: layers.reduce((n, l) => n + l.params, 0),
    layers,
  };
}

/**
 * Stores the weights file as a blob and publishes {@linkcode BENCH_MODEL}.
 *
 * @param store the store to fill
 * @param weightsFile the file whose bytes become the weights blob
 * @returns the weights blob
 */
export async function publishBenchModel(store: Store, weightsFile: string): Promise<BlobInfo> {
  const weights = await storeFile(store, weightsFile);
  const modelJson = await storeBytes(
    store,
    new TextEncoder().encode(JSON.stringify({
      format: "layers-model",
      modelTopology: { class_name: "Sequential", config: { layers: [] } },
      weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights: [] }],
    })),
  );
  await store.publish({
    ...BENCH_MODEL,
    files: [
      { path: "model.json", ...modelJson },
      { path: "group1-shard1of1.bin", ...weights },
    ],
    card: {
      task: "image-classification",
      description: "A synthetic checkpoint published by bench/registry.ts to measure the registry",
      labels: ["cat", "dog", "bird", "fish", "horse", "ship", "truck", "car", "plane", "frog"],
      license: "Apache-2.0",
      source: "bench",
      dataset: { name: "synthetic", size: 50000 },
      preprocessing: { inputSize: [224, 224], channels: "rgb", range: [0, 1] },
      metrics: [{ name: "top1", value: 0.71, dataset: "synthetic" }],
    },
    architecture: syntheticArchitecture(),
    publishedBy: "bench",
  });
  return weights;
}
