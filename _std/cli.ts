/**
 * The subset of `@std/cli` this project uses, built on Deno's built-in
 * `node:util` `parseArgs` because JSR cannot be reached from our machines.
 * Point the `@std/cli` entry of deno.json at `jsr:@std/cli@^1` to use the real
 * one; the call shape below is the same.
 *
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";

/** Options of {@linkcode parseArgs}, the std names. */
export interface ParseOptions {
  /** Flags that take a value. */
  string?: readonly string[];
  /** Flags that are on or off. */
  boolean?: readonly string[];
  /** Flags that may be given several times; their value is an array. */
  collect?: readonly string[];
  /** Default values by flag name. */
  default?: Record<string, string | boolean | string[]>;
  /** One-letter aliases: `{ h: "help" }`. */
  alias?: Record<string, string>;
}

/** The parsed flags by name, and the positional arguments in `_`. */
export type Args = Record<string, string | boolean | string[] | undefined> & {
  _: string[];
};

/**
 * Parses command-line arguments. Unlike std, an unknown flag is an error: a
 * mistyped flag should not silently fall back to a default.
 *
 * @param args the arguments, usually `Deno.args`
 * @param options which flags exist and their defaults
 * @returns the flags by name and the positionals in `_`
 * @throws {TypeError} on an unknown flag or a flag missing its value
 *
 * @example Parse a port
 * ```ts
 * import { parseArgs } from "@std/cli";
 * const flags = parseArgs(["--port", "8080"], { string: ["port"], default: { port: "8000" } });
 * console.log(flags.port); // "8080"
 * ```
 */
export function parseArgs(args: string[], options: ParseOptions = {}): Args {
  const short: Record<string, string> = {};
  for (const [s, long] of Object.entries(options.alias ?? {})) short[long] = s;
  type NodeOption = {
    type: "string" | "boolean";
    multiple?: boolean;
    short?: string;
    default?: string | boolean | string[];
  };
  const spec: Record<string, NodeOption> = {};
  const add = (name: string, type: "string" | "boolean", multiple = false) => {
    const o: NodeOption = { type };
    if (multiple) o.multiple = true;
    const s = short[name];
    if (s !== undefined) o.short = s;
    const d = options.default?.[name];
    if (d !== undefined) o.default = d;
    spec[name] = o;
  };
  for (const n of options.string ?? []) {
    add(n, "string", options.collect?.includes(n));
  }
  for (const n of options.boolean ?? []) add(n, "boolean");
  try {
    const { values, positionals } = nodeParseArgs({
      args,
      options: spec,
      allowPositionals: true,
      strict: true,
    });
    return {
      ...(values as Record<string, string | boolean | string[]>),
      _: positionals,
    };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new TypeError(
      `Cannot parse the command line: ${message}: run with --help to list the flags`,
    );
  }
}
