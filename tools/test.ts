/**
 * Runs the test suite in its tiers: `deno task test` (through `.ci/run`)
 * runs everything, `deno task test:fast` the quick tier for the edit-test
 * loop. Most test modules run with `deno test --parallel`; the ones in
 * {@linkcode SERIAL} run after them, one at a time, and each entry says why.
 *
 * ```sh
 * deno task test:fast                      # the quick tier, in parallel
 * deno run -A tools/test.ts                # every test and doc example
 * deno run -A tools/test.ts -- --filter resume   # extra flags go to deno test
 * ```
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { runMain } from "../_std/program.ts";

/**
 * Test modules that must not share the process with others running at the
 * same time: `deno test --parallel` runs modules on threads of one process,
 * so the environment, the resident memory and the CPU are shared.
 */
export const SERIAL: readonly string[] = [
  // Sets ZOO_URL, ZOO_TOKEN, ZOO_CACHE, HOME and XDG_CACHE_HOME, which every
  // child process started meanwhile would inherit.
  "tests/sdk/client/client_test.ts",
  // Sets XDG_RUNTIME_DIR for WebGPU.
  "tests/sdk/finetune/webgpu_test.ts",
  // Bounds on wall time or resident memory that other work would break.
  "tests/sdk/finetune/matrix_test.ts",
  "tests/sdk/finetune/progress_test.ts",
  "tests/registry/storage/sqlite_fs_test.ts",
  "tests/registry/hardening_test.ts",
  "tests/registry/replicas_test.ts",
  "tests/zoo/seed_test.ts",
  "tests/sdk/data/builtin_test.ts",
  "tests/sdk/devices/simd_pool_test.ts",
  // Several GiB of wasm heap each.
  "tests/sdk/devices/wasm_high_heap_test.ts",
  "tests/sdk/devices/wasm_mobilenet_full_test.ts",
];

/**
 * Left out of the quick tier: modules that train or run real networks for
 * many steps (over 10 s each on a 2-core machine), run the command line in
 * child processes, drive a browser, or fuzz.
 */
export const SLOW: readonly string[] = [
  "tests/sdk/finetune/",
  "tests/main_test.ts",
  "tests/sdk/devices/wasm_simd_ops_test.ts",
  "tests/sdk/convolutionalize_test.ts",
  "tests/sdk/train/trainable_flags_test.ts",
  "tests/sdk/advisor/prediction_similarity_test.ts",
  "tests/sdk/train/resume_exact_test.ts",
  "tests/sdk/train/resume_exact_threads_test.ts",
  "tests/sdk/devices/wasm_kernel_fuzz_test.ts",
  "tests/sdk/devices/wasm_training_test.ts",
  "tests/sdk/devices/wasm_threads_test.ts",
  "tests/registry/browser_test.ts",
  "tests/browser/",
  "tests/registry/workers_test.ts",
  "tests/registry/e2e_pg_s3_test.ts",
  "tests/zoo/",
  "tests/package_test.ts",
];

const HELP = `Runs the tests in tiers.

Usage: deno run -A tools/test.ts [--fast] [-- DENO_TEST_FLAGS...]

  --fast   the quick tier: tests/ but the modules of SLOW and SERIAL, no doc
           examples, in parallel
  (none)   every test module and doc example: in parallel, then the SERIAL
           modules one at a time

The lists and why each module is on them are in tools/test.ts.`;

async function denoTest(args: string[]): Promise<number> {
  const started = performance.now();
  console.log(`$ deno test ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["test", ...args],
    stdin: "null",
  }).spawn().status;
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s, exit ${code})`);
  return code;
}

/**
 * Runs a tier.
 *
 * @param args `--fast`, then `--` and flags passed on to `deno test`
 * @returns the exit code: 0 when every run passed
 */
export async function main(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const own = dash === -1 ? args : args.slice(0, dash);
  const extra = dash === -1 ? [] : args.slice(dash + 1);
  const flags = parseArgs(own, { boolean: ["fast", "help"], alias: { h: "help" } });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  if (flags.fast) {
    return await denoTest([
      "-A",
      "--parallel",
      `--ignore=${[...SLOW, ...SERIAL].join(",")}`,
      ...extra,
      "tests/",
    ]);
  }
  const parallel = await denoTest([
    "-A",
    "--doc",
    "--parallel",
    `--ignore=${SERIAL.join(",")}`,
    ...extra,
  ]);
  const serial = await denoTest(["-A", ...extra, ...SERIAL]);
  return parallel !== 0 ? parallel : serial;
}

if (import.meta.main) await runMain(main, { exitCode: (code) => code });
