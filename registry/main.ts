/**
 * The registry's command line: serves the registry on the embedded store and,
 * on every start, adds the zoo entries the data dir lacks (all of them on the
 * first start; the rest after an interrupted seed).
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { createRegistryApp, DEFAULT_LIMITS } from "./app.ts";
import { seedMissing } from "./seed.ts";
import { openSqliteFsStore } from "./storage/sqlite_fs.ts";
import type { Store } from "./storage/store.ts";

const HELP = `Serve the model zoo registry.

Usage: deno run -A registry/main.ts [flags]

Flags (flag, then environment, then default):
  --port N               port to listen on          ZOO_PORT      8000
  --host H               address to listen on       ZOO_HOST      127.0.0.1
  --data DIR             data dir (SQLite + blobs)  ZOO_DATA      ./.zoo-data
  --private              reads need a "read" token  ZOO_PRIVATE=1 off
  --no-seed              do not add the zoo entries the data dir lacks
  --max-blob-bytes N     largest blob               ZOO_MAX_BLOB_BYTES      ${DEFAULT_LIMITS.maxBlobBytes}
  --max-manifest-bytes N largest publish request    ZOO_MAX_MANIFEST_BYTES  ${DEFAULT_LIMITS.maxManifestBytes}
  --request-timeout MS   longest request            ZOO_REQUEST_TIMEOUT_MS  ${DEFAULT_LIMITS.requestTimeoutMs}
  -h, --help             this text

Every start adds the zoo entries the data dir lacks (after an interrupted seed,
the rest). SIGINT or SIGTERM during seeding stops after the current step;
later, it stops the registry once the requests in flight are answered, writing
the download counts it holds in memory. A second signal stops it at once.

Tokens: deno task token create --scope publish:<namespace> [--data DIR]`;

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
    string: ["port", "host", "data", "max-blob-bytes", "max-manifest-bytes", "request-timeout"],
    boolean: ["private", "help", "no-seed"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    return undefined;
  }
  const str = (f: string, e: string, d: string) => (flags[f] as string | undefined) ?? env(e) ?? d;
  const port = positiveInt("port", str("port", "ZOO_PORT", "8000"));
  const hostname = str("host", "ZOO_HOST", "127.0.0.1");
  const dataDir = str("data", "ZOO_DATA", "./.zoo-data");
  const store = await openSqliteFsStore(dataDir);
  if (!flags["no-seed"] && !(await seedZoo(store))) {
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
  const server = Deno.serve({
    port,
    hostname,
    onListen: ({ hostname, port }) =>
      console.log(`Registry on http://${hostname}:${port} (data: ${dataDir})`),
  }, app.fetch);
  stopOnSignal(server, store);
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

/** Stops gracefully on the first SIGINT or SIGTERM, so that no counted download is lost. */
function stopOnSignal(server: Deno.HttpServer, store: Store): void {
  let stopping = false;
  const stop = async () => {
    if (stopping) Deno.exit(1);
    stopping = true;
    try {
      await server.shutdown();
      await store.close();
    } catch (e) {
      console.error(`Stopping the registry failed: ${e instanceof Error ? e.message : e}`);
      Deno.exit(1);
    }
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  // Windows has no SIGTERM to listen for.
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
}

if (import.meta.main) {
  try {
    // No server: --help, or a signal stopped the seed.
    if (!(await main(Deno.args))) Deno.exit(0);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(1);
  }
}
