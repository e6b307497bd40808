/**
 * Publishes the zoo to any registry through {@linkcode ZooClient.publish}:
 *
 * ```sh
 * deno task zoo:publish --url URL --token T [--only NAME] [--no-imported]
 * ```
 *
 * Every entry goes to `zoo/<name>@1.0.0`. A version the registry already has
 * is reported as "already published, skipped", so publishing twice is a no-op.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { ZooClient } from "../sdk/client/mod.ts";
import { RegistryError } from "../sdk/errors.ts";
import { formatJson } from "./_checkpoint.ts";
import { ZOO_NAMESPACE, zooEntries, type ZooEntriesOptions, type ZooEntry } from "./mod.ts";

/** What happened to one entry. */
export interface PublishOutcome {
  /** `zoo/<name>@<version>`. */
  reference: string;
  /** `published`, or `skipped` when the registry already had that version. */
  status: "published" | "skipped";
  /** Blobs uploaded (0 when skipped). */
  uploaded: number;
}

/**
 * Publishes zoo entries, each as `<namespace>/<name>@<version>`, skipping
 * versions that exist (the registry answers 409).
 *
 * @param client a client with a token whose scope covers `publish:<namespace>`
 * @param entries the entries, e.g. from `zooEntries()`
 * @param opts the namespace and a progress callback
 * @returns one outcome per entry, in order
 * @throws {RegistryError} when the registry refuses for another reason than an existing version
 *
 * @example Publish the small entries to a local registry
 * ```ts ignore
 * import { ZooClient } from "../sdk/client/mod.ts";
 * import { zooEntries } from "./mod.ts";
 * import { publishZoo } from "./publish.ts";
 * const client = new ZooClient({ url: "http://localhost:8000", token: "zoo_…" });
 * const outcomes = await publishZoo(client, await zooEntries({ imported: false }));
 * console.log(outcomes.map((o) => `${o.reference}: ${o.status}`));
 * ```
 */
export async function publishZoo(
  client: ZooClient,
  entries: readonly ZooEntry[],
  opts: { namespace?: string; log?: (line: string) => void } = {},
): Promise<PublishOutcome[]> {
  const namespace = opts.namespace ?? ZOO_NAMESPACE;
  const outcomes: PublishOutcome[] = [];
  for (const entry of entries) {
    const reference = `${namespace}/${entry.name}@${entry.version}`;
    const dir = await Deno.makeTempDir({ prefix: `zoo-${entry.name}-` });
    try {
      // ZooClient.publish reads a folder (or a model it re-saves, which would dequantize): write one.
      for (const f of entry.files) await Deno.writeFile(`${dir}/${f.path}`, f.bytes);
      await Deno.writeTextFile(`${dir}/card.json`, formatJson(entry.card));
      const result = await client.publish(dir, {
        name: `${namespace}/${entry.name}`,
        version: entry.version,
      });
      outcomes.push({ reference, status: "published", uploaded: result.uploaded });
      opts.log?.(
        `${reference}: published (${result.uploaded} blobs uploaded, ${result.reused} reused)`,
      );
    } catch (e) {
      if (!(e instanceof RegistryError && e.status === 409)) throw e;
      outcomes.push({ reference, status: "skipped", uploaded: 0 });
      opts.log?.(`${reference}: already published, skipped`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  return outcomes;
}

const HELP = `Publish the zoo's checkpoints to a registry.

Usage: deno task zoo:publish --url URL --token T [flags]

Flags (flag, then environment, then default):
  --url URL        the registry                       ZOO_URL     http://localhost:8000
  --token T        a token with publish:zoo scope     ZOO_TOKEN   none (required)
  --namespace NS   publish under this namespace                   zoo
  --only NAME      publish one entry (repeatable)                 all
  --no-imported    leave out mobilenet-v2 and inception-v3        off
  -h, --help       this text

Publishing an entry whose version exists prints "already published, skipped".`;

/**
 * Runs the command line.
 *
 * @param args command-line arguments
 * @returns one outcome per entry
 * @throws {RangeError} when no token is given or an entry is unknown
 * @throws {RegistryError} when the registry refuses
 */
export async function main(args: string[]): Promise<PublishOutcome[]> {
  const flags = parseArgs(args, {
    string: ["url", "token", "namespace", "only"],
    collect: ["only"],
    boolean: ["help", "no-imported"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    return [];
  }
  const env = (k: string) => Deno.env.get(k) || undefined;
  const url = (flags.url as string | undefined) ?? env("ZOO_URL") ?? "http://localhost:8000";
  const token = (flags.token as string | undefined) ?? env("ZOO_TOKEN");
  if (token === undefined) {
    throw new RangeError("Cannot publish the zoo: no token; pass --token or set ZOO_TOKEN");
  }
  const only = flags.only as string[] | undefined;
  const opts: ZooEntriesOptions = { imported: !flags["no-imported"] };
  if (only !== undefined && only.length > 0) opts.only = only;
  const entries = await zooEntries(opts);
  const client = new ZooClient({ url, token, progress: false });
  return await publishZoo(client, entries, {
    namespace: (flags.namespace as string | undefined) ?? ZOO_NAMESPACE,
    log: (line) => console.log(line),
  });
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
