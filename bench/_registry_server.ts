/**
 * The server half of `bench/registry.ts`, run in its own process so the load
 * generator never shares its event loop: opens an embedded store in a data
 * directory, publishes the bench checkpoint, then serves two loopback ports
 * and prints one JSON line with them on stdout.
 *
 * - `registry`: the registry app, `createRegistryApp({ store })`, as
 *   `registry/main.ts` serves it.
 * - `diagnostic`: bare `Deno.serve` handlers with no Hono in between, to split
 *   the registry's cost into its parts: `/file/<name>` streams a file of the
 *   static folder with `Deno.open` (Deno's own static file server),
 *   `/memory/<name>` answers with that file's bytes held in memory (read once;
 *   the headers of the registry's documents), the least any handler served by
 *   `Deno.serve` costs, and `/store/<digest>` answers with `store.blobs.read()`
 *   alone.
 *
 * Usage: `deno run -A bench/_registry_server.ts --data <dir> --blob <file> --static <dir>`
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { createRegistryApp } from "../registry/app.ts";
import { openSqliteFsStore } from "../registry/storage/sqlite_fs.ts";
import { BENCH_MODEL, publishBenchModel } from "./_registry_fixture.ts";

if (import.meta.main) {
  const flags = parseArgs(Deno.args, { string: ["data", "blob", "static"] });
  const { data, blob, static: staticDir } = flags;
  if (typeof data !== "string" || typeof blob !== "string" || typeof staticDir !== "string") {
    throw new TypeError("Missing a flag: pass --data <dir>, --blob <file> and --static <dir>");
  }
  const store = await openSqliteFsStore(data);
  const weights = await publishBenchModel(store, blob);

  const quiet = { hostname: "127.0.0.1", port: 0, onListen: () => {} };
  const inMemory = new Map<string, Uint8Array<ArrayBuffer>>();
  const documentHeaders = {
    "content-type": "application/json",
    "access-control-allow-origin": "*",
    "access-control-expose-headers": "etag,content-range,content-length,accept-ranges",
  };
  const registry = Deno.serve(quiet, createRegistryApp({ store }).fetch);
  const diagnostic = Deno.serve(quiet, async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/file/")) {
      const name = path.slice("/file/".length);
      if (!/^[a-z0-9._-]+$/.test(name)) return new Response(null, { status: 400 });
      const file = await Deno.open(`${staticDir}/${name}`, { read: true });
      const { size } = await file.stat();
      return new Response(file.readable, { headers: { "content-length": String(size) } });
    }
    if (path.startsWith("/memory/")) {
      const name = path.slice("/memory/".length);
      if (!/^[a-z0-9._-]+$/.test(name)) return new Response(null, { status: 400 });
      let bytes = inMemory.get(name);
      if (!bytes) inMemory.set(name, bytes = await Deno.readFile(`${staticDir}/${name}`));
      return new Response(bytes, { headers: documentHeaders });
    }
    if (path.startsWith("/store/")) {
      const digest = path.slice("/store/".length);
      const info = await store.blobs.stat(digest);
      const body = info && await store.blobs.read(digest);
      if (!info || !body) return new Response(null, { status: 404 });
      return new Response(body, { headers: { "content-length": String(info.size) } });
    }
    return new Response(null, { status: 404 });
  });

  const stop = async () => {
    await Promise.allSettled([registry.shutdown(), diagnostic.shutdown()]);
    await store.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);

  console.log(JSON.stringify({
    registry: registry.addr.port,
    diagnostic: diagnostic.addr.port,
    ...BENCH_MODEL,
    digest: weights.digest,
    size: weights.size,
  }));
}
