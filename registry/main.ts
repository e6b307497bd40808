/**
 * The registry's command line: serves the registry on the store its flags
 * select (the embedded one by default, or PostgreSQL and S3; see
 * `storage/open.ts`) and, on every start, adds the zoo entries the store lacks
 * (all of them on the first start; the rest after an interrupted seed), once
 * even when several replicas start together.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { createRegistryApp, DEFAULT_LIMITS } from "./app.ts";
import { seedMissing } from "./seed.ts";
import {
  describeStore,
  openStore,
  STORE_FLAGS,
  STORE_FLAGS_HELP,
  storeConfig,
} from "./storage/open.ts";
import type { Store } from "./storage/store.ts";
import { flagOrEnv, runMain } from "../_std/program.ts";

const HELP = `Serve the model zoo registry.

Usage: deno run -A registry/main.ts [flags]

Flags (flag, then environment, then default):
  --port N               port to listen on          ZOO_PORT      8000
  --host H               address to listen on       ZOO_HOST      127.0.0.1
${STORE_FLAGS_HELP}
  --blob-redirect        blob GETs answer 302 to a presigned URL (needs --blobs)
                                                    ZOO_BLOB_REDIRECT=1 off
  --private              reads need a "read" token  ZOO_PRIVATE=1 off
  --no-seed              do not add the zoo entries the data dir lacks
  --max-blob-bytes N     largest blob               ZOO_MAX_BLOB_BYTES      ${DEFAULT_LIMITS.maxBlobBytes}
  --max-manifest-bytes N largest publish request    ZOO_MAX_MANIFEST_BYTES  ${DEFAULT_LIMITS.maxManifestBytes}
  --request-timeout MS   longest request            ZOO_REQUEST_TIMEOUT_MS  ${DEFAULT_LIMITS.requestTimeoutMs}
  --workers N            processes serving the port ZOO_WORKERS   one per core
  -h, --help             this text

Every start adds the zoo entries the data dir lacks (after an interrupted seed,
the rest). SIGINT or SIGTERM during seeding stops after the current step;
later, it stops the registry once the requests in flight are answered, writing
the download counts it holds in memory. A second signal stops it at once.

Tokens: deno task token create --scope publish:<namespace> [store flags]`;

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new RangeError(`Invalid ${name} "${value}": use a positive whole number`);
  }
  return n;
}

/**
 * Runs the registry until the process is stopped.
 *
 * @param args command-line arguments
 * @returns the running server
 */
export async function main(args: string[]): Promise<Deno.HttpServer | undefined> {
  const env = (k: string) => Deno.env.get(k);
  const flags = parseArgs(args, {
    string: [
      "port",
      "host",
      ...STORE_FLAGS,
      "max-blob-bytes",
      "max-manifest-bytes",
      "request-timeout",
      "workers",
    ],
    boolean: ["private", "help", "no-seed", "blob-redirect", "worker"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    return undefined;
  }
  const str = (f: string, e: string, d: string) => flagOrEnv(flags, f, e) ?? d;
  const port = positiveInt("port", str("port", "ZOO_PORT", "8000"));
  const hostname = str("host", "ZOO_HOST", "127.0.0.1");
  const config = storeConfig(flags);
  if (flags["blob-redirect"] || env("ZOO_BLOB_REDIRECT") === "1") config.blobRedirect = true;
  const store = await openStore(config);
  // Replicas starting together on one database seed it once: the first holds
  // the lock, the others find nothing missing.
  if (!flags["no-seed"] && !(await store.exclusive("seed", () => seedZoo(store)))) {
    await store.close();
    return undefined;
  }
  const app = createRegistryApp({
    store,
    auth: { private: Boolean(flags.private) || env("ZOO_PRIVATE") === "1" },
    limits: {
      maxBlobBytes: positiveInt(
        "max-blob-bytes",
        str("max-blob-bytes", "ZOO_MAX_BLOB_BYTES", String(DEFAULT_LIMITS.maxBlobBytes)),
      ),
      maxManifestBytes: positiveInt(
        "max-manifest-bytes",
        str(
          "max-manifest-bytes",
          "ZOO_MAX_MANIFEST_BYTES",
          String(DEFAULT_LIMITS.maxManifestBytes),
        ),
      ),
      requestTimeoutMs: positiveInt(
        "request-timeout",
        str("request-timeout", "ZOO_REQUEST_TIMEOUT_MS", String(DEFAULT_LIMITS.requestTimeoutMs)),
      ),
    },
  });
  // A worker was started by the first process, which seeded the store and
  // stops it; it only serves.
  const worker = Boolean(flags.worker);
  const workers = worker
    ? 1
    : positiveInt("workers", str("workers", "ZOO_WORKERS", String(navigator.hardwareConcurrency)));
  const server = Deno.serve({
    port,
    hostname,
    // Every process binds the port; the kernel spreads connections over them.
    reusePort: workers > 1 || worker,
    onListen: ({ hostname, port }) =>
      console.log(
        `Registry ${worker ? "worker " : ""}on http://${hostname}:${port} (${
          describeStore(config)
        }${workers > 1 ? `, ${workers} processes` : ""})`,
      ),
  }, app.fetch);
  const children = Array.from({ length: workers - 1 }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, ...args, "--worker", "--no-seed"],
      // Never written: it closes when this process ends, however it ends.
      stdin: "piped",
    }).spawn());
  const stop = stopOnSignal(server, store, children, worker);
  if (worker) {
    // The first process is gone (even SIGKILLed) when its end of stdin closes.
    (async () => {
      for await (const _ of Deno.stdin.readable) { /* nothing is ever sent */ }
      await stop(false);
    })();
  }
  return server;
}

/**
 * Adds the zoo entries the store lacks (all of them on a first start; those an
 * interrupted seed left out later). SIGINT or SIGTERM stops it between steps,
 * a second one at once.
 *
 * @returns false when a signal stopped it
 */
async function seedZoo(store: Store): Promise<boolean> {
  // Only the command line pulls in the zoo: the app itself never depends on it.
  const { IMPORTED_ENTRIES, TRAINED_ENTRIES, ZOO_NAMESPACE, ZOO_VERSION, zooEntries } =
    await import("../zoo/mod.ts");
  const wanted = [...TRAINED_ENTRIES, ...IMPORTED_ENTRIES].map((name) => ({
    name,
    version: ZOO_VERSION,
  }));
  const interrupt = new AbortController();
  const stop = () => {
    if (interrupt.signal.aborted) Deno.exit(1);
    console.log("Stopping after the current seeding step (a second signal stops at once)");
    interrupt.abort();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  const t0 = performance.now();
  try {
    const { published, skipped, stopped } = await seedMissing(
      store,
      wanted,
      async ({ name }) => (await zooEntries({ only: [name] }))[0]!,
      ZOO_NAMESPACE,
      {
        signal: interrupt.signal,
        onPublished: (ref) => console.log(`Seeded ${ref}`),
      },
    );
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    if (stopped) {
      console.log(
        `Stopped seeding after ${published.length} of ${
          wanted.length - skipped.length
        } missing zoo checkpoints: the next start adds the rest`,
      );
    } else if (published.length > 0) {
      const list = `in ${seconds} s: ${published.join(", ")}`;
      console.log(
        skipped.length === 0
          ? `Seeded the empty store with ${published.length} zoo checkpoints ${list}`
          : `Added ${published.length} missing zoo checkpoints (${skipped.length} of ${wanted.length} were there) ${list}`,
      );
    }
    return !stopped;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
  }
}

/**
 * Stops gracefully on the first SIGINT or SIGTERM, so that no counted
 * download is lost: the workers first, then this process.
 */
function stopOnSignal(
  server: Deno.HttpServer,
  store: Store,
  workers: Deno.ChildProcess[],
  isWorker: boolean,
): (again: boolean) => Promise<void> {
  let stopping = false;
  const stop = async (again: boolean) => {
    if (stopping) {
      // A worker gets a terminal's SIGINT and then the first process's SIGTERM.
      if (again && !isWorker) Deno.exit(1);
      return;
    }
    stopping = true;
    try {
      for (const w of workers) {
        try {
          w.kill("SIGTERM");
        } catch {
          // It has exited already.
        }
      }
      // A worker still starting dies of the signal itself, before it served.
      const failed = (await Promise.all(workers.map((w) => w.status)))
        .find((st) => st.code !== 0 && st.signal !== "SIGTERM");
      if (failed) throw new Error(`a worker exited with code ${failed.code}`);
      await server.shutdown();
      await store.close();
    } catch (e) {
      console.error(`Stopping the registry failed: ${e instanceof Error ? e.message : e}`);
      Deno.exit(1);
    }
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop(true));
  // Windows has no SIGTERM to listen for.
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", () => stop(true));
  return stop;
}

// No server: --help, or a signal stopped the seed.
if (import.meta.main) {
  await runMain(main, { exitCode: (server) => server === undefined ? 0 : undefined });
}
