/** Fixtures of the client tests: a real registry on a free port, proxies in front of it, models. */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { createRegistryApp } from "../../../registry/app.ts";
import { createToken } from "../../../registry/auth.ts";
import { openSqliteFsStore } from "../../../registry/storage/sqlite_fs.ts";
import type { Store } from "../../../registry/storage/store.ts";
import { modelToFiles } from "../../../sdk/client/mod.ts";

/** A registry served on 127.0.0.1 over a temporary data dir. */
export interface TestRegistry extends AsyncDisposable {
  url: string;
  store: Store;
  /** A token with `publish:zoo`. */
  token: string;
  /** Mints another token. */
  mint(scopes: string[]): Promise<string>;
}

/** Starts the real registry app on a free port. */
export async function startRegistry(): Promise<TestRegistry> {
  const dataDir = await Deno.makeTempDir({ prefix: "zoo-client-test-" });
  const store = await openSqliteFsStore(dataDir);
  const { token } = await createToken(store, ["publish:zoo"], "test");
  const app = createRegistryApp({ store });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    store,
    token,
    mint: async (scopes) => (await createToken(store, scopes, "test")).token,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await store.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** What a proxy saw: method, path and Range header of each request. */
export interface Seen {
  method: string;
  path: string;
  range: string | null;
  status: number;
}

/** A proxy in front of `target` whose `handle` may rewrite requests and responses. */
export interface TestProxy extends AsyncDisposable {
  url: string;
  seen: Seen[];
}

/** Forwards a request to `target`. */
export type Forward = (req: Request, headers?: Headers) => Promise<Response>;

/** Starts a proxy on a free port. */
export function startProxy(
  target: string,
  handle: (req: Request, forward: Forward) => Promise<Response> = (req, forward) => forward(req),
): TestProxy {
  const seen: Seen[] = [];
  const forward: Forward = async (req, headers = new Headers(req.headers)) => {
    const u = new URL(req.url);
    const init: RequestInit = { method: req.method, headers, redirect: "manual" };
    if (req.body) init.body = await req.arrayBuffer();
    return fetch(`${target}${u.pathname}${u.search}`, init);
  };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const res = await handle(req, forward);
    seen.push({
      method: req.method,
      path: new URL(req.url).pathname,
      range: req.headers.get("range"),
      status: res.status,
    });
    return res;
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** A response whose body breaks off after `at` bytes, like a cut connection. */
export function cutAfter(res: Response, at: number): Response {
  const reader = res.body!.getReader();
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent >= at) {
        await reader.cancel();
        c.error(new Error("cut"));
        return;
      }
      const { done, value } = await reader.read();
      if (done) return c.close();
      const part = value.subarray(0, at - sent);
      sent += part.byteLength;
      c.enqueue(part);
    },
  });
  return new Response(body, { status: res.status, headers: res.headers });
}

/** A response whose body has byte `i` flipped. */
export async function flipByte(res: Response, i = 0): Promise<Response> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > i) bytes[i] = bytes[i]! ^ 0xff;
  return new Response(bytes, { status: res.status, headers: res.headers });
}

/** A fetch that fails the test if it is ever called. */
export function noNetwork(): { fetch: typeof fetch; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    fetch: (input) => {
      calls.push(String(input instanceof Request ? input.url : input));
      return Promise.reject(new TypeError("the network must not be used"));
    },
  };
}

/** A small dense model (~100 KB of weights) with seeded weights. */
export function denseModel(seed = 1): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 10 + s });
  return tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [64],
        units: 400,
        activation: "relu",
        kernelInitializer: init(1),
      }),
      tf.layers.dense({ units: 3, activation: "softmax", kernelInitializer: init(2) }),
    ],
  });
}

/** Writes a model to a publisher's folder: model.json, shards, card.json, README.md. */
export async function writeCheckpointFolder(
  model: tf.LayersModel,
  card: Record<string, unknown> = { task: "image-classification", labels: ["a", "b", "c"] },
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "zoo-ckpt-" });
  for (const f of await modelToFiles(model)) await Deno.writeFile(join(dir, f.path), f.bytes);
  await Deno.writeTextFile(join(dir, "card.json"), JSON.stringify(card));
  await Deno.writeTextFile(join(dir, "README.md"), "# A test model\n");
  return dir;
}

/** The names in a folder, sorted; empty when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}
