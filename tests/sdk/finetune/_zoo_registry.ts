/**
 * A real registry on a free loopback port holding the zoo's checkpoints as
 * `zoo/<name>@1.0.0` (the trained ones from their committed folders, the
 * nsfwjs ones from the installed package), for tests that run the
 * fine-tuning CLI on them as a user would.
 */
import { createRegistryApp } from "../../../registry/app.ts";
import { createToken } from "../../../registry/auth.ts";
import { openSqliteFsStore } from "../../../registry/storage/sqlite_fs.ts";
import { ZooClient } from "../../../sdk/client/mod.ts";
import { zooEntries } from "../../../zoo/mod.ts";
import { publishZoo } from "../../../zoo/publish.ts";

/** A running registry with the zoo, and the flags that point the CLI at it. */
export interface ZooRegistry {
  url: string;
  /** `--registry URL --cache DIR`. */
  flags: string[];
  close(): Promise<void>;
}

/**
 * Starts a registry on a temp dir and publishes the named zoo entries.
 *
 * @param only the entries, e.g. `["lenet5", "mobilenet-v2"]`
 * @returns the registry; `close()` stops it and removes its folders
 */
export async function startZooRegistry(only: string[]): Promise<ZooRegistry> {
  const dataDir = await Deno.makeTempDir({ prefix: "zoo-matrix-" });
  const cacheDir = await Deno.makeTempDir({ prefix: "zoo-matrix-cache-" });
  const store = await openSqliteFsStore(dataDir);
  const { token } = await createToken(store, ["publish:zoo"], "test");
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: (a) => listening.resolve(a.port) },
    createRegistryApp({ store }).fetch,
  );
  const url = `http://127.0.0.1:${await listening.promise}`;
  const client = new ZooClient({ url, token, cacheDir, progress: false });
  await publishZoo(client, await zooEntries({ only }));
  return {
    url,
    flags: ["--registry", url, "--cache", cacheDir],
    async close() {
      await server.shutdown();
      await store.close();
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(cacheDir, { recursive: true });
    },
  };
}

if (import.meta.main) {
  // Serve the zoo for trying the CLI by hand: deno run -A tests/sdk/finetune/_zoo_registry.ts
  const reg = await startZooRegistry(["lenet5", "resnet-mini", "mobilenet-v2", "inception-v3"]);
  console.log(reg.flags.join(" "));
}
