/**
 * The check that a committed, embedded wasm module is what its build script
 * makes of its C source: the compiled kernels of sdk/devices and sdk/features
 * each ship a generated `*_wasm.ts`, and a stale one would run code that is no
 * longer in the repository.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";

/** Whether clang-16 (which the build scripts use) is installed here. */
export const HAS_CLANG: boolean = await new Deno.Command("clang-16", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);

/** Where a compiled module lives and how it is built. */
export interface EmbeddedWasm {
  /** The folder holding `build.sh`, the C source and the generated module, ending in `/`. */
  dir: URL;
  /** The C source's file name, e.g. `kernels.c`. */
  source: string;
  /** The generated module's file name, e.g. `kernels_wasm.ts`. */
  generated: string;
  /** The task that rebuilds it, named in the failure message. */
  task: string;
}

/**
 * Builds the module in a copy of its folder (so the committed file is not
 * touched) and asserts that the result equals the committed module.
 *
 * @param wasm the module's folder, file names and rebuild task
 */
export async function assertEmbeddedWasmFresh(wasm: EmbeddedWasm): Promise<void> {
  const committed = await Deno.readTextFile(new URL(wasm.generated, wasm.dir));
  const tmp = await Deno.makeTempDir();
  try {
    for (const f of ["build.sh", wasm.source]) {
      await Deno.copyFile(new URL(f, wasm.dir), `${tmp}/${f}`);
    }
    const out = await new Deno.Command("bash", { args: [`${tmp}/build.sh`] }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    assertEquals(
      await Deno.readTextFile(`${tmp}/${wasm.generated}`),
      committed,
      `${wasm.generated} is stale: run \`deno task ${wasm.task}\` and commit it`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
