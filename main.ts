/**
 * The main job, the README's first command (`deno task start`): brings up
 * the embedded registry with the zoo (SQLite + blob folder; every start adds
 * the zoo entries it lacks), serves it, fine-tunes `zoo/lenet5` (MNIST digits) on
 * Fashion-MNIST with the strategy the advisor picks, publishes the result
 * with its lineage card and prints its URL, then keeps serving until Ctrl-C
 * (or exits with `--exit`).
 *
 * ```sh
 * deno run -A main.ts [--port 8000] [--data ./.zoo-data] [--exit]
 * ```
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { createRegistryApp } from "./registry/app.ts";
import { createToken } from "./registry/auth.ts";
import { seedMissing } from "./registry/seed.ts";
import { describeStore, openStore, STORE_FLAGS, storeConfig } from "./registry/storage/open.ts";
import { ZooClient } from "./sdk/client/mod.ts";
import { NotFoundError } from "./sdk/errors.ts";
import { type CliResult, main as finetune } from "./sdk/finetune.ts";
import { compareSemver } from "./core/names.ts";
import {
  IMPORTED_ENTRIES,
  TRAINED_ENTRIES,
  ZOO_NAMESPACE,
  ZOO_VERSION,
  zooEntries,
} from "./zoo/mod.ts";

/** The `--help` text: every flag with its environment variable and default. */
export const HELP = `The model zoo's main job: serve the registry with the zoo, fine-tune
zoo/lenet5 (MNIST) on Fashion-MNIST with the advisor's strategy, publish the
result with its lineage card, print its URL, and keep serving.

Usage: deno run -A main.ts [flags]     (or: deno task start)

Flags (flag, then environment, then default):
  --port N          port to serve on (0: any free port)   env ZOO_PORT   8000
  --host H          address to listen on                   env ZOO_HOST   127.0.0.1
  --data DIR        registry data dir (SQLite + blobs)     env ZOO_DATA   ./.zoo-data
  --database-url U  PostgreSQL for metadata        env ZOO_DATABASE_URL   (SQLite in --data)
  --blobs URL       s3://BUCKET/PREFIX?endpoint=URL&region=R for blobs
                                                   env ZOO_BLOBS_URL      (folder in --data)
  --cache DIR       SDK download and CNN-code cache        env ZOO_CACHE  ~/.cache/deno-model-zoo
  --model REF       checkpoint to fine-tune                               zoo/lenet5
  --dataset SPEC    data spec without perClass                            fashion-mnist
  --per-class N     training images per class (short run)                 100
  --strategy S      auto|features|partial|full                            auto
  --epochs N        epochs                                   5 fine-tuning, 100 features
  --device D        auto|webgpu|wasm|cpu                                  auto
  --batch-size N    images per batch                                     32
  --lr X            learning rate of the new head                         0.01
  --zoo NAMES       seed only these zoo entries (comma-separated)         all
  --name NS/NAME    where the result is published                         me/lenet5-fashion
  --out DIR         output folder of the fine-tune                        ./out/lenet5-fashion
  --exit            stop serving once the result is published
  -h, --help        this text

The published version is the next patch after the highest existing one
(1.0.0 for the first run).`;

/** What {@linkcode main} did. */
export interface MainResult {
  /** The registry's base URL. */
  url: string;
  /** The fine-tune and its publication. */
  finetune: CliResult;
  /** The server, still running unless `--exit` was given. */
  server: Deno.HttpServer;
  /** Stops serving and closes the store. */
  close(): Promise<void>;
}

function positiveInt(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`Invalid --${flag} "${value}": use a whole number >= ${min}`);
  }
  return n;
}

async function nextVersion(client: ZooClient, name: string): Promise<string> {
  try {
    const doc = await client.getModel(name);
    const highest = doc.versions.map((v) => v.version).sort(compareSemver).at(-1);
    if (highest === undefined) return "1.0.0";
    const [major, minor, patch] = highest.split(/[.+-]/).map(Number);
    return `${major}.${minor}.${(patch ?? 0) + 1}`;
  } catch (e) {
    if (e instanceof NotFoundError) return "1.0.0";
    throw e;
  }
}

/**
 * Runs the main job.
 *
 * @param args command-line flags, usually `Deno.args`
 * @param log where progress and results go
 * @returns the registry URL, the fine-tune's result and a way to stop; null for `--help`
 * @throws {TypeError} on an unknown flag
 * @throws {RangeError} on a bad flag value
 * @throws {Error} when the port is taken, seeding fails or the fine-tune fails
 *
 * @example Show the help
 * ```ts
 * import { main } from "./main.ts";
 * await main(["--help"], () => {});
 * ```
 */
export async function main(
  args: string[],
  log: (line: string) => void = console.log,
): Promise<MainResult | null> {
  const flags = parseArgs(args, {
    string: [
      "port",
      "host",
      ...STORE_FLAGS,
      "cache",
      "model",
      "dataset",
      "per-class",
      "strategy",
      "epochs",
      "device",
      "name",
      "out",
      "batch-size",
      "lr",
      "zoo",
    ],
    boolean: ["exit", "help"],
    alias: { h: "help" },
  });
  if (flags.help) {
    log(HELP);
    return null;
  }
  const env = (k: string) => Deno.env.get(k);
  const str = (f: string, e: string | null, d: string) =>
    (flags[f] as string | undefined) ?? (e === null ? undefined : env(e)) ?? d;
  const port = positiveInt("port", str("port", "ZOO_PORT", "8000"), 0);
  const hostname = str("host", "ZOO_HOST", "127.0.0.1");
  const config = storeConfig(flags);
  const cache = str("cache", "ZOO_CACHE", "");
  const perClass = positiveInt("per-class", str("per-class", null, "100"));
  const name = str("name", null, "me/lenet5-fashion");
  const namespace = name.split("/")[0] ?? "me";
  const started = performance.now();

  const store = await openStore(config);
  let server: Deno.HttpServer | undefined;
  try {
    // Once, even when registries start together on one database; every start adds
    // what is missing, so an interrupted seed completes.
    await store.exclusive("seed", async () => {
      const only = str("zoo", null, "").split(",").filter((n) => n !== "");
      // An unknown name fails in zooEntries.
      const seeded = await seedMissing(
        store,
        (only.length > 0 ? only : [...TRAINED_ENTRIES, ...IMPORTED_ENTRIES]).map((name) => ({
          name,
          version: ZOO_VERSION,
        })),
        async ({ name }) => (await zooEntries({ only: [name] }))[0]!,
        ZOO_NAMESPACE,
      );
      if (seeded.published.length > 0) {
        log(
          `${
            seeded.skipped.length === 0
              ? "Seeded the empty registry"
              : "Added the missing zoo entries"
          } with ${seeded.published.join(", ")}`,
        );
      }
    });
    const app = createRegistryApp({ store });
    const listening = Promise.withResolvers<number>();
    server = Deno.serve({
      port,
      hostname,
      onListen: (addr) => listening.resolve(addr.port),
    }, app.fetch);
    const url = `http://${hostname}:${await listening.promise}`;
    log(`Registry on ${url} (${describeStore(config)})`);

    const { token } = await createToken(store, [`publish:${namespace}`], "main job");
    const client = new ZooClient({ url, ...(cache ? { cacheDir: cache } : {}) });
    const version = await nextVersion(client, name);
    const model = str("model", null, "zoo/lenet5");
    const data = `${str("dataset", null, "fashion-mnist")}?perClass=${perClass}`;
    log(`Fine-tuning ${model} on ${data}, publishing ${name}@${version}`);
    const ftArgs = [
      "--model",
      model,
      "--data",
      data,
      "--registry",
      url,
      "--token",
      token,
      "--publish",
      `${name}@${version}`,
      "--out",
      str("out", null, "./out/lenet5-fashion"),
      "--device",
      // auto, not webgpu: where WebGPU is a software adapter (llvmpipe through
      // Vulkan, or through OpenGL where mesa-vulkan-drivers is missing, which is
      // several times slower still), wasm does the same job much faster.
      str("device", null, "auto"),
      "--strategy",
      str("strategy", null, "auto"),
    ];
    if (cache) ftArgs.push("--cache", cache);
    if (flags.epochs !== undefined) ftArgs.push("--epochs", String(flags.epochs));
    // lr 0.01: at 0.001 a new LeNet head on 100 images per class barely moves in 5 epochs.
    ftArgs.push("--lr", str("lr", null, "0.01"));
    if (flags["batch-size"] !== undefined) {
      ftArgs.push("--batch-size", String(flags["batch-size"]));
    }
    const result = await finetune(ftArgs, { out: log, err: (l) => console.error(l) });
    const seconds = (performance.now() - started) / 1000;
    log(
      `Main job done in ${seconds.toFixed(1)} s: ${result!.published!.reference} at ${
        result!.published!.url
      }`,
    );
    const srv = server;
    const close = async () => {
      await srv.shutdown();
      await store.close();
    };
    if (flags.exit) {
      await close();
    } else {
      log(`Serving ${url} (Ctrl-C to stop)`);
    }
    return { url, finetune: result!, server: srv, close };
  } catch (e) {
    await server?.shutdown();
    await store.close();
    throw e;
  }
}

if (import.meta.main) {
  try {
    const r = await main(Deno.args);
    if (r === null || Deno.args.includes("--exit")) Deno.exit(0);
  } catch (e) {
    console.error(e instanceof Error ? e.message.split("\n")[0] : String(e));
    Deno.exit(1);
  }
}
