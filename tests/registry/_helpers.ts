/** Shared fixtures of the registry tests: a real registry on a free port, a real tfjs model. */
import * as tf from "@tensorflow/tfjs";
import { createRegistryApp, type RegistryOptions } from "../../registry/app.ts";
import { createToken } from "../../registry/auth.ts";
import { openStore, type StoreConfig } from "../../registry/storage/open.ts";
import { parseS3Url } from "../../registry/storage/s3_blobs.ts";
import { AwsClient } from "aws4fetch";
import { freshBlobsUrl, freshDatabase, type TestDatabase } from "./storage/_servers.ts";
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

/**
 * A registry served on a free loopback port over a real SQLite file and blob
 * folder, or, with `ZOO_TEST_STORE=pg+s3`, over a PostgreSQL database and an
 * S3 prefix of its own (see `storage/_servers.ts`).
 */
export interface TestRegistry {
  url: string;
  dataDir: string;
  store: Store;
  /** A token with `publish:zoo`. */
  token: string;
  /** The blobs stored, as their storage names (files or object keys). */
  storedBlobs(): Promise<string[]>;
  /** Uploads in progress or left behind (temporary files or objects). */
  pendingUploads(): Promise<string[]>;
  close(): Promise<void>;
}

/** The PostgreSQL + S3 backends of each data dir, so a restart finds its data. */
const remote = new Map<string, { config: StoreConfig; db: TestDatabase }>();

async function remoteKeys(blobsUrl: string, under: string): Promise<string[]> {
  const loc = parseS3Url(blobsUrl);
  const client = new AwsClient({
    accessKeyId: Deno.env.get("AWS_ACCESS_KEY_ID")!,
    secretAccessKey: Deno.env.get("AWS_SECRET_ACCESS_KEY")!,
    service: "s3",
    region: loc.region,
  });
  const q = new URLSearchParams({ "list-type": "2", prefix: `${loc.prefix}/${under}` });
  const xml = await (await client.fetch(`${loc.endpoint}/${loc.bucket}/?${q}`)).text();
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!);
}

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) names.push(e.name);
  return names;
}

/**
 * Starts a registry; reuses `dataDir` when given (for restart tests).
 * `embedded: true` keeps it on SQLite and a blob folder even under
 * `ZOO_TEST_STORE=pg+s3`, for tests that watch the folder's temp files.
 */
export async function startRegistry(
  opts: { dataDir?: string; embedded?: boolean } & Omit<RegistryOptions, "store"> = {},
): Promise<TestRegistry> {
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "zoo-test-" });
  let backend = remote.get(dataDir);
  if (
    backend === undefined && !opts.embedded && Deno.env.get("ZOO_TEST_STORE") === "pg+s3"
  ) {
    const db = await freshDatabase();
    backend = { db, config: { data: dataDir, databaseUrl: db.url, blobsUrl: freshBlobsUrl() } };
    remote.set(dataDir, backend);
  }
  const store = await openStore(backend?.config ?? { data: dataDir });
  const { token } = await createToken(store, ["publish:zoo"], "test");
  const { dataDir: _d, embedded: _e, ...appOptions } = opts;
  const app = createRegistryApp({ store, ...appOptions });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    dataDir,
    store,
    token,
    storedBlobs: () =>
      backend ? remoteKeys(backend.config.blobsUrl!, "blobs/") : listDir(`${dataDir}/blobs/sha256`),
    pendingUploads: () =>
      backend ? remoteKeys(backend.config.blobsUrl!, "uploads/") : listDir(`${dataDir}/uploads`),
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
