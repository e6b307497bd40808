/** A real registry on a free loopback port holding a LeNet-5 as `zoo/lenet5@1.0.0`, for the fine-tuning tests. */
import * as tf from "@tensorflow/tfjs";
import { createRegistryApp } from "../../../registry/app.ts";
import { createToken } from "../../../registry/auth.ts";
import { openSqliteFsStore } from "../../../registry/storage/sqlite_fs.ts";
import type { Store } from "../../../registry/storage/store.ts";
import { ZooClient } from "../../../sdk/client/mod.ts";
import { lenet5 } from "../../../zoo/_recipes.ts";

/** A running registry and what the tests need to reach it. */
export interface FinetuneRegistry {
  url: string;
  dataDir: string;
  store: Store;
  /** A token with `publish:zoo` and `publish:me`. */
  token: string;
  /** A cache folder of its own. */
  cacheDir: string;
  /** The command-line flags that point `finetune` at this registry and cache. */
  flags: string[];
  close(): Promise<void>;
}

/** The card the test checkpoint carries. */
export const LENET_CARD = {
  task: "image-classification",
  labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  preprocessing: { height: 28, width: 28, channels: 1, range: [0, 1] },
};

/** Starts a registry on a temp dir and publishes an (untrained, seeded) LeNet-5 as `zoo/lenet5@1.0.0`. */
export async function startFinetuneRegistry(): Promise<FinetuneRegistry> {
  const dataDir = await Deno.makeTempDir({ prefix: "zoo-ft-test-" });
  const cacheDir = await Deno.makeTempDir({ prefix: "zoo-ft-cache-" });
  const store = await openSqliteFsStore(dataDir);
  const { token } = await createToken(store, ["publish:zoo", "publish:me"], "test");
  const app = createRegistryApp({ store });
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: (a) => listening.resolve(a.port) },
    app.fetch,
  );
  const url = `http://127.0.0.1:${await listening.promise}`;
  const backend = tf.getBackend();
  await tf.setBackend("cpu");
  const model = lenet5(1);
  await new ZooClient({ url, token, cacheDir, progress: false }).publish(model, {
    name: "zoo/lenet5",
    version: "1.0.0",
    card: LENET_CARD,
  });
  model.dispose();
  if (backend) await tf.setBackend(backend);
  return {
    url,
    dataDir,
    store,
    token,
    cacheDir,
    flags: ["--registry", url, "--cache", cacheDir],
    async close() {
      await server.shutdown();
      await store.close();
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(cacheDir, { recursive: true });
    },
  };
}
