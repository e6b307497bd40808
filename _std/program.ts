/**
 * What every command-line program of the project does the same way: run its
 * `main` with one clear line on failure, and read a setting from its flag,
 * else its environment variable, else a default.
 *
 * ```ts ignore
 * import { runMain } from "../_std/program.ts";
 * export async function main(args: string[]) { ... }
 * if (import.meta.main) await runMain(main);
 * ```
 *
 * @module
 */

/** Options of {@linkcode runMain}. */
export interface RunMainOptions<T> {
  /**
   * The code the process exits with once `main` resolves with this result,
   * or `undefined` to keep running (a server); without it the process ends
   * when nothing keeps it alive.
   */
  exitCode?: (result: T) => number | undefined;
  /** Print only the first line of an error's message (the rest is detail for a log). */
  firstLine?: boolean;
}

/**
 * Runs a program's `main` with `Deno.args`; on an error prints its message
 * alone, as one line on stderr (no stack: the messages say what to do), and
 * exits with code 1.
 *
 * @param main the program
 * @param options the exit code after success, and how much of an error to print
 * @returns once `main` resolved (and the process did not exit)
 */
export async function runMain<T>(
  main: (args: string[]) => Promise<T>,
  options: RunMainOptions<T> = {},
): Promise<void> {
  let result: T;
  try {
    result = await main(Deno.args);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(options.firstLine ? message.split("\n")[0] : message);
    Deno.exit(1);
  }
  const code = options.exitCode?.(result);
  if (code !== undefined) Deno.exit(code);
}

/** Reads an environment variable: `Deno.env.get` unless a test passes its own. */
export type EnvLookup = (name: string) => string | undefined;

/**
 * A setting from its flag, else its environment variable, else `undefined`
 * (give the default with `??`). An empty flag or variable counts as unset,
 * so `ZOO_URL=` does not make an empty URL.
 *
 * @param flags the parsed flags
 * @param flag the flag's name without dashes
 * @param variable the environment variable, or `null` when the setting has none
 * @param env how to read the environment (default `Deno.env.get`)
 * @returns the value, or `undefined` when neither is set
 *
 * @example Flag first, then environment, then default
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { flagOrEnv } from "./program.ts";
 * const env = (name: string) => ({ ZOO_PORT: "9000", ZOO_HOST: "" } as Record<string, string>)[name];
 * assertEquals(flagOrEnv({ port: "8080" }, "port", "ZOO_PORT", env), "8080");
 * assertEquals(flagOrEnv({}, "port", "ZOO_PORT", env), "9000");
 * assertEquals(flagOrEnv({}, "host", "ZOO_HOST", env) ?? "127.0.0.1", "127.0.0.1");
 * assertEquals(flagOrEnv({}, "name", null, env), undefined);
 * ```
 */
export function flagOrEnv(
  flags: Record<string, unknown>,
  flag: string,
  variable: string | null,
  env: EnvLookup = (name) => Deno.env.get(name),
): string | undefined {
  const given = flags[flag];
  const value = typeof given === "string" ? given : variable === null ? undefined : env(variable);
  return value === "" ? undefined : value;
}
