/**
 * What the benchmarks share when they write `bench/results/`: the median of
 * paired rounds, the machine summary and a report writer that keeps the
 * hand-written findings.
 *
 * @module
 */

/** The marker after which a results file holds hand-written findings. */
export const FINDINGS_MARKER = "<!-- findings -->";

/**
 * The median of `xs` (the mean of the middle two for an even count).
 *
 * @param xs the values, in any order; left as they are
 * @returns the median, NaN for none
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The lines of `lscpu` that say what the machine is (model, CPUs, threads,
 * cores, caches, and whether it has AVX-512), or why they are missing.
 *
 * @returns the lines, newline-separated
 */
export async function lscpu(): Promise<string> {
  try {
    const out = await new Deno.Command("lscpu", { stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).split("\n")
      .filter((l) => /^(Model name|CPU\(s\)|Thread|Core|L2|L3|Flags)/.test(l))
      .map((l) => l.replace(/^(Flags:\s+).*(avx512f).*$/, "$1… $2 …"))
      .map((l) => (/^Flags:/.test(l) && !l.includes("avx512f") ? "Flags: (no avx512f)" : l))
      .join("\n");
  } catch {
    return "lscpu unavailable";
  }
}

/**
 * Writes a generated report to `path`, keeping what followed
 * {@linkcode FINDINGS_MARKER} in the file it replaces.
 *
 * @param path the results file
 * @param report the generated part
 */
export async function writeReport(path: string | URL, report: string): Promise<void> {
  let kept = "";
  try {
    const old = await Deno.readTextFile(path);
    const at = old.indexOf(FINDINGS_MARKER);
    if (at >= 0) kept = old.slice(at);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const dir = new URL(".", path instanceof URL ? path : new URL(path, `file://${Deno.cwd()}/`));
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, kept ? `${report}\n${kept}` : report);
}
