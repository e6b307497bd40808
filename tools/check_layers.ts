/**
 * Checks the repository's import graph: no import cycles among its own
 * modules, and no import that breaks the layer rules of `tools/layers.ts`.
 *
 * The graph comes from one `deno info --json` over every hand-written module
 * (a generated root file imports them all), so it is the graph Deno itself
 * resolves, with the import map applied, type-only and dynamic imports
 * included. A violation is one line with a stable key: `import A -> B` or
 * `cycle A B C` (the cycle's modules, sorted).
 *
 * An allowlist file (one key a line, `#` comments) lists violations known
 * today; it must be exact, so it can only shrink: a violation missing from it
 * fails, and so does a listed one that no longer occurs.
 *
 * ```sh
 * deno task check:layers                     # the repository, with tools/layers_allowlist.txt
 * deno run -A tools/check_layers.ts --root DIR --allowlist FILE
 * deno run -A tools/check_layers.ts --print-allowlist   # today's keys, to start a list
 * ```
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { runMain } from "../_std/program.ts";
import { join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Layer, type LayerRules, RULES } from "./layers.ts";

export type { Exception, Layer, LayerRules, Private } from "./layers.ts";

/** One broken rule. */
export interface Violation {
  /** The stable key the allowlist uses: `import A -> B`, `specifier A -> S` or `cycle A B …`. */
  key: string;
  /** What is wrong and what the rule is, for a person. */
  message: string;
}

/** What {@linkcode checkLayers} found. */
export interface LayerReport {
  /** How many of the project's modules were checked. */
  modules: number;
  /** How many imports between them were checked. */
  imports: number;
  /** Every violation, sorted by key. */
  violations: Violation[];
}

/** What {@linkcode compareAllowlist} found. */
export interface AllowlistResult {
  /** Violations the allowlist does not list: they fail. */
  fresh: Violation[];
  /** Listed keys that no longer occur: they fail too, so the list only shrinks. */
  stale: string[];
  /** Violations the allowlist lists. */
  known: Violation[];
}

const SOURCE = /\.(ts|tsx|mts|js|jsx|mjs)$/;

/**
 * Turns a glob into a regular expression over `/`-separated paths.
 *
 * @param glob `*` matches within one segment, `**` across segments
 * @returns the anchored expression
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { globToRegExp } from "./check_layers.ts";
 * assert(globToRegExp("sdk/**").test("sdk/train/plan.ts"));
 * assert(globToRegExp("sdk/_*.ts").test("sdk/_rebuild.ts"));
 * assert(!globToRegExp("sdk/_*.ts").test("sdk/train/_loop.ts"));
 * ```
 */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      // `a/**/b` also matches `a/b`.
      if (glob[i + 2] === "/") {
        out += "(?:.*/)?";
        i += 2;
      } else {
        out += ".*";
        i += 1;
      }
    } else if (c === "*") out += "[^/]*";
    else out += c.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

function matcher(globs: string[]): (path: string) => boolean {
  const res = globs.map(globToRegExp);
  return (path) => res.some((re) => re.test(path));
}

async function listModules(root: string, skip: (path: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(join(root, dir))) {
      const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (skip(path) || skip(`${path}/`)) continue;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && SOURCE.test(entry.name) && !entry.name.endsWith(".d.ts")) {
        out.push(path);
      }
    }
  };
  await walk("");
  return out.sort();
}

interface DenoInfoDependency {
  specifier: string;
  code?: { specifier?: string };
  type?: { specifier?: string };
}

interface DenoInfoModule {
  specifier: string;
  error?: string;
  dependencies?: DenoInfoDependency[];
}

/** The import graph of the project's own modules, as paths from the root. */
interface Graph {
  modules: string[];
  /** Project module → project modules it imports. */
  edges: Map<string, Set<string>>;
  /** Project module → other specifiers it imports, raw and resolved. */
  external: Map<string, Set<string>>;
  /** Modules Deno could not load, with its error. */
  errors: Violation[];
}

async function importGraph(root: string, modules: string[]): Promise<Graph> {
  const tmp = await Deno.makeTempDir({ prefix: "check-layers-" });
  try {
    const entry = join(tmp, "all.ts");
    await Deno.writeTextFile(
      entry,
      modules.map((m) => `import ${JSON.stringify(pathToFileURL(join(root, m)).href)};\n`).join(""),
    );
    const config = join(root, "deno.json");
    const hasConfig = await Deno.stat(config).then(() => true, () => false);
    const args = ["info", "--json", ...(hasConfig ? ["--config", config] : ["--no-config"]), entry];
    const out = await new Deno.Command(Deno.execPath(), { args, cwd: root, stdin: "null" })
      .output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(
        `Cannot read the import graph: deno info failed: ${
          new TextDecoder().decode(out.stderr).trim()
        }`,
      );
    }
    const info = JSON.parse(text) as { modules: DenoInfoModule[] };
    const own = new Set(modules);
    const toPath = (specifier: string): string | undefined => {
      if (!specifier.startsWith("file:")) return undefined;
      const rel = relative(root, fileURLToPath(specifier)).split(sep).join("/");
      return own.has(rel) ? rel : undefined;
    };
    const graph: Graph = { modules, edges: new Map(), external: new Map(), errors: [] };
    for (const m of modules) {
      graph.edges.set(m, new Set());
      graph.external.set(m, new Set());
    }
    for (const mod of info.modules) {
      const from = toPath(mod.specifier);
      if (from === undefined) continue;
      if (mod.error !== undefined) {
        graph.errors.push({ key: `load ${from}`, message: `${from}: cannot load: ${mod.error}` });
        continue;
      }
      for (const dep of mod.dependencies ?? []) {
        graph.external.get(from)!.add(dep.specifier);
        for (const resolved of [dep.code?.specifier, dep.type?.specifier]) {
          if (resolved === undefined) continue;
          const to = toPath(resolved);
          if (to !== undefined) graph.edges.get(from)!.add(to);
          else if (!resolved.startsWith("file:")) graph.external.get(from)!.add(resolved);
        }
      }
    }
    return graph;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Strongly connected components with more than one module, or a module importing itself. */
function cycles(graph: Graph): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  // Iterative Tarjan, so a deep graph cannot overflow the call stack.
  for (const start of graph.modules) {
    if (indices.has(start)) continue;
    const work: { node: string; next: string[] }[] = [];
    const visit = (node: string) => {
      indices.set(node, index);
      low.set(node, index);
      index++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, next: [...graph.edges.get(node)!].sort() });
    };
    visit(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const child = frame.next.shift();
      if (child !== undefined) {
        if (!indices.has(child)) visit(child);
        else if (onStack.has(child)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, indices.get(child)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) {
        low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) === indices.get(frame.node)) {
        const component: string[] = [];
        let n: string;
        do {
          n = stack.pop()!;
          onStack.delete(n);
          component.push(n);
        } while (n !== frame.node);
        if (component.length > 1 || graph.edges.get(frame.node)!.has(frame.node)) {
          found.push(component.sort());
        }
      }
    }
  }
  return found;
}

/** One cycle through `members`, as a path that returns to its start, for the message. */
function cyclePath(graph: Graph, members: string[]): string[] {
  const inside = new Set(members);
  const start = members[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of [...graph.edges.get(node)!].sort()) {
      if (!inside.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

/**
 * Checks the modules under `root` against `rules`: layers, forbidden
 * specifiers, private modules and cycles.
 *
 * @param root the repository root (holding deno.json, if there is one)
 * @param rules the rule table, usually `RULES` of `tools/layers.ts`
 * @returns the modules and imports checked, and every violation sorted by key
 * @throws {Error} when `deno info` cannot read the graph, or a layer's `may`
 *   names a layer that does not exist
 */
export async function checkLayers(root: string, rules: LayerRules): Promise<LayerReport> {
  const names = new Set(rules.layers.map((l) => l.name));
  for (const layer of rules.layers) {
    for (const name of layer.may) {
      if (!names.has(name)) {
        throw new Error(`Layer "${layer.name}" may import "${name}": no layer has that name`);
      }
    }
  }
  const skip = matcher(rules.skip);
  const modules = await listModules(root, skip);
  const graph = await importGraph(root, modules);
  const layerOf = new Map<string, Layer | undefined>();
  const layerMatchers = rules.layers.map((l) => ({ layer: l, match: matcher(l.files) }));
  for (const m of modules) layerOf.set(m, layerMatchers.find((l) => l.match(m))?.layer);

  const violations: Violation[] = [...graph.errors];
  let imports = 0;
  for (const from of modules) {
    const layer = layerOf.get(from);
    if (layer === undefined) {
      violations.push({
        key: `unplaced ${from}`,
        message: `${from} is in no layer: add a pattern for it to tools/layers.ts`,
      });
      continue;
    }
    const forbidden = matcher(layer.forbid ?? []);
    for (const spec of [...graph.external.get(from)!].sort()) {
      if (forbidden(spec)) {
        violations.push({
          key: `specifier ${from} -> ${spec}`,
          message: `${from} imports "${spec}": layer ${layer.name} may not (${layer.why})`,
        });
      }
    }
    for (const to of [...graph.edges.get(from)!].sort()) {
      imports++;
      const target = layerOf.get(to);
      if (target === undefined) continue; // reported as unplaced on its own
      const excepted = rules.exceptions.some((e) =>
        globToRegExp(e.from).test(from) && globToRegExp(e.to).test(to)
      );
      if (!excepted && target !== layer && !layer.may.includes(target.name)) {
        violations.push({
          key: `import ${from} -> ${to}`,
          message: `${from} (${layer.name}) imports ${to} (${target.name}): ${layer.name} ` +
            `may import ${layer.may.length > 0 ? layer.may.join(", ") : "nothing of the project"}`,
        });
        continue;
      }
      if (target === layer && !layer.may.includes(layer.name)) {
        violations.push({
          key: `import ${from} -> ${to}`,
          message: `${from} imports ${to}: modules of ${layer.name} may not import each other`,
        });
        continue;
      }
      for (const p of rules.private) {
        if (!globToRegExp(p.files).test(to)) continue;
        const allowed = p.importers.some((i) =>
          names.has(i) ? layer.name === i : globToRegExp(i).test(from)
        );
        if (!allowed) {
          violations.push({
            key: `import ${from} -> ${to}`,
            message: `${from} imports ${to}, which only ${
              p.importers.join(", ")
            } may import (${p.why})`,
          });
        }
      }
    }
  }
  for (const members of cycles(graph)) {
    violations.push({
      key: `cycle ${members.join(" ")}`,
      message: `import cycle: ${cyclePath(graph, members).join(" -> ")}`,
    });
  }
  violations.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return { modules: modules.length, imports, violations };
}

/**
 * Reads an allowlist: one violation key a line; blank lines and `#` comments
 * are skipped.
 *
 * @param text the file's text
 * @returns the keys, in file order
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseAllowlist } from "./check_layers.ts";
 * assertEquals(parseAllowlist("# known\nimport a.ts -> b.ts\n\n"), ["import a.ts -> b.ts"]);
 * ```
 */
export function parseAllowlist(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * Splits violations into known ones, fresh ones and stale allowlist keys.
 *
 * @param violations what {@linkcode checkLayers} found
 * @param allowed the allowlist's keys
 * @returns fresh violations, stale keys and known violations; the check
 *   passes only when the first two are empty
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { compareAllowlist } from "./check_layers.ts";
 * const found = [{ key: "import a.ts -> b.ts", message: "a.ts imports b.ts" }];
 * const result = compareAllowlist(found, ["import a.ts -> b.ts", "cycle c.ts d.ts"]);
 * assertEquals(result.fresh, []);
 * assertEquals(result.stale, ["cycle c.ts d.ts"]);
 * ```
 */
export function compareAllowlist(violations: Violation[], allowed: string[]): AllowlistResult {
  const keys = new Set(violations.map((v) => v.key));
  const listed = new Set(allowed);
  return {
    fresh: violations.filter((v) => !listed.has(v.key)),
    stale: [...listed].filter((k) => !keys.has(k)),
    known: violations.filter((v) => listed.has(v.key)),
  };
}

const HELP = `Checks the import graph: no import cycles, no import across the layer rules.

Usage: deno run -A tools/check_layers.ts [--root DIR] [--allowlist FILE] [--print-allowlist]

  --root DIR         the repository root (default: the current folder)
  --allowlist FILE   known violations, one key a line; must match exactly
  --print-allowlist  print today's violation keys, ready for an allowlist, and exit 0

The rules are in tools/layers.ts; ARCHITECTURE.md explains them.`;

/**
 * Runs the check from the command line.
 *
 * @param args the arguments (see `--help`)
 * @returns the exit code: 0 when the graph passes, 1 otherwise
 */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    string: ["root", "allowlist"],
    boolean: ["help", "print-allowlist"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  const root = typeof flags.root === "string" ? flags.root : Deno.cwd();
  const report = await checkLayers(root, RULES);
  if (flags["print-allowlist"]) {
    for (const v of report.violations) console.log(v.key);
    return 0;
  }
  let allowed: string[] = [];
  if (typeof flags.allowlist === "string") {
    try {
      allowed = parseAllowlist(await Deno.readTextFile(flags.allowlist));
    } catch (e) {
      throw new Error(`Cannot read the allowlist "${flags.allowlist}": ${(e as Error).message}`);
    }
  }
  const { fresh, stale, known } = compareAllowlist(report.violations, allowed);
  for (const v of fresh) console.error(`error: ${v.message}\n  key: ${v.key}`);
  for (const k of stale) {
    console.error(
      `error: "${k}" is allowlisted but no longer occurs: remove it from ${flags.allowlist}`,
    );
  }
  const summary = `${report.modules} modules, ${report.imports} imports between them: ` +
    `${fresh.length} new violation(s), ${stale.length} stale allowlist entr(y/ies), ` +
    `${known.length} known violation(s) allowlisted`;
  if (fresh.length > 0 || stale.length > 0) {
    console.error(summary);
    return 1;
  }
  console.log(summary);
  return 0;
}

if (import.meta.main) await runMain(main, { exitCode: (code) => code });
