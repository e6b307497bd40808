/**
 * The on-disk cache of CNN codes, so a second run of the feature strategy on
 * the same checkpoint, cut, data and preprocessing skips the forward passes.
 * The layout is drawn once, here:
 *
 * ```
 * <dir>/<key>.f32    codes (count x dim float32, little-endian), then labels (count int32)
 * <dir>/<key>.json   the header: format, count, dim, description and what the key was made of
 * ```
 *
 * The key is the SHA-256 of the canonical JSON of {@linkcode CodeKey}.
 * Writes go to a random temporary name and become visible by rename; the
 * binary is renamed before the header, and a read trusts the binary only when
 * the header exists and its sizes match, so a reader never sees a partial
 * entry.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Preprocessing } from "../data/types.ts";

/** How spatial codes become one vector per image. */
export type CodePooling = "avg" | "flatten";

/** CNN codes of a dataset: one vector per example, with its label. */
export interface CnnCodes {
  /** `count * dim` values, example-major. */
  codes: Float32Array;
  /** One class index per example. */
  labels: Int32Array;
  /** Number of examples. */
  count: number;
  /** Code length. */
  dim: number;
}

/** What identifies a set of codes: change any part and the codes differ. */
export interface CodeKey {
  /** The checkpoint: its digest, or a hash of its weights (see `weightsDigest`). */
  model: string;
  /** The cut layer. */
  cut: string;
  /** `Dataset.identity` of the data. */
  dataset: string;
  /** How images were turned into the model's input. */
  preprocess: Preprocessing;
  /** How spatial codes were pooled. */
  pooling: CodePooling;
}

const FORMAT = "cnn-codes/1";

interface Header {
  format: string;
  count: number;
  dim: number;
  description: string;
  key: CodeKey;
}

/** Canonical JSON: object keys sorted, so equal keys hash equally whatever their order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The cache key of a set of codes: the hex SHA-256 of the canonical JSON of
 * `key` (object keys sorted, so the order they were written in does not matter).
 *
 * @param key checkpoint, cut, dataset, preprocessing, pooling
 * @returns 64 hex digits
 *
 * @example Equal keys, equal hashes
 * ```ts
 * import { assertEquals, assertMatch, assertNotEquals } from "@std/assert";
 * import { codeCacheKey } from "./code_cache.ts";
 * const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
 * const key = codeCacheKey({ model: "sha256:ab", cut: "pool2", dataset: "mnist", preprocess, pooling: "avg" });
 * assertMatch(key, /^[0-9a-f]{64}$/);
 * assertEquals(key, codeCacheKey({ model: "sha256:ab", cut: "pool2", dataset: "mnist", preprocess, pooling: "avg" }));
 * assertNotEquals(key, codeCacheKey({ model: "sha256:ab", cut: "pool1", dataset: "mnist", preprocess, pooling: "avg" }));
 * ```
 */
export function codeCacheKey(key: CodeKey): string {
  return createHash("sha256").update(canonical(key)).digest("hex");
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where codes are cached when no folder is given: `$ZOO_CACHE/codes`, else
 * `~/.cache/deno-model-zoo/codes`.
 *
 * @returns an absolute folder path (it may not exist yet)
 *
 * @example A folder named `codes`
 * ```ts
 * import { assert } from "@std/assert";
 * import { defaultCodeCacheDir } from "./code_cache.ts";
 * assert(defaultCodeCacheDir().endsWith("codes"));
 * ```
 */
export function defaultCodeCacheDir(): string {
  const root = env("ZOO_CACHE") ?? join(env("HOME") ?? homedir(), ".cache", "deno-model-zoo");
  return join(root, "codes");
}

/**
 * Reads cached codes.
 *
 * @param dir the cache folder
 * @param key what the codes were computed from
 * @returns the codes and their description, or `undefined` when not cached
 *   (or when the entry is incomplete or of another format)
 * @throws {Error} when the folder cannot be read for a reason other than a missing entry
 *
 * @example A miss
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readCachedCodes } from "./code_cache.ts";
 * const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
 * const key = { model: "m", cut: "pool2", dataset: "d", preprocess, pooling: "avg" } as const;
 * assertEquals(await readCachedCodes(await Deno.makeTempDir(), key), undefined);
 * ```
 */
export async function readCachedCodes(
  dir: string,
  key: CodeKey,
): Promise<{ codes: CnnCodes; description: string } | undefined> {
  const base = join(dir, codeCacheKey(key));
  let header: Header;
  let bytes: Uint8Array;
  try {
    header = JSON.parse(await Deno.readTextFile(`${base}.json`)) as Header;
    bytes = await Deno.readFile(`${base}.f32`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return undefined;
    throw e;
  }
  const { count, dim } = header;
  if (
    header.format !== FORMAT || !Number.isInteger(count) || !Number.isInteger(dim) ||
    bytes.byteLength !== 4 * count * (dim + 1) || canonical(header.key) !== canonical(key)
  ) {
    return undefined;
  }
  // A fresh, aligned buffer: readFile's may be shared or unaligned.
  const buffer = bytes.slice().buffer;
  return {
    codes: {
      codes: new Float32Array(buffer, 0, count * dim),
      labels: new Int32Array(buffer, 4 * count * dim, count),
      count,
      dim,
    },
    description: header.description,
  };
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Writes codes to the cache atomically: each file goes to a temporary name
 * and is renamed into place, the binary before the header, so concurrent
 * readers see either nothing or a whole entry.
 *
 * @param dir the cache folder (created when missing)
 * @param key what the codes were computed from
 * @param codes the codes and labels
 * @param description how the codes were formed, e.g. `avg-pooled 5x5x16 -> 16`
 * @returns when both files are in place
 * @throws {Error} when the folder cannot be written
 *
 * @example Write then read back
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readCachedCodes, writeCachedCodes } from "./code_cache.ts";
 * const dir = await Deno.makeTempDir();
 * const preprocess = { height: 28, width: 28, channels: 1, range: [0, 1] } as const;
 * const key = { model: "m", cut: "pool2", dataset: "d", preprocess, pooling: "avg" } as const;
 * const codes = { codes: new Float32Array([1, 2]), labels: new Int32Array([0]), count: 1, dim: 2 };
 * await writeCachedCodes(dir, key, codes, "2 values");
 * assertEquals((await readCachedCodes(dir, key))?.codes.codes, new Float32Array([1, 2]));
 * ```
 */
export async function writeCachedCodes(
  dir: string,
  key: CodeKey,
  codes: CnnCodes,
  description: string,
): Promise<void> {
  const { count, dim } = codes;
  if (codes.codes.length !== count * dim || codes.labels.length !== count) {
    throw new RangeError(
      `Cannot cache codes: ${codes.codes.length} values and ${codes.labels.length} labels do not make ${count} codes of length ${dim}`,
    );
  }
  await Deno.mkdir(dir, { recursive: true });
  const base = join(dir, codeCacheKey(key));
  const bytes = new Uint8Array(4 * count * (dim + 1));
  bytes.set(new Uint8Array(codes.codes.buffer, codes.codes.byteOffset, 4 * count * dim));
  bytes.set(
    new Uint8Array(codes.labels.buffer, codes.labels.byteOffset, 4 * count),
    4 * count * dim,
  );
  await writeAtomic(`${base}.f32`, bytes);
  const header: Header = { format: FORMAT, count, dim, description, key };
  await writeAtomic(`${base}.json`, new TextEncoder().encode(JSON.stringify(header, null, 2)));
}
