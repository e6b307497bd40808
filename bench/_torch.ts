/**
 * Runs a PyTorch script of the benchmarks the same way for every bench:
 * Debian's python3-torch (installed by this setup step when missing),
 * OMP_NUM_THREADS = the core count (it defaults to 1), and OPENBLAS_CORETYPE
 * and OPENBLAS_L2_SIZE unset for that process only.
 *
 * @module
 */

const PYTHON = "/usr/bin/python3";

function torchEnv(): Record<string, string> {
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    OMP_NUM_THREADS: String(navigator.hardwareConcurrency),
  };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

async function run(cmd: string, args: string[], timeoutS?: number): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, {
    args,
    env: torchEnv(),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    ...(timeoutS === undefined ? {} : { signal: AbortSignal.timeout(timeoutS * 1000) }),
  }).output();
}

/**
 * Runs `bench/<script>` with PyTorch and returns the JSON object on its last
 * line of output.
 *
 * @param script the script's file name beside this module
 * @param args its arguments
 * @param timeoutS how long it may run
 * @returns the parsed last line
 * @throws {Error} when PyTorch cannot be installed or the script fails, with its last words
 */
export async function runTorchScript(
  script: string,
  args: string[],
  timeoutS: number,
): Promise<Record<string, unknown>> {
  if (!(await run(PYTHON, ["-c", "import torch"])).success) {
    await run("apt-get", ["install", "-y", "python3-torch"]);
    if (!(await run(PYTHON, ["-c", "import torch"])).success) {
      throw new Error("python3-torch is not installed and apt-get could not install it");
    }
  }
  const out = await run(
    PYTHON,
    [new URL(`./${script}`, import.meta.url).pathname, ...args],
    timeoutS,
  );
  if (!out.success) {
    throw new Error(new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" "));
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  return JSON.parse(text.split("\n").at(-1)!) as Record<string, unknown>;
}
