/**
 * The registry's OpenAPI document as a file, and what is built from it:
 * `deno task openapi` prints it, `deno task lint:openapi` lints it with
 * Redocly's CLI, and `deno task gen:api` writes the TypeScript types of every
 * path and body (`core/api_types.ts`) with openapi-typescript. Each takes the
 * document from a registry app built in process, so it is the document a
 * running registry serves.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import openapiTS, { astToString } from "openapi-typescript";
import { createRegistryApp } from "./app.ts";
import { openSqliteFsStore } from "./storage/sqlite_fs.ts";

/** The pinned Redocly CLI `lint:openapi` runs (cached by `deno install`). */
export const REDOCLY_CLI = "npm:@redocly/cli@2.77.0";

/** Where `gen:api` writes the types. */
export const API_TYPES_FILE = new URL("../core/api_types.ts", import.meta.url);

const HELP = `Print, lint or type the registry's OpenAPI document.

Usage: deno run -A registry/api_document.ts [--lint | --types FILE | --check-types FILE]

  (no flag)           print the document (JSON)
  --lint              lint it with ${REDOCLY_CLI} (redocly.yaml)
  --types FILE        write its TypeScript types to FILE (deno task gen:api)
  --check-types FILE  exit 1 when FILE is not what --types would write
  -h, --help          this text`;

/**
 * The OpenAPI document a registry serves at `/openapi.json`.
 *
 * @returns the document
 */
export async function apiDocument(): Promise<Record<string, unknown>> {
  const dir = await Deno.makeTempDir({ prefix: "zoo-openapi-" });
  const store = await openSqliteFsStore(dir);
  try {
    const res = await createRegistryApp({ store }).request("/openapi.json");
    if (!res.ok) throw new Error(`The registry answered /openapi.json with ${res.status}`);
    return await res.json();
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Adds a doc comment to each export openapi-typescript writes, and to each of
 * their members (paths, operations, components), which it leaves without one.
 */
function documentExports(source: string): string {
  const docs: Record<string, string> = {
    paths: "Every path of the API: its parameters, request body and responses by status.",
    webhooks: "The API's webhooks: none.",
    components: "The named schemas (the bodies of core/wire.ts), parameters and security schemes.",
    $defs: "Shared definitions: none.",
    operations: "Every operation by its operationId.",
  };
  const members: Record<string, (key: string) => string> = {
    paths: (key) => `The operations on ${key}.`,
    operations: (key) => `The operation ${key}: its parameters, body and responses.`,
    components: (key) => `The ${key} of the API.`,
  };
  const out: string[] = [];
  let current = "";
  for (const line of source.split("\n")) {
    const top = /^export (?:type|interface) ([\w$]+)/.exec(line);
    const member = /^ {4}("[^"]+"|[\w$]+)\??: /.exec(line);
    if (top) {
      current = top[1]!;
      out.push(`/** ${docs[current] ?? `The ${current} of the API.`} */`);
    } else if (member && members[current] && !out.at(-1)?.trimEnd().endsWith("*/")) {
      out.push(`    /** ${members[current]!(member[1]!.replaceAll('"', ""))} */`);
    }
    out.push(line);
  }
  return out.join("\n");
}

/**
 * The TypeScript types of the document, formatted as the repository formats code.
 *
 * @param doc the document
 * @returns the module text
 */
export async function apiTypes(doc: Record<string, unknown>): Promise<string> {
  const ast = await openapiTS(doc as unknown as Parameters<typeof openapiTS>[0]);
  const body = documentExports(astToString(ast));
  const text = `/**
 * The registry's HTTP API as TypeScript types, generated from its OpenAPI
 * document by openapi-typescript: \`deno task gen:api\` writes this file, and a
 * test checks that it matches the document a registry serves. Do not edit.
 *
 * @module
 */
${body}`;
  const fmt = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=ts", "-"],
    cwd: new URL("..", import.meta.url),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = fmt.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await fmt.output();
  if (!out.success) {
    throw new Error(
      `deno fmt failed on the generated types: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Lints the document with Redocly's CLI and the repository's `redocly.yaml`.
 *
 * @param doc the document
 * @returns the CLI's exit code and output
 */
export async function lintDocument(
  doc: Record<string, unknown>,
): Promise<{ code: number; output: string }> {
  const file = await Deno.makeTempFile({ prefix: "zoo-openapi-", suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify(doc, null, 2));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--cached-only", "-A", REDOCLY_CLI, "lint", file, "--config", "redocly.yaml"],
      cwd: new URL("..", import.meta.url),
      // Offline: no usage reports, no update checks.
      env: { REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    await Deno.remove(file);
  }
}

if (import.meta.main) {
  const flags = parseArgs(Deno.args, {
    string: ["types", "check-types"],
    boolean: ["lint", "help"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const doc = await apiDocument();
  if (flags.lint) {
    const { code, output } = await lintDocument(doc);
    console.log(output);
    Deno.exit(code);
  } else if (flags.types !== undefined) {
    await Deno.writeTextFile(String(flags.types), await apiTypes(doc));
    console.error(`Wrote ${flags.types}`);
  } else if (flags["check-types"] !== undefined) {
    const file = String(flags["check-types"]);
    if ((await Deno.readTextFile(file)) !== (await apiTypes(doc))) {
      console.error(`${file} does not match the registry's document: run deno task gen:api`);
      Deno.exit(1);
    }
  } else {
    console.log(JSON.stringify(doc, null, 2));
  }
}
