/**
 * The fine-tuning command line's answer to a misspelt, unknown or malformed
 * flag or data spec: one line that names it and what was probably meant, a
 * non-zero exit, and no work (nothing is downloaded, no output folder).
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { runFinetune, type RunResult } from "../../_helpers/cli.ts";

function cli(args: string[], cwd: string): Promise<RunResult> {
  // No registry listens here: any download attempt would fail differently.
  return runFinetune(args, {
    cwd,
    env: { ZOO_URL: "http://127.0.0.1:9", ZOO_CACHE: join(cwd, "cache") },
  });
}

Deno.test("finetune answers a bad flag or data spec with one line naming it and the nearest known one", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "finetune_flags_" });
  try {
    const cases: [string[], string][] = [
      [
        ["--modle", "zoo/lenet5", "--data", "mnist"],
        'Cannot parse the command line: unknown flag "--modle": did you mean --model? Run with --help to list the flags',
      ],
      [
        ["--model", "zoo/lenet5", "--data", "mnist", "--epochs", "-3"],
        'Invalid --epochs "-3": use a whole number >= 1',
      ],
      [
        ["--model", "zoo/lenet5", "--data", "mnist", "--epochs", "--lr", "0.1"],
        'Cannot parse the command line: --epochs needs a value, got the flag "--lr": write --epochs VALUE, or --epochs=VALUE for a value that starts with "-"',
      ],
      [
        ["--model", "zoo/lenet5", "--data", "mnist", "--resize=yes"],
        'Cannot parse the command line: --resize is an on/off flag and takes no value, got "yes"',
      ],
    ];
    for (const [args, line] of cases) {
      const r = await cli(args, cwd);
      assertEquals(r.code, 1, args.join(" "));
      assertEquals(r.stderr.trim(), line, args.join(" "));
    }
    for (
      const [spec, hint] of [["fashion-mnst", '"fashion-mnist"'], [
        "mnist?perclass=10",
        '"perClass"',
      ]]
    ) {
      const r = await cli(["--model", "zoo/lenet5", "--data", spec!], cwd);
      assertEquals(r.code, 1, spec);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, r.stderr);
      assert(lines[0]!.includes(`(did you mean ${hint}?)`), lines[0]);
    }
    assertEquals([...Deno.readDirSync(cwd)].map((e) => e.name), [], "no output folder, no cache");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
