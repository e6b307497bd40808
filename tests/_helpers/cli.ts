/**
 * What the tests that run the project's programs as a user would share: the
 * repository root, a free port, a child process whose exit code and output
 * come back as text, and the fine-tuning command line run that way.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, the folder the README's commands run in. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** What a finished child process left: its exit code and its output as text. */
export interface RunResult {
  /** The exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Options of {@linkcode runDeno}, {@linkcode runCommand} and {@linkcode command}. */
export interface RunDenoOptions {
  /** The working folder; default the repository root. */
  cwd?: string;
  /** Variables added to the environment. */
  env?: Record<string, string>;
  /** Start from an empty environment: the child sees `env` only. */
  clearEnv?: boolean;
  /** Kills the child when it aborts, e.g. `AbortSignal.timeout(ms)`. */
  signal?: AbortSignal;
}

/**
 * A child process with no input and piped output, for `.output()` or `.spawn()`.
 *
 * @param program the program, e.g. `Deno.execPath()` or `"bash"`
 * @param args its arguments
 * @param options the working folder, environment and abort signal
 * @returns the command, not yet started
 */
export function command(
  program: string,
  args: string[],
  options: RunDenoOptions = {},
): Deno.Command {
  return new Deno.Command(program, {
    args,
    cwd: options.cwd ?? ROOT,
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.clearEnv !== undefined ? { clearEnv: options.clearEnv } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs a command until it exits.
 *
 * @param cmd a command made by {@linkcode command} or {@linkcode finetuneCommand}
 * @returns the exit code, stdout and stderr
 */
export async function outputOf(cmd: Deno.Command): Promise<RunResult> {
  const out = await cmd.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Runs `program` with `args` until it exits.
 *
 * @param program the program, e.g. `"bash"`
 * @param args its arguments
 * @param options the working folder, environment and abort signal
 * @returns the exit code, stdout and stderr
 */
export function runCommand(
  program: string,
  args: string[],
  options: RunDenoOptions = {},
): Promise<RunResult> {
  return outputOf(command(program, args, options));
}

/**
 * Runs `deno` (this test's own binary) with `args` until it exits.
 *
 * @param args e.g. `["run", "-A", "registry/main.ts", "--help"]`
 * @param options the working folder and added environment
 * @returns the exit code, stdout and stderr
 */
export function runDeno(args: string[], options: RunDenoOptions = {}): Promise<RunResult> {
  return runCommand(Deno.execPath(), args, options);
}

/**
 * Command-line flags from an object, in its order: a value follows its flag,
 * `true` stands for an on/off flag alone and `false` leaves it out.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { flags } from "./cli.ts";
 * assertEquals(flags({ epochs: 2, resize: true, resume: false }), ["--epochs", "2", "--resize"]);
 * ```
 *
 * @param values flag name (without `--`) → value
 * @returns the flags, e.g. `["--epochs", "2", "--resize"]`
 */
export function flags(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).flatMap(([name, value]) =>
    value === false ? [] : value === true ? [`--${name}`] : [`--${name}`, String(value)]
  );
}

/** The fine-tuning command line's script, by absolute path. */
export const FINETUNE_CLI: string = join(ROOT, "sdk", "finetune.ts");

/**
 * The variables the fine-tuning command line runs with in the tests: a
 * WebGPU runtime folder (`XDG_RUNTIME_DIR`, `/tmp` when unset) and no token
 * from the surrounding environment (`ZOO_TOKEN` empty).
 *
 * @returns the variables to add to the environment
 */
export function finetuneEnv(): Record<string, string> {
  return { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", ZOO_TOKEN: "" };
}

/**
 * `deno run -A sdk/finetune.ts ARGS` as a user runs it, in
 * {@linkcode finetuneEnv}'s environment; `options.env` adds to it.
 *
 * @param args the command line's flags
 * @param options the working folder, more environment, an abort signal
 * @returns the command, not yet started
 */
export function finetuneCommand(args: string[], options: RunDenoOptions = {}): Deno.Command {
  return command(Deno.execPath(), ["run", "-A", FINETUNE_CLI, ...args], {
    ...options,
    env: { ...finetuneEnv(), ...options.env },
  });
}

/**
 * Runs the fine-tuning command line ({@linkcode finetuneCommand}) until it exits.
 *
 * @param args the command line's flags
 * @param options the working folder, more environment, an abort signal
 * @returns the exit code, stdout and stderr
 */
export function runFinetune(args: string[], options: RunDenoOptions = {}): Promise<RunResult> {
  return outputOf(finetuneCommand(args, options));
}

/**
 * A loopback port nothing listens on now, for a child process to serve on.
 * Another process could take it before the child does; the tests that use it
 * start their child at once.
 *
 * @returns the port
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/**
 * Mints a token with `deno task token create` on the store `storeFlags`
 * select, as an operator would.
 *
 * @param scope e.g. `publish:zoo`
 * @param storeFlags `--data DIR`, or `--database-url URL --blobs URL`
 * @returns the token
 * @throws {Error} with the command's stderr when it fails
 */
export async function mintToken(scope: string, storeFlags: string[]): Promise<string> {
  const minted = await runDeno([
    "run",
    "-A",
    "registry/token.ts",
    "create",
    "--scope",
    scope,
    ...storeFlags,
  ]);
  if (minted.code !== 0) throw new Error(`registry/token.ts create failed: ${minted.stderr}`);
  return minted.stdout.trim();
}
