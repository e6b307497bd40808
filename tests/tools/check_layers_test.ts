/**
 * The layer and cycle check on small module graphs written to a temp folder:
 * the real rules of tools/layers.ts, run as `deno task check:layers` runs it.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { checkLayers } from "../../tools/check_layers.ts";
import { RULES } from "../../tools/layers.ts";
import { ROOT, runDeno } from "../_helpers/cli.ts";
import { tempTree } from "../_helpers/temp.ts";

const CHECKER = join(ROOT, "tools", "check_layers.ts");

/** Writes `files` (path → source) under a new temp folder, removed when disposed. */
function tree(files: Record<string, string>) {
  return tempTree("layers-test-", files);
}

function cli(root: string, ...args: string[]) {
  return runDeno(["run", "-A", CHECKER, "--root", root, ...args]);
}

/** A graph that keeps every rule: each layer imports only those below it. */
const CLEAN: Record<string, string> = {
  // A stand-in for the npm package, outside the tree, so the test needs no network.
  "deno.json": JSON.stringify({
    imports: { "@tensorflow/tfjs": "data:application/javascript,export const tf = 1;" },
  }),
  "_std/assert.ts": "export const ok = true;\n",
  "core/names.ts": 'import { ok } from "../_std/assert.ts";\nexport const name = ok;\n',
  "sdk/devices/select.ts": 'import { name } from "../../core/names.ts";\nexport const d = name;\n',
  "sdk/train/loop.ts": 'import { d } from "../devices/select.ts";\nexport const t = d;\n',
  "sdk/finetune/types.ts": "export type Strategy = 'full';\n",
  "sdk/finetune/fine_tune.ts":
    'import type { Strategy } from "./types.ts";\nimport { t } from "../train/loop.ts";\nexport const s: Strategy | boolean = t;\n',
  "registry/app.ts": 'import { name } from "../core/names.ts";\nexport const app = name;\n',
  "main.ts":
    'import { app } from "./registry/app.ts";\nimport { s } from "./sdk/finetune/fine_tune.ts";\nconsole.log(app, s);\n',
  "tests/main_test.ts": 'import "../main.ts";\n',
};

Deno.test("a graph that keeps the layer rules has no violations", async () => {
  await using root = await tree(CLEAN);
  const report = await checkLayers(root.path, RULES);
  assertEquals(report.violations, []);
  assertEquals(report.modules, 9);
  assertEquals(report.imports, 9);
});

Deno.test("an upward import, a type from sdk/finetune and tfjs in core are each reported", async () => {
  await using root = await tree({
    ...CLEAN,
    "core/names.ts":
      'import { tf } from "@tensorflow/tfjs";\nimport { ok } from "../_std/assert.ts";\nexport const name = ok && tf;\n',
    "sdk/devices/select.ts":
      'import type { Strategy } from "../finetune/types.ts";\nimport { name } from "../../core/names.ts";\nexport const d: Strategy | number = name;\n',
    "registry/app.ts": 'import { d } from "../sdk/devices/select.ts";\nexport const app = d;\n',
  });
  const { violations } = await checkLayers(root.path, RULES);
  assertEquals(violations.map((v) => v.key), [
    "import registry/app.ts -> sdk/devices/select.ts",
    "import sdk/devices/select.ts -> sdk/finetune/types.ts",
    "specifier core/names.ts -> @tensorflow/tfjs",
  ]);
  assertStringIncludes(
    violations[0]!.message,
    "registry/app.ts (registry) imports sdk/devices/select.ts (sdk-base)",
  );
  assertStringIncludes(violations[2]!.message, "layer core may not");
});

Deno.test("an import cycle is reported once, with its path, even through type-only imports", async () => {
  await using root = await tree({
    ...CLEAN,
    "registry/env.ts": 'import type { App } from "./app.ts";\nexport type Env = { app: App };\n',
    "registry/app.ts":
      'import type { Env } from "./env.ts";\nimport { name } from "../core/names.ts";\nexport type App = { env?: Env };\nexport const app = name;\n',
  });
  const { violations } = await checkLayers(root.path, RULES);
  assertEquals(violations.map((v) => v.key), ["cycle registry/app.ts registry/env.ts"]);
  assertEquals(
    violations[0]!.message,
    "import cycle: registry/app.ts -> registry/env.ts -> registry/app.ts",
  );
});

Deno.test("a module in no layer is reported so a new folder gets placed", async () => {
  await using root = await tree({ ...CLEAN, "lib/x.ts": "export const x = 1;\n" });
  const { violations } = await checkLayers(root.path, RULES);
  assertEquals(violations.map((v) => v.key), ["unplaced lib/x.ts"]);
});

Deno.test("the command passes only when the allowlist matches the violations exactly", async () => {
  await using root = await tree({
    ...CLEAN,
    "sdk/train/loop.ts":
      'import type { Strategy } from "../finetune/types.ts";\nimport { d } from "../devices/select.ts";\nexport const t: Strategy | string = d;\n',
  });
  const key = "import sdk/train/loop.ts -> sdk/finetune/types.ts";
  const list = join(root.path, "allow.txt");
  const bare = await cli(root.path);
  assertEquals(bare.code, 1);
  assertStringIncludes(bare.stderr, `key: ${key}`);
  assertStringIncludes(bare.stderr, "1 new violation(s)");

  const printed = await cli(root.path, "--print-allowlist");
  assertEquals(printed.code, 0);
  assertEquals(printed.stdout, `${key}\n`);

  await Deno.writeTextFile(list, `# known\n${key}\n`);
  const known = await cli(root.path, "--allowlist", list);
  assertEquals(known.code, 0, known.stderr);
  assertStringIncludes(
    known.stdout,
    "0 new violation(s), 0 stale allowlist entr(y/ies), 1 known",
  );

  await Deno.writeTextFile(list, `${key}\ncycle a.ts b.ts\n`);
  const stale = await cli(root.path, "--allowlist", list);
  assertEquals(stale.code, 1);
  assertStringIncludes(stale.stderr, `"cycle a.ts b.ts" is allowlisted but no longer occurs`);

  const missing = await cli(root.path, "--allowlist", join(root.path, "nope.txt"));
  assertEquals(missing.code, 1);
  assert(missing.stderr.startsWith(`Cannot read the allowlist "${join(root.path, "nope.txt")}"`));
});
