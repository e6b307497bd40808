/**
 * The SDK as another project uses it: a consumer folder outside the
 * repository, set up with the deno.json the README shows (a `links` entry
 * and an import of the package name), runs every TypeScript snippet of the
 * README, the module example of mod.ts, the model page's "Use it" snippet and
 * the one of the LeNet-5 card against a real registry on a free port, without
 * `--config` (the README marks them `ts ignore` for `deno test --doc`, which
 * has no registry). The snippets are
 * read from those texts, not copied here; each `console.log(…); // value`
 * line must print that value.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { ZooClient } from "../sdk/client/mod.ts";
import { runCommand, runDeno } from "./_helpers/cli.ts";
import { startFinetuneRegistry } from "./_helpers/registry.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const PACKAGE = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as { name: string };
/** The registry origin the texts use, replaced by the test registry's. */
const ORIGIN = "http://localhost:8000";

/** The fenced code blocks of a Markdown text, with their info strings. */
function codeBlocks(markdown: string): { lang: string; code: string }[] {
  return [...markdown.matchAll(/^```(\S*)[^\n]*\n([\s\S]*?)^```$/gm)].map((m) => ({
    lang: m[1] ?? "",
    code: m[2] ?? "",
  }));
}

/** The README section that sets up a project using the package. */
async function readmeSection(): Promise<string> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const start = readme.indexOf("## The SDK in another project");
  assert(start !== -1, "the README has a section on using the SDK in another project");
  const end = readme.indexOf("\n## ", start + 3);
  return readme.slice(start, end === -1 ? undefined : end);
}

/** The `@example` code of mod.ts's module doc. */
async function moduleExample(): Promise<string> {
  const doc = (await Deno.readTextFile(join(ROOT, "mod.ts"))).split("@module")[0] ?? "";
  const text = doc.split("\n").map((l) => l.replace(/^ \* ?/, "")).join("\n");
  const [block] = codeBlocks(text).filter((b) => b.lang === "ts");
  assert(block !== undefined, "mod.ts has a module example");
  return block.code;
}

const squash = (s: string) => s.replace(/[\s"']/g, "");

/** Runs a program in the consumer folder as its user would: no --config. */
function runIn(dir: string, file: string, env: Record<string, string>) {
  return runDeno(["run", "-A", file], { cwd: dir, env });
}

/** Checks each `console.log(…); // value` line of a snippet against the program's output, in order. */
function checkPrinted(snippet: string, stdout: string, name: string): number {
  const expected = snippet.split("\n")
    .filter((l) => l.includes("console.log(") && l.includes("); // "))
    .map((l) => l.slice(l.lastIndexOf("); // ") + 6).trim());
  if (expected.length === 0) return 0;
  const lines = stdout.trim() === "" ? [] : stdout.trim().split("\n");
  assertEquals(
    lines.length,
    expected.length,
    `${name} prints one line per console.log:\n${stdout}`,
  );
  expected.forEach((want, i) => {
    const got = lines[i] ?? "";
    if (want.startsWith("one of ")) {
      const allowed = want.slice(7).split(",").map((s) => s.trim());
      assert(allowed.includes(got.trim()), `${name} line ${i + 1}: "${got}" is not ${want}`);
    } else {
      assertEquals(squash(got), squash(want), `${name} line ${i + 1}`);
    }
  });
  return expected.length;
}

Deno.test({
  name:
    "a project outside the repository runs the README's, mod.ts's and the model page's snippets",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const registry = await startFinetuneRegistry();
    const consumer = await Deno.makeTempDir({ prefix: "zoo-consumer-" });
    try {
      const section = await readmeSection();
      const blocks = codeBlocks(section);
      const config = blocks.find((b) => b.lang === "json");
      assert(config !== undefined, "the README shows the consumer's deno.json");
      const denoJson = JSON.parse(config.code) as {
        links: string[];
        imports: Record<string, string>;
      };
      assert(PACKAGE.name in denoJson.imports, `the README imports ${PACKAGE.name}`);
      // The README links a sibling checkout; this one is wherever the tests run.
      denoJson.links = [ROOT];
      await Deno.writeTextFile(join(consumer, "deno.json"), JSON.stringify(denoJson, null, 2));

      const snippets = blocks.filter((b) => b.lang === "ts").map((b, i) => ({
        name: `README snippet ${i + 1}`,
        code: b.code,
      }));
      assertEquals(snippets.length, 2, "the README's quick-start and fine-tuning snippets");
      snippets.push({ name: "mod.ts's module example", code: await moduleExample() });
      const page = await (await fetch(`${registry.url}/zoo/lenet5/1.0.0`)).text();
      const sdkSnippet = /<pre id="snippet-sdk"><code>([\s\S]*?)<\/code><\/pre>/.exec(page)?.[1];
      assert(sdkSnippet !== undefined, "the model page shows the SDK snippet");
      snippets.push({
        name: "the model page's SDK snippet",
        code: sdkSnippet.replaceAll("&quot;", '"').replaceAll("&lt;", "<").replaceAll("&gt;", ">")
          .replaceAll("&#39;", "'").replaceAll("&amp;", "&"),
      });
      assertStringIncludes(snippets[3]!.code, `from "${PACKAGE.name}"`);
      // The committed LeNet-5 card, shown on its model page, has its own snippet.
      const card = await Deno.readTextFile(join(ROOT, "zoo/lenet5/checkpoint/README.md"));
      const cardSnippet = codeBlocks(card.slice(card.indexOf("## Use it")))[0];
      assert(cardSnippet !== undefined, "the LeNet-5 card shows an SDK snippet");
      assertStringIncludes(cardSnippet.code, `from "${PACKAGE.name}"`);
      snippets.push({ name: "the LeNet-5 card's SDK snippet", code: cardSnippet.code });

      const env = {
        ZOO_CACHE: registry.cacheDir,
        ZOO_TOKEN: registry.token,
        XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
        HOME: Deno.env.get("HOME") ?? consumer,
        ZOO_WASM_THREADS: "1",
      };
      const files = snippets.map((s, i) => ({ ...s, file: `snippet${i + 1}.ts` }));
      for (const s of files) {
        await Deno.writeTextFile(join(consumer, s.file), s.code.replaceAll(ORIGIN, registry.url));
      }
      // Type-checked as the consumer's editor would see them.
      const check = await runDeno(["check", ...files.map((s) => s.file)], { cwd: consumer, env });
      assertEquals(check.code, 0, `deno check of the snippets:\n${check.stderr}`);

      for (const s of files) {
        const r = await runIn(consumer, s.file, env);
        assertEquals(r.code, 0, `${s.name} exits 0:\n${r.stderr}`);
        assert(!/Error|has not yet been initialized/.test(r.stderr), `${s.name}:\n${r.stderr}`);
        checkPrinted(s.code, r.stdout, s.name);
      }
      const published = await new ZooClient({ url: registry.url, cacheDir: registry.cacheDir })
        .resolve("me/lenet5-fashion@1.0.0");
      assertEquals(published.version, "1.0.0");
    } finally {
      await registry.close();
      await Deno.remove(consumer, { recursive: true });
    }
  },
});

Deno.test("importing any export path of the package leaves tfjs on a ready backend", async () => {
  const { exports } = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as {
    exports: Record<string, string>;
  };
  const imports = Object.values(exports).map((p) => `import ${JSON.stringify(join(ROOT, p))};`);
  const program = `import * as tf from "@tensorflow/tfjs";
${imports.join("\n")}
console.log(JSON.stringify({
  registered: Object.keys(tf.engine().registryFactory),
  sum: Array.from(tf.add(tf.tensor1d([1, 2]), 1).dataSync()),
  backend: tf.getBackend(),
}));`;
  const out = await runDeno(["eval", "--config", join(ROOT, "deno.json"), program]);
  assertEquals(out.code, 0, out.stderr);
  const line = out.stdout.trim().split("\n").at(-1) ?? "";
  assertEquals(JSON.parse(line), { registered: ["cpu"], sum: [2, 3], backend: "cpu" });
});

Deno.test({
  name: "the README's fine-tuning command runs as written against a registry",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const readme = await Deno.readTextFile(join(ROOT, "README.md"));
    const section = readme.slice(readme.indexOf("## Fine-tuning"));
    const command = codeBlocks(section).find((b) => b.lang === "sh")?.code;
    assert(command?.startsWith("deno task finetune"), "the README's fine-tuning command");
    const registry = await startFinetuneRegistry();
    const cwd = await Deno.makeTempDir({ prefix: "zoo-readme-finetune-" });
    try {
      // `deno task finetune` is the task of the repository's deno.json, run with the output
      // folder in a temp folder rather than the checkout: its script by absolute path.
      const { tasks } = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as {
        tasks: Record<string, string>;
      };
      const task = tasks.finetune?.replace(/ (sdk\/\S+\.ts)/, ` ${ROOT}/$1`);
      assert(task?.startsWith("deno run "), `the finetune task: ${tasks.finetune}`);
      const script = `deno() {
  if [ "$1" = task ] && [ "$2" = finetune ]; then shift 2; command ${task} "$@";
  else command deno "$@"; fi
}
${command}`;
      const out = await runCommand("bash", ["-euo", "pipefail", "-c", script], {
        cwd,
        env: {
          ZOO_URL: registry.url,
          ZOO_TOKEN: registry.token,
          ZOO_CACHE: registry.cacheDir,
          ZOO_WASM_THREADS: "1",
          PATH: `${join(Deno.execPath(), "..")}:${Deno.env.get("PATH") ?? ""}`,
        },
      });
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(out.stdout, "Published me/lenet5-fashion@1.0.0");
      const card = JSON.parse(await Deno.readTextFile(join(cwd, "finetune-out", "card.json")));
      assertEquals(card.parent, "zoo/lenet5@1.0.0");
    } finally {
      await registry.close();
      await Deno.remove(cwd, { recursive: true });
    }
  },
});
