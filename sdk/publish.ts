/**
 * Publishes a checkpoint folder to a registry:
 *
 * ```sh
 * deno run -A sdk/publish.ts DIR --name ns/name --version 1.0.0 [--registry URL] [--token T] [--card card.json] [--readme README.md]
 * ```
 *
 * The folder holds `model.json` and the shards it lists, and optionally
 * `card.json` and `README.md`. Only blobs the registry lacks are uploaded.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { DEFAULT_URL, type PublishOptions, type PublishResult, ZooClient } from "./client/mod.ts";

/** The `--help` text: every flag with its environment variable and default. */
export const HELP = `Publish a TensorFlow.js checkpoint folder to a model zoo registry.

Usage:
  deno run -A sdk/publish.ts DIR --name NAMESPACE/NAME --version VERSION [flags]

DIR holds model.json and the weight shards it lists; card.json (the model card)
and README.md are published too when present.

Flags (flag first, then environment variable, then default):
  --name NS/NAME     model name                       (required)
  --version SEMVER   version to publish; immutable    (required)
  --registry URL     registry base URL                env ZOO_URL, default ${DEFAULT_URL}
  --token TOKEN      bearer token with publish:<ns>   env ZOO_TOKEN, default none
  --card FILE        model card JSON                  default DIR/card.json, else {}
  --readme FILE      model card markdown (README.md)  default DIR/README.md, else none
  -h, --help         show this help
`;

/**
 * Runs the command line.
 *
 * @param args the arguments, usually `Deno.args`
 * @param log where the result is printed
 * @returns the publish result, or null when only help was shown
 * @throws {TypeError} on unknown or missing flags
 * @throws {RegistryError} when the registry refuses (401, 403, 409, 422)
 *
 * @example Show the help
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { main } from "./publish.ts";
 * const lines: string[] = [];
 * assertEquals(await main(["--help"], (line) => lines.push(line)), null);
 * assert(lines[0]!.startsWith("Publish a TensorFlow.js checkpoint folder"));
 * ```
 */
export async function main(
  args: string[],
  log: (line: string) => void = console.log,
): Promise<PublishResult | null> {
  const flags = parseArgs(args, {
    string: ["name", "version", "registry", "token", "card", "readme"],
    boolean: ["help"],
    alias: { h: "help" },
  });
  if (flags.help) {
    log(HELP);
    return null;
  }
  const dir = flags._[0];
  if (dir === undefined || flags._.length > 1) {
    throw new TypeError(
      "Cannot publish: pass exactly one checkpoint folder: run with --help for usage",
    );
  }
  const name = str(flags.name);
  const version = str(flags.version);
  if (name === undefined) throw new TypeError("Cannot publish: --name NAMESPACE/NAME is required");
  if (version === undefined) throw new TypeError("Cannot publish: --version is required");
  const options: PublishOptions = { name, version };
  const cardPath = str(flags.card);
  if (cardPath !== undefined) {
    try {
      options.card = JSON.parse(await Deno.readTextFile(cardPath));
    } catch (e) {
      throw new TypeError(`Cannot read the card "${cardPath}": ${(e as Error).message}`);
    }
  }
  const readmePath = str(flags.readme);
  if (readmePath !== undefined) options.readme = await Deno.readTextFile(readmePath);
  const clientOptions: { url?: string; token?: string } = {};
  const registry = str(flags.registry);
  const token = str(flags.token);
  if (registry !== undefined) clientOptions.url = registry;
  if (token !== undefined) clientOptions.token = token;
  const result = await new ZooClient(clientOptions).publish(dir, options);
  log(`Published ${result.reference} (${result.uploaded} blobs uploaded, ${result.reused} reused)`);
  log(`  page:       ${result.url}`);
  log(`  model.json: ${result.modelJsonUrl}`);
  return result;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
