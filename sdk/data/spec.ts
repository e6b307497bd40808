/**
 * Data specs: one string that names a dataset on a command line or in a
 * config, e.g. `mnist?perClass=10&seed=1`, `dir:data/pets?skipBad=1`,
 * `idx:train-images-idx3-ubyte.gz,train-labels-idx1-ubyte.gz`.
 *
 * @module
 */
import { closestString, levenshteinDistance } from "@std/text";
import { BUILTIN_NAMES, type BuiltinName, loadBuiltin } from "./builtin.ts";
import { loadIdx } from "./idx.ts";
import { loadImageFolder } from "./image_folder.ts";
import { SPLITS } from "./_split.ts";
import type { Dataset, Split } from "./types.ts";

/** The forms a data spec can take, for help texts and error messages. */
export const DATA_SPEC_FORMS: string = [
  "mnist[?OPTIONS]",
  "fashion-mnist[?OPTIONS]",
  "dir:PATH[?OPTIONS]",
  "idx:IMAGES,LABELS[?OPTIONS]",
].join(", ");

/** Options a spec can carry after `?`, as `key=value` pairs joined by `&`. */
export interface DataSpecOptions {
  /** `split=train|validation|test|all`. @default "train" for built-ins, "all" otherwise */
  split?: Split;
  /** `perClass=N`: at most N examples per class. @default all */
  perClass?: number;
  /** `seed=N`: seed of the split. @default 0 */
  seed?: number;
  /** `validationFraction=F`. @default 0.1 */
  validationFraction?: number;
  /** `testFraction=F`. @default 0.2 */
  testFraction?: number;
  /** `skipBad=1` (dir only): skip unreadable images. @default false */
  skipBad?: boolean;
  /** `validate=decode|header` (dir only): up-front check. @default "decode" */
  validate?: "decode" | "header";
  /** `extensions=.png,.jpg` (dir only). @default ".png,.jpg,.jpeg" */
  extensions?: string[];
  /** `classes=a,b,c` (idx only): class names in label order. @default "0", "1", … */
  classes?: string[];
}

/** A parsed data spec. */
export type DataSpec =
  | { kind: "builtin"; name: BuiltinName; options: DataSpecOptions }
  | { kind: "dir"; path: string; options: DataSpecOptions }
  | { kind: "idx"; images: string; labels: string; options: DataSpecOptions };

const COMMON = ["split", "perClass", "seed", "validationFraction", "testFraction"] as const;
const ALLOWED: Record<DataSpec["kind"], readonly (keyof DataSpecOptions)[]> = {
  builtin: COMMON,
  dir: [...COMMON, "skipBad", "validate", "extensions"],
  idx: [...COMMON, "classes"],
};

/**
 * Parses a data spec. The first `?` starts the options, so paths cannot
 * contain `?`; values may be percent-encoded.
 *
 * @param spec e.g. `mnist?perClass=10&seed=1` or `dir:data/pets?skipBad=1`
 * @returns the scheme, its source and its options
 * @throws {SyntaxError} on an unknown scheme or option or a malformed value, listing the valid forms
 *
 * @example Parse a small-data spec
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseDataSpec } from "./spec.ts";
 * assertEquals(parseDataSpec("mnist?perClass=10&seed=1"), {
 *   kind: "builtin",
 *   name: "mnist",
 *   options: { perClass: 10, seed: 1 },
 * });
 * ```
 */
export function parseDataSpec(spec: string): DataSpec {
  const q = spec.indexOf("?");
  const source = q === -1 ? spec : spec.slice(0, q);
  const query = q === -1 ? "" : spec.slice(q + 1);
  let parsed: DataSpec;
  if ((BUILTIN_NAMES as readonly string[]).includes(source)) {
    parsed = { kind: "builtin", name: source as BuiltinName, options: {} };
  } else if (source.startsWith("dir:")) {
    const path = source.slice(4);
    if (path === "") throw specError(spec, "dir: needs a folder path, e.g. dir:data/pets");
    parsed = { kind: "dir", path, options: {} };
  } else if (source.startsWith("idx:")) {
    const paths = source.slice(4).split(",");
    if (paths.length !== 2 || paths.some((p) => p === "")) {
      throw specError(spec, "idx: needs two paths, images then labels, separated by a comma");
    }
    parsed = { kind: "idx", images: paths[0]!, labels: paths[1]!, options: {} };
  } else {
    throw specError(spec, `unknown dataset "${source}"${didYouMean(source, BUILTIN_NAMES)}`);
  }
  const allowed = ALLOWED[parsed.kind];
  for (const pair of query === "" ? [] : query.split("&")) {
    const eq = pair.indexOf("=");
    const key = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? "1" : decodeURIComponent(pair.slice(eq + 1));
    if (!(allowed as readonly string[]).includes(key)) {
      throw specError(
        spec,
        `unknown option "${key}" for ${parsed.kind === "builtin" ? source : `${parsed.kind}:`}${
          didYouMean(key, allowed)
        }; valid options: ${allowed.join(", ")}`,
      );
    }
    if (key in parsed.options) throw specError(spec, `option "${key}" is given twice`);
    setOption(parsed.options, key as keyof DataSpecOptions, value, spec);
  }
  return parsed;
}

function setOption(o: DataSpecOptions, key: keyof DataSpecOptions, value: string, spec: string) {
  const number = () => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n)) {
      throw specError(spec, `option "${key}" needs a number, got "${value}"`);
    }
    return n;
  };
  switch (key) {
    case "split":
      if (!(SPLITS as readonly string[]).includes(value)) {
        throw specError(spec, `split "${value}" is not one of ${SPLITS.join(", ")}`);
      }
      o.split = value as Split;
      break;
    case "perClass":
    case "seed":
    case "validationFraction":
    case "testFraction":
      o[key] = number();
      break;
    case "skipBad":
      if (!["1", "0", "true", "false"].includes(value)) {
        throw specError(spec, `option "skipBad" needs 1, 0, true or false, got "${value}"`);
      }
      o.skipBad = value === "1" || value === "true";
      break;
    case "validate":
      if (value !== "decode" && value !== "header") {
        throw specError(spec, `option "validate" needs decode or header, got "${value}"`);
      }
      o.validate = value;
      break;
    case "extensions":
    case "classes":
      o[key] = value.split(",").filter((v) => v !== "");
      break;
  }
}

/** ` (did you mean "x"?)` when a known word is a plausible misspelling of `word`, else nothing. */
function didYouMean(word: string, known: readonly string[]): string {
  const nearest = closestString(word, known);
  const distance = levenshteinDistance(word.toLowerCase(), nearest.toLowerCase());
  return distance <= Math.max(2, Math.floor(nearest.length / 3))
    ? ` (did you mean "${nearest}"?)`
    : "";
}

function specError(spec: string, why: string): SyntaxError {
  return new SyntaxError(
    `Invalid data spec "${spec}": ${why}. Valid forms: ${DATA_SPEC_FORMS}; options: ` +
      `split=train|validation|test|all, perClass=N, seed=N, validationFraction=F, testFraction=F, ` +
      `skipBad=1, validate=decode|header, extensions=.png,.jpg (dir), classes=a,b (idx)`,
  );
}

/**
 * Opens the dataset a spec names. Options in the spec win over `defaults`,
 * so a program can default to, say, `split: "train"` and a user can still
 * ask for `?split=validation`.
 *
 * @param spec a spec string or an already parsed spec
 * @param defaults options used where the spec gives none
 * @returns the dataset
 * @throws {SyntaxError} when the spec is malformed
 * @throws {Error} whatever the loader throws: a missing folder, bad images, a wrong IDX magic
 *
 * @example Twenty images per class of the MNIST validation split
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openDataset } from "./spec.ts";
 * const val = await openDataset("mnist?perClass=20", { split: "validation" });
 * assertEquals(val.size, 200);
 * ```
 */
export async function openDataset(
  spec: string | DataSpec,
  defaults: DataSpecOptions = {},
): Promise<Dataset> {
  const parsed = typeof spec === "string" ? parseDataSpec(spec) : spec;
  const allowed = ALLOWED[parsed.kind] as readonly string[];
  const options: DataSpecOptions = {};
  for (const [k, v] of Object.entries({ ...defaults, ...parsed.options })) {
    if (allowed.includes(k) && v !== undefined) Object.assign(options, { [k]: v });
  }
  switch (parsed.kind) {
    case "builtin":
      return await loadBuiltin(parsed.name, options);
    case "dir":
      return await loadImageFolder(parsed.path, options);
    case "idx":
      return await loadIdx(parsed.images, parsed.labels, options);
  }
}
