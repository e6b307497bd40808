/**
 * An S3-compatible server for tests (npm's `s3rver`, files in a temporary
 * folder): `deno run -A .ci/s3_server.ts --bucket zoo-test` listens on a free
 * port of 127.0.0.1, creates the bucket, prints its endpoint URL on one line,
 * and serves until stopped (SIGINT or SIGTERM), then removes its folder.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import S3rver from "s3rver";

if (import.meta.main) {
  const flags = parseArgs(Deno.args, { string: ["bucket", "port"] });
  const bucket = flags.bucket ?? "zoo-test";
  const directory = await Deno.makeTempDir({ prefix: "zoo-s3-" });
  const server = new S3rver({
    port: Number(flags.port ?? 0),
    address: "127.0.0.1",
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  console.log(`http://127.0.0.1:${port}`);
  const stop = async () => {
    await server.close();
    await Deno.remove(directory, { recursive: true });
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
