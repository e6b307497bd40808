/** Shared fixtures of the registry tests: a real registry on a free port, a real tfjs model. */
import * as tf from "@tensorflow/tfjs";
import { createRegistryApp, type RegistryOptions } from "../../registry/app.ts";
import { createToken } from "../../registry/auth.ts";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import type { Store } from "../../registry/storage/store.ts";
import { encodeHex } from "../../registry/_hex.ts";

/** A checkpoint file as uploaded. */
export interface TestFile {
  path: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** sha256 digest string of bytes. */
export async function digestOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return `sha256:${encodeHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))}`;
}

/** A small real convnet (conv-pool-flatten-dense) with seeded weights. */
export function tinyConvnet(seed = 1): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 10 + s });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [8, 8, 1],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: init(1),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: "softmax", kernelInitializer: init(2) }),
    ],
  });
}

/** Saves a model to model.json + one shard, as a publisher's folder holds it. */
export async function modelFiles(model: tf.LayersModel): Promise<TestFile[]> {
  let files: TestFile[] = [];
  await model.save(tf.io.withSaveHandler((artifacts) => {
    const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData!));
    const modelJson = {
      format: "layers-model",
      generatedBy: "test",
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights: artifacts.weightSpecs }],
    };
    files = [
      { path: "model.json", bytes: new TextEncoder().encode(JSON.stringify(modelJson)) },
      { path: "group1-shard1of1.bin", bytes: weights },
    ];
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  return files;
}

/** A registry served on a free loopback port over a real SQLite file and blob folder. */
export interface TestRegistry {
  url: string;
  dataDir: string;
  store: Store;
  /** A token with `publish:zoo`. */
  token: string;
  close(): Promise<void>;
}

/** Starts a registry; reuses `dataDir` when given (for restart tests). */
export async function startRegistry(
  opts: { dataDir?: string } & Omit<RegistryOptions, "store"> = {},
): Promise<TestRegistry> {
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "zoo-test-" });
  const store = await openSqliteFsStore(dataDir);
  const { token } = await createToken(store, ["publish:zoo"], "test");
  const app = createRegistryApp({ store, ...opts });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    dataDir,
    store,
    token,
    async close() {
      await server.shutdown();
      await store.close();
    },
  };
}

/** Uploads files and publishes them as `ns/name@version`; returns the publish response. */
export async function publish(
  reg: { url: string; token: string },
  id: string,
  version: string,
  files: TestFile[],
  card: Record<string, unknown> = {},
): Promise<Response> {
  const entries = [];
  for (const f of files) {
    const digest = await digestOf(f.bytes);
    const r = await fetch(`${reg.url}/api/blobs?digest=${digest}`, {
      method: "POST",
      headers: { authorization: `Bearer ${reg.token}`, "content-type": "application/octet-stream" },
      body: f.bytes,
    });
    await r.body?.cancel();
    if (!r.ok) throw new Error(`Upload of ${f.path} failed: ${r.status}`);
    entries.push({ path: f.path, digest, size: f.bytes.byteLength });
  }
  return fetch(`${reg.url}/api/models/${id}/${version}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${reg.token}`, "content-type": "application/json" },
    body: JSON.stringify({ files: entries, card }),
  });
}
