/**
 * The one registry fixture of the tests: the real registry app served on a
 * free loopback port over a real store, with a token; the checkpoints the
 * tests publish to it; and, built on it, the registries the fine-tuning
 * tests point the CLI at (a LeNet-5, or the zoo's own checkpoints).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createRegistryApp, type RegistryOptions } from "../../registry/app.ts";
import { createToken } from "../../registry/auth.ts";
import { openStore, type StoreConfig } from "../../registry/storage/open.ts";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import { parseS3Url, type S3Location } from "../../registry/storage/s3_blobs.ts";
import { AwsClient } from "aws4fetch";
import { freshBlobsUrl, freshDatabase, type TestDatabase } from "../registry/storage/_servers.ts";
import type { Store } from "../../registry/storage/store.ts";
import { encodeHex } from "../../registry/_hex.ts";

export type { RegistryOptions } from "../../registry/app.ts";
export type { Store } from "../../registry/storage/store.ts";
export type { S3Location } from "../../registry/storage/s3_blobs.ts";
import { ZooClient } from "../../sdk/client/mod.ts";
import { lenet5 } from "../../zoo/_recipes.ts";
import { zooEntries } from "../../zoo/mod.ts";
import { publishZoo } from "../../zoo/publish.ts";

/** A checkpoint file as uploaded. */
export interface TestFile {
  /** Its path in the checkpoint folder. */
  path: string;
  /** Its bytes. */
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * The digest string of bytes.
 *
 * @param bytes the bytes
 * @returns `sha256:<hex>`
 */
export async function digestOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return `sha256:${encodeHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))}`;
}

/**
 * A small real convnet (conv-pool-flatten-dense) with seeded weights.
 *
 * @param seed picks the weights
 * @returns an 8×8×1 → 3-class model
 */
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

/**
 * Saves a model to model.json + one shard, as a publisher's folder holds it.
 *
 * @param model the model
 * @returns model.json and the shard
 */
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
 * The publisher's files of {@linkcode tinyConvnet}, its tensors freed.
 *
 * @param seed picks the weights
 * @returns model.json and the shard
 */
export async function tinyConvnetFiles(seed = 1): Promise<TestFile[]> {
  const model = tinyConvnet(seed);
  try {
    return await modelFiles(model);
  } finally {
    model.dispose();
  }
}

/**
 * A registry served on a free loopback port over a real SQLite file and blob
 * folder, or, with `ZOO_TEST_STORE=pg+s3`, over a PostgreSQL database and an
 * S3 prefix of its own (see `storage/_servers.ts`).
 */
export interface TestRegistry extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The data dir (the embedded store's, or the key of the remote one). */
  dataDir: string;
  /** The store the registry serves. */
  store: Store;
  /** A token with the scopes asked for, `publish:zoo` by default. */
  token: string;
  /** Mints another token. */
  mint(scopes: string[]): Promise<string>;
  /** The blobs stored, as their storage names (files or object keys). */
  storedBlobs(): Promise<string[]>;
  /** Uploads in progress or left behind (temporary files or objects). */
  pendingUploads(): Promise<string[]>;
  /** Stops the server and closes the store; the data stays for a restart on `dataDir`. */
  close(): Promise<void>;
}

/** The registry app over a fresh SQLite store, called in process (no port). */
export interface InProcessApp extends AsyncDisposable {
  /** The app: `app.request(path, init)` answers as the server would. */
  app: ReturnType<typeof createRegistryApp>;
  /** The store it serves. */
  store: Store;
  /** A token with `publish:zoo`. */
  token: string;
}

/**
 * Makes the registry app over a SQLite store in a temporary folder, which
 * `await using` closes and removes.
 *
 * @param prefix the start of the folder's name
 * @param opts the app's options but its store
 * @returns the app, its store and a publish token
 */
export async function inProcessApp(
  prefix: string,
  opts: Omit<RegistryOptions, "store"> = {},
): Promise<InProcessApp> {
  const dir = await Deno.makeTempDir({ prefix });
  const store = await openSqliteFsStore(dir);
  const { token } = await createToken(store, ["publish:zoo"], "test");
  return {
    app: createRegistryApp({ store, ...opts }),
    store,
    token,
    async [Symbol.asyncDispose]() {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Options of {@linkcode startRegistry}: the app's own, and where the data lives. */
export type StartRegistryOptions = {
  /** Reuse this data dir (restart tests); a fresh temp dir when absent. */
  dataDir?: string;
  /** Stay on SQLite and a blob folder even under `ZOO_TEST_STORE=pg+s3`. */
  embedded?: boolean;
  /** The scopes of `token`; default `publish:zoo`. */
  scopes?: string[];
} & Omit<RegistryOptions, "store">;

/** Whether this module's registries default to PostgreSQL + S3 (see {@linkcode useRemoteStores}). */
let remoteByDefault = Deno.env.get("ZOO_TEST_STORE") === "pg+s3";

/**
 * Makes every later {@linkcode startRegistry} of this test module (not
 * `embedded`) run on PostgreSQL + S3. A module-level switch rather than
 * setting `ZOO_TEST_STORE`: the environment is shared by every test module
 * that `deno test --parallel` runs at once, this module's state is not.
 */
export function useRemoteStores(): void {
  remoteByDefault = true;
}

/** The PostgreSQL + S3 backends of each data dir, so a restart finds its data. */
const remote = new Map<string, { config: StoreConfig; db: TestDatabase }>();

/** Plain S3 requests on the bucket behind a blob store, from {@linkcode s3Client}. */
export interface S3TestClient {
  /** The blob store URL's bucket, prefix, endpoint and region. */
  loc: S3Location;
  /** Sends a request signed with the environment's credentials. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
}

/**
 * A plain S3 client for a blob store URL, signed with the credentials of the
 * environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), for tests that
 * look at the bucket behind the store's back.
 *
 * @param blobsUrl `s3://BUCKET/PREFIX?endpoint=URL&region=R`
 * @returns the client, with the parsed location
 */
export function s3Client(blobsUrl: string): S3TestClient {
  const loc = parseS3Url(blobsUrl);
  const client = new AwsClient({
    accessKeyId: Deno.env.get("AWS_ACCESS_KEY_ID")!,
    secretAccessKey: Deno.env.get("AWS_SECRET_ACCESS_KEY")!,
    service: "s3",
    region: loc.region,
  });
  return { loc, fetch: (url, init) => client.fetch(url, init) };
}

async function remoteKeys(blobsUrl: string, under: string): Promise<string[]> {
  const client = s3Client(blobsUrl);
  const loc = client.loc;
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
 * `await using` closes it and removes a data dir it made.
 */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const fresh = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "zoo-test-" });
  let backend = remote.get(dataDir);
  if (
    backend === undefined && !opts.embedded && remoteByDefault
  ) {
    const db = await freshDatabase();
    backend = { db, config: { data: dataDir, databaseUrl: db.url, blobsUrl: freshBlobsUrl() } };
    remote.set(dataDir, backend);
  }
  const store = await openStore(backend?.config ?? { data: dataDir });
  const { token } = await createToken(store, opts.scopes ?? ["publish:zoo"], "test");
  const { dataDir: _d, embedded: _e, scopes: _s, ...appOptions } = opts;
  const app = createRegistryApp({ store, ...appOptions });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  const close = async () => {
    await server.shutdown();
    await store.close();
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    dataDir,
    store,
    token,
    mint: async (scopes) => (await createToken(store, scopes, "test")).token,
    storedBlobs: () =>
      backend ? remoteKeys(backend.config.blobsUrl!, "blobs/") : listDir(`${dataDir}/blobs/sha256`),
    pendingUploads: () =>
      backend ? remoteKeys(backend.config.blobsUrl!, "uploads/") : listDir(`${dataDir}/uploads`),
    close,
    async [Symbol.asyncDispose]() {
      await close();
      if (fresh) await Deno.remove(dataDir, { recursive: true });
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

/**
 * A registry for the fine-tuning tests, with a cache folder and the CLI flags
 * to reach both; `await using` closes it.
 */
export interface FinetuneRegistry extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The embedded store's folder. */
  dataDir: string;
  /** The store the registry serves. */
  store: Store;
  /** A token with `publish:zoo` and `publish:me`. */
  token: string;
  /** A cache folder of its own. */
  cacheDir: string;
  /** `--registry URL --cache DIR`: the flags that point `finetune` at this registry and cache. */
  flags: string[];
  /** Stops the registry and removes its folders. */
  close(): Promise<void>;
}

/** The card the test LeNet-5 carries. */
export const LENET_CARD = {
  task: "image-classification",
  labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  preprocessing: { height: 28, width: 28, channels: 1, range: [0, 1] },
};

/** An embedded registry with a token for `zoo` and `me`, and a cache folder. */
async function finetuneRegistry(): Promise<{ reg: TestRegistry; r: FinetuneRegistry }> {
  const reg = await startRegistry({ embedded: true, scopes: ["publish:zoo", "publish:me"] });
  const cacheDir = await Deno.makeTempDir({ prefix: "zoo-ft-cache-" });
  const r: FinetuneRegistry = {
    url: reg.url,
    dataDir: reg.dataDir,
    store: reg.store,
    token: reg.token,
    cacheDir,
    flags: ["--registry", reg.url, "--cache", cacheDir],
    async close() {
      await reg[Symbol.asyncDispose]();
      await Deno.remove(cacheDir, { recursive: true });
    },
    [Symbol.asyncDispose]: () => r.close(),
  };
  return { reg, r };
}

/** Starts a registry and publishes an (untrained, seeded) LeNet-5 as `zoo/lenet5@1.0.0`. */
export async function startFinetuneRegistry(): Promise<FinetuneRegistry> {
  const { r } = await finetuneRegistry();
  const backend = tf.getBackend();
  await tf.setBackend("cpu");
  const model = lenet5(1);
  await new ZooClient({ url: r.url, token: r.token, cacheDir: r.cacheDir, progress: false })
    .publish(model, { name: "zoo/lenet5", version: "1.0.0", card: LENET_CARD });
  model.dispose();
  if (backend) await tf.setBackend(backend);
  return r;
}

/** A registry with the zoo's checkpoints, and the flags that point the CLI at it. */
export type ZooRegistry = FinetuneRegistry;

/**
 * Starts a registry and publishes the named zoo entries as `zoo/<name>@1.0.0`
 * (the trained ones from their committed folders, the nsfwjs ones from the
 * installed package), for tests that run the fine-tuning CLI on them.
 *
 * @param only the entries, e.g. `["lenet5", "mobilenet-v2"]`
 * @returns the registry; `close()` stops it and removes its folders
 */
export async function startZooRegistry(only: string[]): Promise<ZooRegistry> {
  const { r } = await finetuneRegistry();
  const client = new ZooClient({
    url: r.url,
    token: r.token,
    cacheDir: r.cacheDir,
    progress: false,
  });
  await publishZoo(client, await zooEntries({ only }));
  return r;
}

if (import.meta.main) {
  // Serve the zoo for trying the CLI by hand: deno run -A tests/_helpers/registry.ts
  const reg = await startZooRegistry(["lenet5", "resnet-mini", "mobilenet-v2", "inception-v3"]);
  console.log(reg.flags.join(" "));
}
