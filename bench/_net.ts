/**
 * The process and loopback plumbing of the benchmarks that start servers: a
 * free port, waiting until something listens on it, running a command for
 * its output, finding (or installing) a Debian tool, and stopping a child.
 *
 * @module
 */

const decoder = new TextDecoder();

/**
 * A port on 127.0.0.1 that was free a moment ago.
 *
 * @returns the port number
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr;
  l.close();
  return port;
}

/**
 * Waits until a TCP connection to 127.0.0.1:`port` succeeds.
 *
 * @param port the port to connect to
 * @param timeoutMs how long to keep trying
 * @throws {Error} when nothing listens after `timeoutMs`
 */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > until) {
        throw new Error(`Nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`, {
          cause: e,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Runs `cmd` to its end and returns whether it succeeded with its stdout and
 * stderr together; a command that cannot start is a failure whose text says why.
 *
 * @param cmd the program
 * @param args its arguments
 * @returns success and the output text
 */
export async function output(cmd: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return { ok: o.success, text: decoder.decode(o.stdout) + decoder.decode(o.stderr) };
  } catch (e) {
    return { ok: false, text: String(e) };
  }
}

async function hasCommand(bin: string): Promise<boolean> {
  return (await output("sh", ["-c", `command -v ${bin}`])).ok;
}

/**
 * Finds `bin`, installing Debian's `pkg` with apt-get when it is missing and
 * this process runs as root.
 *
 * @param bin the program to find
 * @param pkg the Debian package that has it
 * @param log where to say that it is being installed
 * @returns whether `bin` is there now
 */
export async function ensureTool(
  bin: string,
  pkg: string,
  log: (message: string) => void = console.error,
): Promise<boolean> {
  if (await hasCommand(bin)) return true;
  if (Deno.uid() !== 0 || !(await hasCommand("apt-get"))) return false;
  log(`${bin} is missing: apt-get install -y ${pkg}`);
  if (!(await output("apt-get", ["install", "-y", pkg])).ok) {
    await output("apt-get", ["update"]);
    await output("apt-get", ["install", "-y", pkg]);
  }
  return await hasCommand(bin);
}

/**
 * Sends `signal` to `child` and waits for it to exit, killing it when it is
 * still there after 5 s, so that a stuck server never outlives the bench.
 *
 * @param child the process
 * @param signal what to send first (nginx stops gracefully on SIGQUIT)
 */
export async function stopChild(child: Deno.ChildProcess, signal: Deno.Signal): Promise<void> {
  try {
    child.kill(signal);
  } catch {
    return; // exited already
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = await Promise.race([
    child.status.then(() => false),
    new Promise<boolean>((r) => timer = setTimeout(() => r(true), 5000)),
  ]);
  clearTimeout(timer);
  if (killed) {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited in between
    }
    await child.status;
  }
}
