/**
 * `deno run sdk/finetune.ts` without permission flags stops at once with one
 * line (no prompts, even on a terminal), and a run's own files, the wasm
 * backend's pthread script and WebGPU's runtime folder included, go under its
 * cache folder rather than the system's temporary folder.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { FINETUNE_CLI as CLI, runCommand, runDeno } from "../../_helpers/cli.ts";
import { startFinetuneRegistry } from "../../_helpers/registry.ts";

const STOP =
  "Cannot fine-tune without read, write, net, env, sys permissions: run `deno task finetune …` or `deno run -A sdk/finetune.ts …`";

function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test("finetune run without permission flags stops at once with one line", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "finetune_perm_" });
  try {
    const args = ["run", CLI, "--model", "zoo/lenet5", "--data", "mnist?perClass=5"];
    const out = await runDeno(args, { cwd });
    assertEquals(out.code, 1);
    assertEquals(out.stderr.trim(), STOP);
    assertEquals(out.stdout, "");
    // On a terminal Deno would prompt; the run must stop before anything asks.
    if (hasScript()) {
      const line = [Deno.execPath(), ...args].map((a) => `'${a}'`).join(" ");
      const tty = await runCommand("script", ["-qec", line, "/dev/null"], { cwd });
      const text = tty.stdout + tty.stderr;
      assert(!text.includes("Deno requests"), text);
      assertEquals(text.trim(), STOP);
    }
    // --help needs no permission.
    const help = await runDeno(["run", CLI, "--help"]);
    assertEquals(help.code, 0, help.stderr);
    assertStringIncludes(help.stdout, "Usage:");
    assertEquals([...Deno.readDirSync(cwd)], []);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("finetune writes its device files under the cache folder, not the system temp folder", async () => {
  const registry = await startFinetuneRegistry();
  const root = await Deno.makeTempDir({ prefix: "finetune_tmp_" });
  const tmp = join(root, "tmp");
  await Deno.mkdir(tmp);
  try {
    const { code, stderr } = await runDeno(
      [
        "run",
        "-A",
        CLI,
        ...registry.flags,
        "--model",
        "zoo/lenet5",
        "--data",
        "mnist?perClass=5",
        "--strategy",
        "features",
        "--epochs",
        "1",
        "--device",
        "auto",
        "--wasm-threads",
        "2",
        "--out",
        join(root, "out"),
      ],
      // No XDG_RUNTIME_DIR, and a temp folder of our own to watch.
      {
        clearEnv: true,
        env: { PATH: Deno.env.get("PATH") ?? "", HOME: root, TMPDIR: tmp, NO_COLOR: "1" },
      },
    );
    assertEquals(code, 0, stderr);
    assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), [], "nothing in TMPDIR");
    const devices = [...Deno.readDirSync(join(registry.cacheDir, "devices"))].map((e) => e.name);
    assert(devices.includes("xdg-runtime"), `WebGPU's runtime folder: ${devices}`);
    if (/device: auto chose wasm \(2 threads/.test(stderr)) {
      assert(
        devices.some((n) => /^tfjs-wasm-pthread-[0-9a-f]{16}\.cjs$/.test(n)),
        `the pthread script: ${devices}`,
      );
    }
  } finally {
    await registry.close();
    await Deno.remove(root, { recursive: true });
  }
});
