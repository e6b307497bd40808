/**
 * Fixtures of the page tests: a small real tfjs model saved as a publisher's
 * folder holds it, and publishing through the API in process.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { digestOf, modelFiles, type TestFile } from "../_helpers/registry.ts";

/** A checkpoint file as uploaded. */
export type PageTestFile = TestFile;

/** Something that answers requests, as a Hono app does. */
export interface Requester {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** A small convnet (conv, pool, conv, flatten, dense) with seeded weights. */
export function smallConvnet(seed = 1): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 10 + s });
  return tf.sequential({
    name: "small_convnet",
    layers: [
      tf.layers.conv2d({
        name: "conv1",
        inputShape: [16, 16, 1],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: init(1),
      }),
      tf.layers.maxPooling2d({ name: "pool1", poolSize: 2 }),
      tf.layers.conv2d({
        name: "conv2",
        filters: 8,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: init(2),
      }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({
        name: "logits",
        units: 3,
        activation: "softmax",
        kernelInitializer: init(3),
      }),
    ],
  });
}

/** Saves a model to model.json and one weight shard. */
export const savedFiles = modelFiles;

/** A README.md file with the given Markdown. */
export function readmeFile(markdown: string): PageTestFile {
  return { path: "README.md", bytes: new TextEncoder().encode(markdown) };
}

/** Uploads files and publishes them as `zoo/<name>@<version>` through the API; asserts a 201. */
export async function publishVia(
  app: Requester,
  token: string,
  name: string,
  version: string,
  files: PageTestFile[],
  card: unknown = {},
): Promise<void> {
  const authed = { authorization: `Bearer ${token}` };
  const entries = [];
  for (const f of files) {
    const digest = await digestOf(f.bytes);
    const r = await app.request(`/api/blobs?digest=${digest}`, {
      method: "POST",
      headers: authed,
      body: f.bytes,
    });
    assert(r.ok, `upload ${f.path}: ${r.status} ${await r.text()}`);
    entries.push({ path: f.path, digest, size: f.bytes.byteLength });
  }
  const r = await app.request(`/api/models/zoo/${name}/${version}`, {
    method: "PUT",
    headers: { ...authed, "content-type": "application/json" },
    body: JSON.stringify({ files: entries, card }),
  });
  assertEquals(r.status, 201, await r.text());
}
