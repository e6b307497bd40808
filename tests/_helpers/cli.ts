/**
 * What the tests that run the project's programs as a user would share: the
 * repository root, a free port, and a Deno child process whose exit code and
 * output come back as text.
 *
 * @module
 */
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

/** Options of {@linkcode runDeno}. */
export interface RunDenoOptions {
  /** The working folder; default the repository root. */
  cwd?: string;
  /** Variables added to the environment. */
  env?: Record<string, string>;
}

/**
 * Runs `deno` (this test's own binary) with `args` until it exits.
 *
 * @param args e.g. `["run", "-A", "registry/main.ts", "--help"]`
 * @param options the working folder and added environment
 * @returns the exit code, stdout and stderr
 */
export async function runDeno(args: string[], options: RunDenoOptions = {}): Promise<RunResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd ?? ROOT,
    ...(options.env !== undefined ? { env: options.env } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
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
