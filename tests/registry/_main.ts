/**
 * Starts `registry/main.ts` as a user would, in a process of its own, and
 * waits until it says it listens. Its standard output stays read to the end,
 * so a late line never blocks it.
 *
 * @module
 */
import { ROOT } from "../_helpers/cli.ts";

/** A running `registry/main.ts`. */
export interface MainProcess {
  /** The process. */
  child: Deno.ChildProcess;
  /** Everything it printed on standard output so far. */
  printed(): string;
  /** Resolves once its standard output has ended. */
  drained: Promise<void>;
  /** Its standard error, once it has ended (empty when `stderr` was "inherit"). */
  stderr: Promise<string>;
}

/**
 * Runs `deno run -A registry/main.ts ...args` from the repository root.
 *
 * @param args the registry's flags
 * @param ready whether what it printed says it is ready to serve
 * @param stderr "piped" to keep its standard error for a failure's message
 * @returns the process, once `ready` holds
 * @throws {Error} when it exits before it is ready, with what it printed
 */
export async function startMain(
  args: string[],
  ready: (printed: string) => boolean,
  stderr: "piped" | "inherit" = "piped",
): Promise<MainProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "registry/main.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr,
  }).spawn();
  const errors = stderr === "piped" ? new Response(child.stderr).text() : Promise.resolve("");
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  while (!ready(printed)) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(`registry/main.ts exited before listening:\n${printed}\n${await errors}`);
    }
    printed += value;
  }
  const drained = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      printed += value;
    }
  })();
  return { child, printed: () => printed, drained, stderr: errors };
}
