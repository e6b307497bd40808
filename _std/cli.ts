/**
 * The subset of `@std/cli` this project uses, built on Deno's built-in
 * `node:util` `parseArgs` because JSR cannot be reached from our machines.
 * Point the `@std/cli` entry of deno.json at `jsr:@std/cli@^1` to use the real
 * one; the call shape below is the same.
 *
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";
import { closestString } from "@std/text";

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
 * mistyped flag should not silently fall back to a default. The error is one
 * line that names the flag and the nearest known one. A negative number
 * after a flag that takes a value is that value (`--epochs -3`), so the
 * program can say why it is refused.
 *
 * @param args the arguments, usually `Deno.args`
 * @param options which flags exist and their defaults
 * @returns the flags by name and the positionals in `_`
 * @throws {TypeError} on an unknown flag (naming the nearest known flag), a
 *   flag missing its value, or a value given to an on/off flag
 *
 * @example Parse a port
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseArgs } from "@std/cli";
 * const flags = parseArgs(["--port", "8080"], { string: ["port"], default: { port: "8000" } });
 * assertEquals(flags.port, "8080");
 * assertEquals(parseArgs([], { string: ["port"], default: { port: "8000" } }).port, "8000");
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
  const normalized = checkFlags(args, spec, short);
  try {
    const { values, positionals } = nodeParseArgs({
      args: normalized,
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

type Spec = Record<string, { type: "string" | "boolean" }>;

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

function unknownFlag(flag: string, known: string[]): TypeError {
  const nearest = known.length > 0 ? closestString(flag.replace(/^-+/, ""), known) : undefined;
  return new TypeError(
    `Cannot parse the command line: unknown flag "${flag}"${
      nearest === undefined ? "" : `: did you mean --${nearest}?`
    } Run with --help to list the flags`,
  );
}

/**
 * Refuses unknown and malformed flags with one line each, and joins a flag
 * that takes a value with a negative number after it (`--epochs=-3`), which
 * `node:util` would take for a flag.
 */
function checkFlags(args: string[], spec: Spec, short: Record<string, string>): string[] {
  const known = Object.keys(spec);
  const longOf = new Map(Object.entries(short).map(([long, s]) => [s, long]));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || NEGATIVE_NUMBER.test(arg)) {
      out.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--")
      ? arg.slice(2, eq === -1 ? undefined : eq)
      : longOf.get(arg.slice(1, 2));
    const option = name === undefined ? undefined : spec[name];
    if (name === undefined || option === undefined || (!arg.startsWith("--") && arg.length > 2)) {
      throw unknownFlag(eq === -1 ? arg : arg.slice(0, eq), known);
    }
    if (option.type === "boolean") {
      if (eq !== -1) {
        throw new TypeError(
          `Cannot parse the command line: --${name} is an on/off flag and takes no value, got "${
            arg.slice(eq + 1)
          }"`,
        );
      }
      out.push(arg);
      continue;
    }
    if (eq !== -1) {
      out.push(arg);
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || (value.startsWith("-") && !NEGATIVE_NUMBER.test(value))) {
      throw new TypeError(
        `Cannot parse the command line: --${name} needs a value${
          value === undefined ? "" : `, got the flag "${value}"`
        }: write --${name} VALUE, or --${name}=VALUE for a value that starts with "-"`,
      );
    }
    out.push(`--${name}=${value}`);
    i++;
  }
  return out;
}
